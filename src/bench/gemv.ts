import os from 'node:os';
import { measureReadBandwidth } from './bandwidth.js';
import { median, timeRuns, type GemvShape, type Timed } from './common.js';
import { prepareLlmccWasm } from './llmcc-wasm.js';
import { prepareLlmccWasmDot } from './llmcc-wasm-dot.js';
import { dotGroupBlocker } from '../../passes/dot/layout.js';
import { prepareOrt, type OrtKind, type OrtRuntime } from './ort.js';

/**
 * The GEMV/GEMM benchmark: llmcc-wasm LUT kernels against ONNX Runtime (node CPU and web
 * wasm), single-threaded, hot (one layer, cache-resident when it fits) and cold (a rotating
 * set of distinct layers larger than the last-level cache), with a DRAM read-bandwidth probe
 * from the same run. Results follow the JSON schema of issue 4.
 */

export interface BenchResult {
  impl: 'llmcc-wasm' | 'ort-web-wasm' | 'ort-node-cpu';
  /** What ran, for the table (not part of the JSON schema's comparisons). */
  variant: string;
  op: 'gemv' | 'gemm';
  m: number;
  k: number;
  n: number;
  /** Weight bits; 32 for f32 rows, 1.58 for ternary. */
  bits: number;
  threads: number;
  median_ms: number;
  runs: number;
  weight_gbps: number;
  cold: boolean;
}

export interface BenchReport {
  machine: { cpu: string; cores: number; simd: string; bandwidth_gbps: number };
  results: BenchResult[];
}

export interface GemvBenchOptions {
  sizes: number[];
  ms: number[];
  /** 1–4, or 'ternary'. */
  bits: (number | 'ternary')[];
  groupSize: number;
  /** Which regimes to run. */
  hot: boolean;
  cold: boolean;
  /** Cold only for M = 1 (default suite: GEMM weights are reused per row, so cold adds little). */
  coldGemm: boolean;
  ort: boolean;
  /** Also the int8-activation dot kernels (`--matmul dot`), single-threaded (slower than LUT on wasm: no int8 dot in SIMD128). */
  dot: boolean;
  /** Milliseconds of timed runs per measurement (at least `minRuns` runs). */
  budgetMs: number;
  minRuns: number;
  /** Cold sets exceed this many bytes (default 128 MiB: four times a 32 MiB LLC). */
  coldBytes: number;
  /** N when it differs from K (`bench gemv --n`); default N = K. */
  nOverride?: number;
  /** Thread counts for the llmcc-wasm rows (worker threads on a shared memory); 1 = single thread. */
  threads: number[];
  log: (line: string) => void;
}

export const DEFAULT_SUITE: GemvBenchOptions = {
  sizes: [4096, 8192],
  ms: [1, 16],
  bits: [1, 2, 3, 4, 'ternary'],
  groupSize: 128,
  hot: true,
  cold: true,
  coldGemm: false,
  ort: true,
  dot: false,
  budgetMs: 400,
  minRuns: 3,
  coldBytes: 128 * 1024 * 1024,
  // The targets are single-threaded; a row with every core shows what threads add.
  threads: os.cpus().length > 1 ? [1, os.cpus().length] : [1],
  log: (line) => process.stdout.write(`${line}\n`),
};

/** Bytes of weights one layer reads (packed codes + f32 scales; f32 for bits = 32). */
function weightBytes(k: number, n: number, bits: number, groupSize: number): number {
  if (bits === 32) return k * n * 4;
  return (k * n * Math.ceil(bits)) / 8 + (k / groupSize) * n * 4;
}

