import { LlmccError } from '../../../ir/errors.js';
import { verifyModel } from '../../../ir/verify.js';
import { formatQuantReport, quantReport } from '../../../passes/quant/report.js';
import { allBackends } from '../../../targets/registry.js';
import { inspectModel, renderInspectReport } from '../../inspect.js';
import { loadModel } from '../../onnx/load.js';
import { bindInputs, readTestDataSet } from '../../testdata.js';
import { quantSchemeFromFlags, type LoweringFlags } from '../lowering-options.js';
import { EXIT_OK } from '../errors.js';

export interface InspectOptions extends Pick<LoweringFlags, 'bits' | 'group' | 'asym' | 'keep' | 'bitsMap' | 'quantMethod' | 'calibData'> {
  json?: boolean;
  /** Per-layer SQNR of quantizing with --bits (weights and layer outputs). */
  quant?: boolean;
  /** A test data set whose inputs calibrate the output SQNR (default: seeded Gaussian). */
  data?: string;
}

/** `llmcc inspect`: what a model holds and which targets can run it; `--quant` adds the SQNR table. */
export async function inspectCommand(modelPath: string, options: InspectOptions): Promise<number> {
  const scheme = options.quant
    ? quantSchemeFromFlags({ ...options, table: 'i8', g: '4', fuse: true })
    : undefined;
  if (options.quant && !scheme) throw new LlmccError('--quant needs --bits (e.g. --quant --bits 2)');
  const model = await loadModel(modelPath);
  const report = inspectModel(model, allBackends());
  let rows;
  if (scheme) {
    verifyModel(model);
    const feeds = options.data ? bindInputs(model.graph, readTestDataSet(options.data)) : undefined;
    rows = quantReport(model, scheme, feeds);
  }
  if (options.json) {
    console.log(JSON.stringify(rows ? { ...report, quant: rows } : report, null, 2));
  } else {
    console.log(renderInspectReport(report));
    if (rows) {
      const gptq = scheme!.method === 'gptq';
      const calibration = options.data ? `inputs of ${options.data}` : gptq ? 'the GPTQ calibration activations' : 'seeded Gaussian activations';
      console.log(`\nquantization (${options.bits} bits, group ${scheme!.groupSize}, ${scheme!.symmetric ? 'symmetric' : 'asymmetric'}, method ${scheme!.method ?? 'rtn'}; output SQNR on ${calibration}):`);
      console.log(formatQuantReport(rows));
    }
  }
  return EXIT_OK;
}
