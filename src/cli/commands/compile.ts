import { LlmccError } from '../../../ir/errors.js';
import { printModel } from '../../../ir/text/print.js';
import { verifyModel } from '../../../ir/verify.js';
import { writeFileAtomic } from '../../fsutil.js';
import { loadModel } from '../../onnx/load.js';
import { formatPassRecords, runLoweringPipeline } from '../../../passes/pipeline.js';
import { loweringFromFlags, type LoweringFlags } from '../lowering-options.js';
import { EXIT_OK } from '../errors.js';
import { compileWasm } from '../../../targets/wasm/compile.js';
import { writeBundle } from '../../bundle/write.js';

const LLMCC_VERSION = '0.1.0';

function formatBytes(n: number): string {
  return n >= 2 ** 20 ? `${(n / 2 ** 20).toFixed(1)} MiB` : n >= 1024 ? `${(n / 1024).toFixed(1)} KiB` : `${n} B`;
}

export interface CompileOptions extends LoweringFlags {
  emit?: 'ir';
  /** Compile for a target and write a bundle to `output`. */
  target?: 'wasm';
  lower?: boolean;
  stats?: boolean;
  output?: string;
}

/**
 * `llmcc compile --emit ir`: the verified, type-inferred IR as stable text.
 * `llmcc compile --target wasm -o model.llmcc`: a bundle (src/bundle/README.md).
 */
export async function compileCommand(modelPath: string, options: CompileOptions): Promise<number> {
  if (options.emit && options.target) throw new LlmccError('give either --emit ir or --target, not both');
  if (!options.emit && !options.target) throw new LlmccError('say what to produce: --target wasm -o model.llmcc, or --emit ir');
  if (options.target && !options.output) throw new LlmccError(`--target ${options.target} writes a bundle: give its path with -o`);
  if (!options.lower && (options.bits !== undefined || options.bitsMap || options.keep?.length)) {
    throw new LlmccError('--bits, --keep and --bits-map take effect with --lower');
  }
  const lowering = options.lower ? loweringFromFlags(options, options.target) : undefined;
  const model = await loadModel(modelPath);
  verifyModel(model);
  if (lowering) {
    const records = runLoweringPipeline(model, lowering);
    if (options.stats) process.stderr.write(`${formatPassRecords(records)}\n`);
  }
  if (options.target) {
    const compiled = await compileWasm(model, { producer: `llmcc ${LLMCC_VERSION}` });
    const bytes = await writeBundle(options.output!, compiled);
    const counts = { kernel: 0, view: 0, host: 0 };
    for (const step of compiled.program.steps) counts[step.kind]++;
    console.log(
      `wrote ${options.output} (${formatBytes(bytes)}): ${compiled.program.kernels.length} kernels for ${counts.kernel} kernel steps, ` +
      `${counts.view} views, ${counts.host} host steps; weights ${formatBytes(compiled.weights.byteLength)}`);
    return EXIT_OK;
  }
  const text = printModel(model);
  if (options.output) writeFileAtomic(options.output, text);
  else process.stdout.write(text);
  return EXIT_OK;
}
