import { LlmccError } from '../../../ir/errors.js';
import { printModel } from '../../../ir/text/print.js';
import { verifyModel } from '../../../ir/verify.js';
import { writeFileAtomic } from '../../fsutil.js';
import { loadModel } from '../../onnx/load.js';
import { formatPassRecords, prepareModel, type PassRecord } from '../../../passes/pipeline.js';
import { loweringFromFlags, type LoweringFlags } from '../lowering-options.js';
import { EXIT_OK } from '../errors.js';
import { compileWasm } from '../../../targets/wasm/compile.js';
import { writeBundle } from '../../bundle/write.js';
import { compileTuning, type CompileTuningFlags } from './tune.js';
import { writeNeonProject } from '../../../targets/neon/cli.js';

const LLMCC_VERSION = '0.1.0';

function formatBytes(n: number): string {
  return n >= 2 ** 20 ? `${(n / 2 ** 20).toFixed(1)} MiB` : n >= 1024 ? `${(n / 1024).toFixed(1)} KiB` : `${n} B`;
}

export interface CompileOptions extends LoweringFlags, CompileTuningFlags {
  emit?: 'ir';
  /** Compile for a target and write a bundle (wasm) or a C project folder (neon) to `output`. */
  target?: 'wasm' | 'neon';
  /** neon: a test data set giving the input shapes the C project is specialised on. */
  data?: string;
  /** neon: `name=d0,d1,…` input shapes. */
  shape?: string[];
  /** neon: weights as arrays in model.c instead of model/weights.bin. */
  embedWeights?: boolean;
  lower?: boolean;
  stats?: boolean;
  output?: string;
}

/** The printed IR with what each pass did as `//` comments after its first line (still parseable). */
function withPassComments(text: string, records: readonly PassRecord[]): string {
  if (!records.length) return text;
  const newline = text.indexOf('\n') + 1;
  const comments = formatPassRecords(records).split('\n').map((line) => `// ${line}\n`).join('');
  return text.slice(0, newline) + comments + text.slice(newline);
}

/**
 * `llmcc compile --emit ir`: the verified, type-inferred IR as stable text.
 * `llmcc compile --target wasm -o model.llmcc`: a bundle (src/bundle/README.md).
 */
export async function compileCommand(modelPath: string, options: CompileOptions): Promise<number> {
  if (options.emit && options.target) throw new LlmccError('give either --emit ir or --target, not both');
  if (!options.emit && !options.target) throw new LlmccError('say what to produce: --target wasm -o model.llmcc, or --emit ir');
  if (options.target && !options.output) throw new LlmccError(`--target ${options.target} writes a bundle: give its path with -o`);
  if (!options.lower && (options.bits !== undefined || options.bitsMap || options.keep?.length || options.sparsity)) {
    throw new LlmccError('--bits, --keep, --bits-map and --sparsity take effect with --lower');
  }
  // neon builds from the wasm kernel templates: same LUT layout and fusions.
  const kernelTarget = options.target === 'neon' ? 'wasm' : options.target;
  const lowering = options.lower ? loweringFromFlags(options, kernelTarget) : undefined;
  const model = await loadModel(modelPath);
  verifyModel(model);
  const records = prepareModel(model, lowering, kernelTarget, options.fusion ?? true);
  if (options.stats && records.length) process.stderr.write(`${formatPassRecords(records)}\n`);
  if (options.target === 'neon') {
    const { program } = await writeNeonProject(model, { output: options.output!, data: options.data, shape: options.shape, embedWeights: options.embedWeights });
    console.log(
      `wrote ${options.output}: C project with ${program.kernels.length} kernels, ${program.launches.length} launches, ` +
      `arena ${formatBytes(program.arenaBytes)} (weights ${formatBytes(program.weightImage.byteLength)}); build with make -C ${options.output}`);
    return EXIT_OK;
  }
  if (options.target) {
    const tuning = await compileTuning(model, options);
    const compiled = await compileWasm(model, { producer: `llmcc ${LLMCC_VERSION}`, tuning: tuning.knobsFor, releaseWeights: true });
    if (options.stats) process.stderr.write(`${tuning.summary()}\n`);
    const bytes = await writeBundle(options.output!, compiled);
    const counts = { kernel: 0, view: 0, host: 0 };
    for (const step of compiled.program.steps) counts[step.kind]++;
    console.log(
      `wrote ${options.output} (${formatBytes(bytes)}): ${compiled.program.kernels.length} kernels for ${counts.kernel} kernel steps, ` +
      `${counts.view} views, ${counts.host} host steps; weights ${formatBytes(compiled.weights.byteLength)}`);
    return EXIT_OK;
  }
  const text = withPassComments(printModel(model), records);
  if (options.output) writeFileAtomic(options.output, text);
  else process.stdout.write(text);
  return EXIT_OK;
}
