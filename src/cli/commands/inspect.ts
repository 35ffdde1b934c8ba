import * as path from 'node:path';
import { LlmccError } from '../../../ir/errors.js';
import type { Model } from '../../../ir/graph.js';
import { verifyModel } from '../../../ir/verify.js';
import { formatQuantReport, quantReport, type QuantReportRow } from '../../../passes/quant/report.js';
import { SchemeResolver, findLayers, type QuantSchemeOptions } from '../../../passes/quant/layers.js';
import { cosine, describeCosines, noiseStudy, runOutput, type StudySet } from '../../../passes/quant/noise-study.js';
import { quantizeWeightsPass } from '../../../passes/quantize-weights.js';
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
  /**
   * Test data sets: the first one's inputs calibrate the output SQNR (default: seeded Gaussian);
   * on all of them the quantized model's first output is compared with the expected one.
   */
  data?: string[];
  /** `--noise [list]`: the end-to-end noise study (passes/quant/noise-study.ts) at these SNRs. */
  noise?: string | boolean;
  noiseSeeds?: string;
  cosineBar?: string;
}

/** Comma-separated SNRs in dB; `q` is the quantizer's mean weight SQNR. */
function parseSnrs(spec: string, quantizerDb: number): number[] {
  return spec.split(',').map((item) => {
    const t = item.trim();
    if (t === 'q') return Math.round(quantizerDb * 10) / 10;
    const db = Number(t);
    if (t === '' || !Number.isFinite(db)) throw new LlmccError(`--noise takes SNRs in dB or 'q' (comma-separated), got '${t}'`);
    return db;
  });
}

export const DEFAULT_NOISE_SNRS = 'q,24,30,36,42';

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
    const feeds = options.data?.length ? bindInputs(model.graph, readTestDataSet(options.data[0])) : undefined;
    rows = quantReport(model, scheme, feeds);
  }
  if (options.noise !== undefined && !options.data?.length) throw new LlmccError('--noise needs --data (the sets whose outputs it compares)');
  const endToEnd = scheme && options.data?.length ? await endToEndLines(modelPath, model, scheme, options, rows!) : [];
  if (options.json) {
    console.log(JSON.stringify(rows ? { ...report, quant: rows } : report, null, 2));
  } else {
    console.log(renderInspectReport(report));
    if (rows) {
      const gptq = scheme!.method === 'gptq';
      const calibration = options.data?.length ? `inputs of ${options.data[0]}` : gptq ? 'the GPTQ calibration activations' : 'seeded Gaussian activations';
      console.log(`\nquantization (${options.bits} bits, group ${scheme!.groupSize}, ${scheme!.symmetric ? 'symmetric' : 'asymmetric'}, method ${scheme!.method ?? 'rtn'}; output SQNR on ${calibration}):`);
      console.log(formatQuantReport(rows));
    }
    for (const line of endToEnd) console.log(line);
  }
  return EXIT_OK;
}

/**
 * The quantized model's first output against each data set's expected one (cosine), and with
 * --noise the same under i.i.d. weight noise (what the quantizer's SQNR allows end to end).
 */
async function endToEndLines(modelPath: string, model: Model, scheme: QuantSchemeOptions, options: InspectOptions, rows: readonly QuantReportRow[]): Promise<string[]> {
  const output = model.graph.outputs[0].name;
  const sets: StudySet[] = options.data!.map((dir) => {
    const data = readTestDataSet(dir);
    const feeds = bindInputs(model.graph, data);
    const expected = (data.outputs.find((o) => o.name === output) ?? data.outputs[0])?.tensor
      ?? runOutput(model, model.graph, { name: dir, feeds }, output);
    return { name: dir, feeds, expected };
  });
  const quantized = await loadModel(modelPath);
  verifyModel(quantized);
  quantizeWeightsPass.run(quantized, scheme);
  const label = (s: StudySet) => path.basename(s.name);
  const lines = ['', `end to end: cosine of output '${output}' to each data set's expected values`];
  for (const set of sets) lines.push(`  quantized (${scheme.method ?? 'rtn'}), ${label(set)}: ${cosine(runOutput(quantized, quantized.graph, set, output).numbers(), set.expected.numbers()).toFixed(6)}`);
  if (options.noise === undefined) return lines;
  const meanDb = rows.length ? rows.reduce((sum, r) => sum + (Number.isFinite(r.weightSqnrDb) ? r.weightSqnrDb : 0), 0) / rows.length : 0;
  const snrsDb = parseSnrs(typeof options.noise === 'string' ? options.noise : DEFAULT_NOISE_SNRS, meanDb);
  const seeds = Number(options.noiseSeeds ?? 16);
  const threshold = Number(options.cosineBar ?? 0.99);
  if (!Number.isInteger(seeds) || seeds < 1) throw new LlmccError(`--noise-seeds must be a positive integer, got '${options.noiseSeeds}'`);
  if (!(threshold > -1 && threshold <= 1)) throw new LlmccError(`--cosine-bar must be in (-1, 1], got '${options.cosineBar}'`);
  const resolver = new SchemeResolver(scheme);
  const layers = findLayers(model.graph).layers.filter((l) => {
    const s = resolver.schemeFor(l);
    return s.kind === 'quant' && l.k % s.groupSize === 0;
  });
  lines.push(`i.i.d. Gaussian noise on the same ${layers.length} weights (quantizer's mean weight SQNR ${meanDb.toFixed(1)} dB), ${seeds} seeds: cosine min / median / max`);
  for (const row of noiseStudy(model, layers, sets, output, { snrsDb, seeds, threshold })) {
    row.cosines.forEach((sorted, i) => lines.push(`  ${row.snrDb.toFixed(1).padStart(5)} dB, ${label(sets[i])}: ${describeCosines(sorted, threshold)}`));
    if (sets.length > 1) lines.push(`  ${row.snrDb.toFixed(1).padStart(5)} dB, every set >= ${threshold}: ${row.allSetsAtLeast}/${seeds}`);
  }
  return lines;
}
