import * as fs from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { LlmccError } from '../../../ir/errors.js';
import { parsePattern } from '../../../passes/sparsity/pattern.js';
import { runSparseBench } from '../../bench/sparse.js';
import { type DecoderBenchRow, type DecodersBenchOptions, defaultDecodersOptions, defaultModelsDir, formatDecodersBench, runDecodersBench } from '../../bench/decoders.js';
import { DEFAULT_SUITE, runGemvBench, summarize, type GemvBenchOptions } from '../../bench/gemv.js';

export interface BenchGemvOptions {
  k?: number;
  n?: number;
  bits?: string;
  m?: number;
  json?: string;
  cold?: boolean;
  hot?: boolean;
  ort?: boolean;
  groupSize?: number;
  budget?: number;
  /** Also the int8-activation dot kernels. */
  dot?: boolean;
  /** `bench gemv --sparsity N:M`: the sparse-vs-dense comparison (src/bench/sparse.ts). */
  sparsity?: string;
}

function parseBits(spec: string): (number | 'ternary')[] {
  return spec.split(',').map((b) => {
    const t = b.trim();
    if (t === 'ternary' || t === 't') return 'ternary';
    const n = Number(t);
    if (![1, 2, 3, 4].includes(n)) throw new LlmccError(`--bits must be 1, 2, 3, 4 or ternary (comma-separated), got '${t}'`);
    return n;
  });
}

/**
 * `llmcc bench` (the default suite) and `llmcc bench gemv --k K --n N --bits B [--m M]`.
 * K and N must currently be equal in the suite's shapes only by default; any K = multiple of
 * the group size, N = multiple of 16 works.
 */
export async function benchGemvCommand(opts: BenchGemvOptions, single: boolean): Promise<number> {
  if (single && opts.sparsity) return benchSparseCommand(opts);
  const suite: GemvBenchOptions = { ...DEFAULT_SUITE };
  if (single) {
    const k = opts.k ?? 4096;
    const n = opts.n ?? k;
    const groupSize = opts.groupSize ?? suite.groupSize;
    if (k % groupSize !== 0) throw new LlmccError(`--k ${k} must be a multiple of the group size ${groupSize}`);
    if (n % 16 !== 0) throw new LlmccError(`--n ${n} must be a multiple of 16`);
    suite.sizes = [k];
    suite.nOverride = n;
    suite.ms = [opts.m ?? 1];
    suite.bits = parseBits(opts.bits ?? '2');
    suite.groupSize = groupSize;
    suite.coldGemm = true;
  }
  if (opts.cold === false) suite.cold = false;
  if (opts.hot === false) suite.hot = false;
  if (opts.ort === false) suite.ort = false;
  if (opts.dot) suite.dot = true;
  if (opts.budget !== undefined) suite.budgetMs = opts.budget;
  const report = await runGemvBench(suite);
  for (const line of summarize(report)) process.stdout.write(`${line}\n`);
  // The bare suite also runs the shared decoders end to end against ORT (when the folder is there).
  const decoders = !single && fs.existsSync(defaultModelsDir()) ? await decodersTables(defaultDecodersOptions()) : undefined;
  if (opts.json) {
    const json = { machine: report.machine, results: report.results.map(({ variant: _variant, ...r }) => r), ...(decoders ? { decoders } : {}) };
    await writeFile(opts.json, `${JSON.stringify(json, null, 2)}\n`);
    process.stdout.write(`wrote ${opts.json}\n`);
  }
  return 0;
}

/** `llmcc bench gemv --sparsity N:M [--k K] [--n N] [--bits 2,4] [--m M]`: sparse vs dense on wasm. */
async function benchSparseCommand(opts: BenchGemvOptions): Promise<number> {
  const pattern = parsePattern(opts.sparsity!);
  const K = opts.k ?? 4096;
  const N = opts.n ?? K;
  const groupSize = opts.groupSize ?? DEFAULT_SUITE.groupSize;
  if (K % groupSize !== 0 || groupSize % pattern.m !== 0) throw new LlmccError(`--k ${K} must be a multiple of the group size ${groupSize}, itself a multiple of ${pattern.m}`);
  if (N % 16 !== 0) throw new LlmccError(`--n ${N} must be a multiple of 16`);
  const bits = parseBits(opts.bits ?? '2,4').map((b) => {
    if (b === 'ternary') throw new LlmccError('--sparsity benchmarks 1–4 bit codes, not ternary');
    return b;
  });
  const report = await runSparseBench({
    pattern, K, N, M: opts.m ?? 1, bits, groupSize, budgetMs: opts.budget ?? DEFAULT_SUITE.budgetMs, minRuns: DEFAULT_SUITE.minRuns,
    log: (line) => process.stdout.write(`${line}\n`),
  });
  if (opts.json) {
    await writeFile(opts.json, `${JSON.stringify(report, null, 2)}\n`);
    process.stdout.write(`wrote ${opts.json}\n`);
  }
  return 0;
}

async function decodersTables(options: DecodersBenchOptions): Promise<DecoderBenchRow[]> {
  const rows = await runDecodersBench(options, (line) => process.stderr.write(`${line}\n`));
  for (const line of formatDecodersBench(rows, options)) process.stdout.write(`${line}\n`);
  return rows;
}

export interface BenchDecodersCliOptions {
  models?: string;
  promptLength?: number;
  maxTokens?: number;
  warmup?: number;
  rebuild?: boolean;
  bundleDir?: string;
  json?: string;
}

/** `llmcc bench decoders [--models DIR]`: every decoder graph on llmcc-wasm vs onnxruntime-web/-node. */
export async function benchDecodersCommand(opts: BenchDecodersCliOptions): Promise<number> {
  const defaults = defaultDecodersOptions();
  const options: DecodersBenchOptions = {
    ...defaults,
    modelsDir: opts.models ?? defaults.modelsDir,
    promptLength: opts.promptLength ?? defaults.promptLength,
    maxTokens: opts.maxTokens ?? defaults.maxTokens,
    warmupTokens: opts.warmup ?? defaults.warmupTokens,
    rebuild: opts.rebuild === true,
    bundleDir: opts.bundleDir ?? defaults.bundleDir,
  };
  const rows = await decodersTables(options);
  if (opts.json) {
    await writeFile(opts.json, `${JSON.stringify({ options, decoders: rows }, null, 2)}\n`);
    process.stdout.write(`wrote ${opts.json}\n`);
  }
  return rows.some((row) => row.results.some((r) => r.error)) ? 1 : 0;
}
