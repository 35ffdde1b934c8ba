import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Tensor } from '../../../ir/tensor.js';
import { BUNDLE_MAGIC } from '../../bundle/format.js';
import { load, sessionFromCompiled } from '../../runtime/index.js';
import { compileWasm } from '../../../targets/wasm/compile.js';
import { LlmccError } from '../../../ir/errors.js';
import { getBackend } from '../../../targets/registry.js';
import { neonBackend } from '../../../targets/neon/backend.js';
import { neonModeFromFlags, type NeonModeFlags } from '../../../targets/neon/cli.js';
import { compareTensors, defaultTolerance, type Tolerance } from '../../compare.js';
import { writeDirAtomic } from '../../fsutil.js';
import { loadModel } from '../../onnx/load.js';
import { formatPassRecords, prepareModel } from '../../../passes/pipeline.js';
import type { QuantizeWeightsOptions } from '../../../passes/quantize-weights.js';
import { formatQuantReport, type QuantReportRow } from '../../../passes/quant/report.js';
import { loweringFromFlags, type LoweringFlags } from '../lowering-options.js';
import { encodeTensorProto } from '../../onnx/tensor-proto.js';
import { bindInputs, readTestDataSet } from '../../testdata.js';
import { EXIT_MISMATCH, EXIT_OK } from '../errors.js';

export interface RunOptions extends LoweringFlags, NeonModeFlags {
  /** Run after the low-bit lowering pipeline (quantization with --bits, LUT lowering, fusion). */
  lower?: boolean;
  stats?: boolean;
  data: string;
  target: string;
  atol?: number;
  rtol?: number;
  out?: string;
  /** wasm: threads for the LUT matmuls (worker threads on a shared memory). */
  threads?: number;
}

function formatShape(shape: readonly number[]): string {
  return `[${shape.join(',')}]`;
}

/** `llmcc run`: runs one test data set and compares with its expected outputs. */
export async function runCommand(modelPath: string, options: RunOptions): Promise<number> {
  if (await isBundleFile(modelPath)) return runBundle(modelPath, options);
  const neon = options.target === 'neon';
  if (!neon && (options.host || options.cpu || options.sanitize)) throw new LlmccError('--host, --cpu and --sanitize apply to --target neon');
  const backend = neon ? neonBackend(neonModeFromFlags(options)) : getBackend(options.target);
  if (!options.lower && (options.bits !== undefined || options.bitsMap || options.keep?.length || options.sparsity)) {
    throw new LlmccError('--bits, --keep, --bits-map and --sparsity take effect with --lower');
  }
  // neon builds from the wasm kernel templates: the same LUT plane layout.
  const lowering = options.lower ? loweringFromFlags(options, neon ? 'wasm' : options.target) : undefined;
  const model = await loadModel(modelPath);
  // --stats with --bits also prints the per-layer quantization table (method, weight and output SQNR).
  const quantRows: QuantReportRow[] = [];
  const quantize: QuantizeWeightsOptions | undefined = lowering?.quantize && options.stats ? { ...lowering.quantize, report: quantRows } : lowering?.quantize;
  const records = prepareModel(model, lowering && { ...lowering, quantize }, neon ? 'wasm' : options.target, options.fusion ?? true);
  if (options.stats && records.length) console.log(formatPassRecords(records));
  if (quantRows.length) console.log(formatQuantReport(quantRows));
  const data = readTestDataSet(options.data);
  const feeds = bindInputs(model.graph, data);
  const threads = options.threads ?? 1;
  if (threads !== 1 && options.target !== 'wasm') throw new LlmccError('--threads applies to --target wasm and to bundles');
  const session = threads === 1 ? await backend.prepare(model) : await sessionFromCompiled(await compileWasm(model), { threads });
  const outputs = await session.run(feeds);
  return report(modelPath, model.graph.outputs.map((o) => o.name), outputs, data, options);
}

/** Whether a file is an llmcc bundle (by its magic), so `run` accepts both kinds. */
export async function isBundleFile(file: string): Promise<boolean> {
  if (file.endsWith('.llmcc')) return true;
  try {
    const handle = await fs.promises.open(file, 'r');
    try {
      const head = Buffer.alloc(BUNDLE_MAGIC.length);
      await handle.read(head, 0, head.length, 0);
      return head.toString('latin1') === BUNDLE_MAGIC;
    } finally {
      await handle.close();
    }
  } catch {
    return false; // loadModel reports a missing file
  }
}

/** `llmcc run model.llmcc --data <dir>`: the bundle's own runtime, inputs bound like a model's. */
async function runBundle(bundlePath: string, options: RunOptions): Promise<number> {
  if (options.lower || options.bits !== undefined || options.bitsMap || options.keep?.length) {
    throw new LlmccError('a bundle is already compiled: lowering flags apply when compiling it', bundlePath);
  }
  if (options.target !== 'ref' && options.target !== 'wasm') {
    throw new LlmccError(`a bundle runs on the target it was compiled for (wasm), not '${options.target}'`, bundlePath);
  }
  const session = await load(bundlePath, { threads: options.threads });
  const data = readTestDataSet(options.data);
  const byName = new Set(session.inputNames);
  const feeds = new Map<string, Tensor>();
  data.inputs.forEach(({ name, tensor }, position) => {
    const target = byName.has(name) ? name : session.inputNames[position];
    if (!target) throw new LlmccError(`input_${position}.pb has no matching input (the bundle has ${session.inputNames.length})`, data.dir);
    feeds.set(target, tensor);
  });
  const outputs = await session.run(feeds);
  return report(bundlePath, session.outputNames, outputs, data, options);
}

function report(
  modelPath: string,
  outputNames: readonly string[],
  outputs: ReadonlyMap<string, Tensor>,
  data: ReturnType<typeof readTestDataSet>,
  options: RunOptions,
): number {
  let allOk = true;
  outputNames.map((name) => ({ name })).forEach((output, k) => {
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
    outputNames.forEach((name, k) => {
      files.set(`output_${k}.pb`, encodeTensorProto(outputs.get(name)!, name));
    });
    writeDirAtomic(options.out, files);
    console.log(`wrote ${files.size} output(s) to ${path.resolve(options.out)}`);
  }
  return allOk ? EXIT_OK : EXIT_MISMATCH;
}
