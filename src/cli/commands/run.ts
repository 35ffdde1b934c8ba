import * as path from 'node:path';
import { LlmccError } from '../../../ir/errors.js';
import { getBackend } from '../../../targets/registry.js';
import { compareTensors, defaultTolerance, type Tolerance } from '../../compare.js';
import { writeDirAtomic } from '../../fsutil.js';
import { loadModel } from '../../onnx/load.js';
import { formatPassRecords, runLoweringPipeline } from '../../../passes/pipeline.js';
import { loweringFromFlags, type LoweringFlags } from '../lowering-options.js';
import { encodeTensorProto } from '../../onnx/tensor-proto.js';
import { bindInputs, readTestDataSet } from '../../testdata.js';
import { EXIT_MISMATCH, EXIT_OK } from '../errors.js';

export interface RunOptions extends LoweringFlags {
  /** Run after the low-bit lowering pipeline (quantization with --bits, LUT lowering, fusion). */
  lower?: boolean;
  stats?: boolean;
  data: string;
  target: string;
  atol?: number;
  rtol?: number;
  out?: string;
}

function formatShape(shape: readonly number[]): string {
  return `[${shape.join(',')}]`;
}

/** `llmcc run`: runs one test data set and compares with its expected outputs. */
export async function runCommand(modelPath: string, options: RunOptions): Promise<number> {
  const backend = getBackend(options.target);
  if (!options.lower && (options.bits !== undefined || options.bitsMap || options.keep?.length)) {
    throw new LlmccError('--bits, --keep and --bits-map take effect with --lower');
  }
  const lowering = options.lower ? loweringFromFlags(options) : undefined;
  const model = await loadModel(modelPath);
  if (lowering) {
    const records = runLoweringPipeline(model, lowering);
    if (options.stats) console.log(formatPassRecords(records));
  }
  const data = readTestDataSet(options.data);
  const feeds = bindInputs(model.graph, data);
  const session = await backend.prepare(model);
  const outputs = await session.run(feeds);

  let allOk = true;
  model.graph.outputs.forEach((output, k) => {
    const actual = outputs.get(output.name);
    if (!actual) throw new LlmccError(`output '${output.name}' was not produced`, modelPath);
    const label = `output ${k} '${output.name}' ${actual.dtype}${formatShape(actual.shape)}`;
    const expected = data.outputs[k]?.tensor;
    if (!expected) {
      console.log(`${label}: no reference output_${k}.pb`);
      return;
    }
    const defaults = defaultTolerance(expected.dtype);
    const tolerance: Tolerance = { atol: options.atol ?? defaults.atol, rtol: options.rtol ?? defaults.rtol };
    const result = compareTensors(actual, expected, tolerance);
    allOk &&= result.ok;
    const errors = `max abs ${result.maxAbs.toExponential(3)}, max rel ${result.maxRel.toExponential(3)}, cosine ${result.cosine.toFixed(6)}`;
    const verdict = result.ok ? 'ok' : `MISMATCH (atol ${tolerance.atol}, rtol ${tolerance.rtol})`;
    console.log(`${label}: ${result.reason ?? errors}  ${verdict}`);
  });

  if (options.out) {
    const files = new Map<string, Uint8Array>();
    model.graph.outputs.forEach((output, k) => {
      files.set(`output_${k}.pb`, encodeTensorProto(outputs.get(output.name)!, output.name));
    });
    writeDirAtomic(options.out, files);
    console.log(`wrote ${files.size} output(s) to ${path.resolve(options.out)}`);
  }
  return allOk ? EXIT_OK : EXIT_MISMATCH;
}
