import { allBackends } from '../../../targets/registry.js';
import { inspectModel, renderInspectReport } from '../../inspect.js';
import { loadModel } from '../../onnx/load.js';
import { EXIT_OK } from '../errors.js';

/** `llmcc inspect`: what a model holds and which targets can run it. */
export async function inspectCommand(modelPath: string, options: { json?: boolean }): Promise<number> {
  const model = await loadModel(modelPath);
  const report = inspectModel(model, allBackends());
  console.log(options.json ? JSON.stringify(report, null, 2) : renderInspectReport(report));
  return EXIT_OK;
}