/** Bytes one layer occupies in the implementation's memory (drives the cold set's size). */
function residentBytes(impl: BenchResult['impl'], k: number, n: number, bits: number, groupSize: number): number {
  if (bits === 32) return k * n * 4;
  // llmcc planes: bits·N·K/4 g-bit indices, two per byte in a set this large (the wasm lowering
  // packs planes that outgrow the cache, wasmIndicesPerByte), plus scales and offsets.
  if (impl === 'llmcc-wasm') return (Math.ceil(bits) * n * (k / 4)) / 2 + 8 * n * (k / groupSize);
  return weightBytes(k, n, bits, groupSize);
}

async function measure(
  opts: GemvBenchOptions, results: BenchResult[], base: Omit<BenchResult, 'median_ms' | 'runs' | 'weight_gbps' | 'cold' | 'threads'>,
  prepare: (layers: number) => Promise<Timed | undefined>, cold: boolean, threads = 1,
): Promise<void> {
  const layers = cold ? Math.max(2, Math.ceil(opts.coldBytes / residentBytes(base.impl, base.k, base.n, base.bits, opts.groupSize))) : 1;
  const impl = await prepare(layers);
  if (!impl) return;
  try {
    const warmup = cold ? layers : 3;
    const times = await timeRuns(impl, opts.budgetMs, opts.minRuns, 5000, Math.min(warmup, 8));
    const ms = median(times);
    const result: BenchResult = {
      ...base, threads, median_ms: round(ms, 4), runs: times.length,
      weight_gbps: round(weightBytes(base.k, base.n, base.bits, opts.groupSize) / (ms / 1000) / 1e9, 2), cold,
    };
    results.push(result);
    opts.log(formatRow(result));
  } finally {
    await impl.dispose();
  }
}

