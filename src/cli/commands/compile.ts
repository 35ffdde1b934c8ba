import { printModel } from '../../../ir/text/print.js';
import { verifyModel } from '../../../ir/verify.js';
import { writeFileAtomic } from '../../fsutil.js';
import { loadModel } from '../../onnx/load.js';
import { EXIT_OK } from '../errors.js';

export interface CompileOptions {
  emit: 'ir';
  output?: string;
}

/** `llmcc compile --emit ir`: the verified, type-inferred IR as stable text. */
export async function compileCommand(modelPath: string, options: CompileOptions): Promise<number> {
  const model = await loadModel(modelPath);
  verifyModel(model);
  const text = printModel(model);
  if (options.output) writeFileAtomic(options.output, text);
  else process.stdout.write(text);
  return EXIT_OK;
}
