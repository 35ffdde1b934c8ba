import { LlmccError } from '../../../ir/errors.js';
import { printModel } from '../../../ir/text/print.js';
import { verifyModel } from '../../../ir/verify.js';
import { writeFileAtomic } from '../../fsutil.js';
import { loadModel } from '../../onnx/load.js';
import { formatPassRecords, runLoweringPipeline } from '../../../passes/pipeline.js';
import { loweringFromFlags, type LoweringFlags } from '../lowering-options.js';
import { EXIT_OK } from '../errors.js';

export interface CompileOptions extends LoweringFlags {
  emit: 'ir';
  lower?: boolean;
  stats?: boolean;
  output?: string;
}

/** `llmcc compile --emit ir`: the verified, type-inferred IR as stable text. */
export async function compileCommand(modelPath: string, options: CompileOptions): Promise<number> {
  if (!options.lower && (options.bits !== undefined || options.bitsMap || options.keep?.length)) {
    throw new LlmccError('--bits, --keep and --bits-map take effect with --lower');
  }
  const lowering = options.lower ? loweringFromFlags(options) : undefined;
  const model = await loadModel(modelPath);
  verifyModel(model);
  if (lowering) {
    const records = runLoweringPipeline(model, lowering);
    if (options.stats) process.stderr.write(`${formatPassRecords(records)}\n`);
  }
  const text = printModel(model);
  if (options.output) writeFileAtomic(options.output, text);
  else process.stdout.write(text);
  return EXIT_OK;
}