function round(x: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

function formatRow(r: BenchResult): string {
  const shape = `${r.op} m=${r.m} k=${r.k} n=${r.n}`;
  return `${r.impl.padEnd(13)} ${r.variant.padEnd(22)} ${shape.padEnd(26)} ${r.cold ? 'cold' : 'hot '} ` +
    `${r.median_ms.toFixed(3).padStart(9)} ms  ${r.weight_gbps.toFixed(1).padStart(6)} GB/s  (${r.runs} runs)`;
}

export async function runGemvBench(opts: GemvBenchOptions): Promise<BenchReport> {
  opts.log('measuring DRAM read bandwidth (single thread, 256 MiB)…');
  const bandwidth = await measureReadBandwidth();
  opts.log(`DRAM read bandwidth: ${bandwidth.toFixed(1)} GB/s`);
  const results: BenchResult[] = [];
  const regimes = [...(opts.hot ? [false] : []), ...(opts.cold ? [true] : [])];
  for (const size of opts.sizes) {
    const n = opts.nOverride ?? size;
    for (const m of opts.ms) {
      const op = m === 1 ? 'gemv' : 'gemm';
      const regimesHere = regimes.filter((cold) => !cold || m === 1 || opts.coldGemm);
      for (const bitsSpec of opts.bits) {
        const ternary = bitsSpec === 'ternary';
        const bits = ternary ? 2 : bitsSpec as number;
        const shape: GemvShape = { M: m, K: size, N: n, bits, ternary, groupSize: opts.groupSize };
        for (const threads of opts.threads) {
          const variant = `lut ${ternary ? 'ternary' : `${bits}-bit`}${threads > 1 ? ` ${threads} threads` : ''}`;
          for (const cold of regimesHere) {
            await measure(opts, results, { impl: 'llmcc-wasm', variant, op, m, k: size, n, bits: ternary ? 1.58 : bits },
              (layers) => prepareLlmccWasm(shape, layers, threads), cold, threads);
          }
        }
        // The int8-activation dot kernels (`--matmul dot`), single-threaded, beside the LUT rows.
        if (opts.dot && !dotGroupBlocker(bits, opts.groupSize)) {
          for (const cold of regimesHere) {
            await measure(opts, results, { impl: 'llmcc-wasm', variant: `dot ${ternary ? 'ternary' : `${bits}-bit`}`, op, m, k: size, n, bits: ternary ? 1.58 : bits },
              (layers) => prepareLlmccWasmDot(shape, layers), cold);
          }
        }
      }
      if (!opts.ort) continue;
      const ortRows: { runtime: OrtRuntime; kind: OrtKind; impl: BenchResult['impl']; variant: string; bits: number; coldOk: boolean; gemmOk: boolean }[] = [
        { runtime: 'node', kind: { op: 'matmul' }, impl: 'ort-node-cpu', variant: 'MatMul f32', bits: 32, coldOk: true, gemmOk: true },
        { runtime: 'node', kind: { op: 'nbits', bits: 2, accuracyLevel: 4 }, impl: 'ort-node-cpu', variant: 'MatMulNBits 2-bit acc4', bits: 2, coldOk: true, gemmOk: true },
        { runtime: 'node', kind: { op: 'nbits', bits: 4, accuracyLevel: 4 }, impl: 'ort-node-cpu', variant: 'MatMulNBits 4-bit acc4', bits: 4, coldOk: true, gemmOk: true },
        { runtime: 'web', kind: { op: 'matmul' }, impl: 'ort-web-wasm', variant: 'MatMul f32', bits: 32, coldOk: true, gemmOk: true },
        // About 150× slower than native: GEMV hot only, to keep the suite short.
        { runtime: 'web', kind: { op: 'nbits', bits: 4, accuracyLevel: 4 }, impl: 'ort-web-wasm', variant: 'MatMulNBits 4-bit', bits: 4, coldOk: false, gemmOk: false },
      ];
      for (const row of ortRows) {
        if (m > 1 && !row.gemmOk) continue;
        const shape: GemvShape = { M: m, K: size, N: n, bits: row.bits, ternary: false, groupSize: opts.groupSize };
        for (const cold of regimesHere) {
          if (cold && !row.coldOk) continue;
          await measure(opts, results, { impl: row.impl, variant: row.variant, op, m, k: size, n, bits: row.bits },
            (layers) => prepareOrt(row.runtime, shape, row.kind, layers), cold);
        }
      }
    }
  }
  const cpus = os.cpus();
  return {
    machine: { cpu: cpus[0]?.model ?? 'unknown', cores: cpus.length, simd: 'wasm simd128 (baseline)', bandwidth_gbps: round(bandwidth, 2) },
    results,
  };
}

/** Ratios of llmcc-wasm against the peers at each shape and regime, for the summary. */
export function summarize(report: BenchReport): string[] {
  const lines: string[] = [];
  const key = (r: BenchResult) => `${r.op} m=${r.m} k=${r.k} n=${r.n} ${r.cold ? 'cold' : 'hot'}`;
  const groups = new Map<string, BenchResult[]>();
  for (const r of report.results) {
    const list = groups.get(key(r)) ?? [];
    list.push(r);
    groups.set(key(r), list);
  }
  for (const [name, rows] of groups) {
    const ours = rows.find((r) => r.impl === 'llmcc-wasm' && r.variant === 'lut 2-bit');
    const threaded = rows.find((r) => r.impl === 'llmcc-wasm' && r.bits === 2 && r.threads > 1);
    if (!ours) continue;
    const peers = rows.filter((r) => r.impl !== 'llmcc-wasm');
    if (!peers.length) continue;
    const parts = peers.map((p) => `${p.impl} ${p.variant} ×${(p.median_ms / ours.median_ms).toFixed(2)}`);
    const bw = ours.cold ? `, ${(100 * ours.weight_gbps / report.machine.bandwidth_gbps).toFixed(0)}% of DRAM read` : '';
    const withThreads = threaded ? ` (${threaded.threads} threads: ${threaded.median_ms.toFixed(3)} ms)` : '';
    lines.push(`${name}: llmcc 2-bit ${ours.median_ms.toFixed(3)} ms${bw}${withThreads}; peer time / llmcc (1 thread): ${parts.join(', ')}`);
  }
  return lines;
}
