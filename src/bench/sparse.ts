import v8 from 'node:v8';
import type { Attribute, Node, TensorType } from '../../ir/graph.js';
import { defaultZeroPoint } from '../../ir/ops/llmcc/QuantMatMul.js';
import { relayoutSparseWeights, sparseTableLayout } from '../../passes/sparsity/lut.js';
import { indexBytesPerRow, packIndices } from '../../passes/sparsity/pack.js';
import { describePattern, keptPerRow, type NMPattern } from '../../passes/sparsity/pattern.js';
import { selectKept } from '../../passes/sparsity/prune.js';
import type { KernelBuildContext } from '../../targets/wasm/kernel-def.js';
import { buildQuantMatMul } from '../../targets/wasm/kernels/QuantMatMul.js';
import { buildLutPrecompute } from '../../targets/wasm/kernels/lut/LutPrecompute.js';
import { buildSparseLutMatMul } from '../../targets/wasm/kernels/sparse/SparseLutMatMul.js';
import { buildSparseLutPrecompute } from '../../targets/wasm/kernels/sparse/SparseLutPrecompute.js';
import { buildSparseQuantMatMul } from '../../targets/wasm/kernels/sparse/SparseQuantMatMul.js';
import { median, randomFill, type Timed } from './common.js';
import { KernelRunner } from './kernel-runner.js';
import { prepareLlmccWasm } from './llmcc-wasm.js';

/**
 * `llmcc bench gemv --sparsity N:M`: N:M sparse against dense GEMV on wasm at the same bits,
 * in one run, single thread, hot (one layer), dense and sparse runs alternating. Weights are random, magnitude-pruned with the
 * compiler's own pruning (so the achieved sparsity is measured, not assumed); codes are random
 * (speed does not depend on their values). Pairs measured:
 *  - LUT: dense LutPrecompute + LutMatMul against sparse SparseLutPrecompute + SparseLutMatMul
 *    (tables over the kept positions, option b of notes/techniques.md §4);
 *  - dequant: dense QuantMatMul against SparseQuantMatMul (only kept weights multiplied);
 *  - gather-then-LUT (option a): per output row the kept activations would be gathered and a
 *    dense table built from them; its cost is bounded below by N table builds of K·n/m
 *    activations, measured here as N × one LutPrecompute of that length.
 */

export interface SparseBenchOptions {
  pattern: NMPattern;
  K: number;
  N: number;
  M: number;
  bits: number[];
  groupSize: number;
  budgetMs: number;
  minRuns: number;
  log: (line: string) => void;
}

export interface SparseBenchRow {
  bits: number;
  kernel: 'lut' | 'dequant' | 'gather-lut-bound';
  dense_ms: number;
  sparse_ms: number;
  /** sparse / dense of the medians: below 1 means the sparse kernel is faster. */
  ratio: number;
  /** Fastest runs, and their ratio. */
  dense_best_ms: number;
  sparse_best_ms: number;
  best_ratio: number;
  /** Weight bytes the kernel reads (dense, sparse). */
  dense_bytes: number;
  sparse_bytes: number;
}

export interface SparseBenchReport {
  pattern: string;
  /** Fraction of weights that are zero after pruning (measured on the benchmark's weights). */
  achieved_sparsity: number;
  rows: SparseBenchRow[];
}

function intAttrs(values: Record<string, number | string>): Map<string, Attribute> {
  return new Map(Object.entries(values).map(([k, v]) => [k, typeof v === 'number' ? { kind: 'int', value: v } : { kind: 'string', value: v }] as [string, Attribute]));
}

function ctx(node: Node, inputs: (TensorType | undefined)[], outputs: TensorType[]): KernelBuildContext {
  return { node, inputs, outputs, constant: () => undefined, name: node.name };
}

const t = (dtype: TensorType['dtype'], shape: number[]): TensorType => ({ dtype, shape });

/** Random rows [N, K] and their kept positions under the pattern. */
function prunedPositions(o: SparseBenchOptions): { positions: Uint8Array; zeros: number } {
  const rows = randomFill(new Float32Array(o.N * o.K), 7, (u) => u - 0.5);
  const kept = selectKept(rows, o.N, o.K, o.pattern);
  return { positions: kept.positions, zeros: 1 - kept.nonzeroAfter / (o.N * o.K) };
}

function randomCodes(count: number, bits: number, seed: number): Uint8Array {
  return randomFill(new Uint8Array(count), seed, (u) => Math.floor(u * 2 ** bits));
}

async function sparseLut(o: SparseBenchOptions, bits: number, positions: Uint8Array): Promise<Timed> {
  const { K, N, M, groupSize, pattern } = o;
  const layout = sparseTableLayout(pattern);
  const groups = K / pattern.m, blocks = K / groupSize;
  const values = randomCodes(N * keptPerRow(K, pattern), bits, 11);
  const scales = randomFill(new Float32Array(N * blocks), 12, (u) => 0.01 + u * 0.02);
  const w = relayoutSparseWeights({ values, positions, scales, bits, zeroPoint: defaultZeroPoint(bits, false), N, K, groupSize, pattern }, 16);
  const pre: Node = { name: 'spre', domain: 'llmcc', op: 'SparseLutPrecompute', inputs: ['a'], outputs: ['t', 'ts'], attributes: intAttrs({ sparsity_n: pattern.n, sparsity_m: pattern.m, group_size: groupSize, table: 'i8' }) };
  const hasOffsets = bits !== 2; // mid-rise 2-bit codes have no offset term
  const mm: Node = {
    name: 'smm', domain: 'llmcc', op: 'SparseLutMatMul', inputs: ['t', 'ts', 'p', 's', ...(hasOffsets ? ['o'] : [])], outputs: ['y'],
    attributes: intAttrs({ bits, sparsity_n: pattern.n, sparsity_m: pattern.m, group_size: groupSize, K, N, rows_per_tile: 16 }),
  };
  const tablesType = t('i8', [M, groups, layout.slots]);
  const kernels = [
    buildSparseLutPrecompute(ctx(pre, [t('f32', [M, K])], [tablesType, t('f32', [M, blocks])])),
    buildSparseLutMatMul(ctx(mm, [tablesType, t('f32', [M, blocks]), t('u8', [bits, N, groups]), t('f32', [N, blocks]), hasOffsets ? t('f32', [N, blocks]) : undefined], [t('f32', [M, N])])),
  ];
  const runner = await KernelRunner.create(kernels, w.planes.length + 16 * N * blocks + (1 << 24));
  const a = runner.put(randomFill(new Float32Array(M * K), 1, (x) => x * 2 - 1));
  const tables = runner.alloc(M * groups * layout.slots);
  const ts = runner.alloc(M * blocks * 4);
  const planes = runner.put(w.planes);
  const halfScales = runner.put(w.scales);
  const offsets = runner.put(w.offsets ?? randomFill(new Float32Array(N * blocks), 3, (u) => u * 0.01));
  const y = runner.alloc(M * N * 4);
  const precompute = runner.fn('spre');
  const matmul = runner.fn('smm');
  return {
    run() {
      precompute(a, tables, ts, M);
      if (hasOffsets) matmul(tables, ts, planes, halfScales, offsets, y, M);
      else matmul(tables, ts, planes, halfScales, y, M);
    },
    dispose() { /* the memory goes with the runner */ },
  };
}

async function dequant(o: SparseBenchOptions, bits: number, positions?: Uint8Array): Promise<Timed> {
  const { K, N, M, groupSize, pattern } = o;
  const blocks = K / groupSize;
  const sparse = positions !== undefined;
  const attrs = intAttrs({ bits, ternary: 0, group_size: groupSize, K, N, ...(sparse ? { sparsity_n: pattern.n, sparsity_m: pattern.m } : {}) });
  const node: Node = sparse
    ? { name: 'sq', domain: 'llmcc', op: 'SparseQuantMatMul', inputs: ['a', 'v', 'i', 's'], outputs: ['y'], attributes: attrs }
    : { name: 'dq', domain: 'llmcc', op: 'QuantMatMul', inputs: ['a', 'c', 's'], outputs: ['y'], attributes: attrs };
  const kept = sparse ? keptPerRow(K, pattern) : K;
  const inputs = sparse
    ? [t('f32', [M, K]), t('u8', [N, kept]), t('u8', [N, indexBytesPerRow(K, pattern)]), t('f32', [N, blocks])]
    : [t('f32', [M, K]), t('u8', [N, K]), t('f32', [N, blocks])];
  const kernel = sparse ? buildSparseQuantMatMul(ctx(node, inputs, [t('f32', [M, N])])) : buildQuantMatMul(ctx(node, inputs, [t('f32', [M, N])]));
  const runner = await KernelRunner.create([kernel], N * kept * 2 + (1 << 24));
  const a = runner.put(randomFill(new Float32Array(M * K), 1, (x) => x * 2 - 1));
  const codes = runner.put(randomCodes(N * kept, bits, 21));
  const indices = sparse ? runner.put(packIndices(positions, N, K, pattern)) : 0;
  const scales = runner.put(randomFill(new Float32Array(N * blocks), 22, (u) => 0.01 + u * 0.02));
  const y = runner.alloc(M * N * 4);
  const fn = runner.fn(node.name);
  return {
    run() {
      if (sparse) fn(a, codes, indices, scales, y, M);
      else fn(a, codes, scales, y, M);
    },
    dispose() { /* the memory goes with the runner */ },
  };
}

/** N table builds of the K·n/m gathered activations: a lower bound of gather-then-LUT (option a). */
async function gatherLutBound(o: SparseBenchOptions): Promise<Timed> {
  const kept = keptPerRow(o.K, o.pattern);
  const groupSize = Math.min(o.groupSize, kept);
  const pre: Node = { name: 'gpre', domain: 'llmcc', op: 'LutPrecompute', inputs: ['a'], outputs: ['t', 'ts', 'as'], attributes: intAttrs({ g: 4, group_size: groupSize, table: 'i8' }) };
  const runner = await KernelRunner.create([buildLutPrecompute(ctx(pre, [t('f32', [1, kept])], [t('i8', [1, kept / 4, 8]), t('f32', [1, kept / groupSize]), t('f32', [1, kept / groupSize])]))]);
  const a = runner.put(randomFill(new Float32Array(kept), 1, (x) => x * 2 - 1));
  const tables = runner.alloc(kept * 2);
  const ts = runner.alloc((kept / groupSize) * 4);
  const as = runner.alloc((kept / groupSize) * 4);
  const fn = runner.fn('gpre');
  return { run() { fn(a, tables, ts, as, 1); }, dispose() { /* the memory goes with the runner */ } };
}

/** Medians, and the fastest runs (less sensitive to other processes on a shared machine). */
interface Pair {
  dense: number;
  sparse: number;
  denseBest: number;
  sparseBest: number;
}

/** One run's milliseconds. */
async function once(impl: Timed): Promise<number> {
  const t0 = process.hrtime.bigint();
  await impl.run();
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

/**
 * Medians of dense and sparse timed alternately (dense, sparse, dense, …) so that load from
 * other processes on a shared machine hits both alike and the ratio stays meaningful.
 */
async function timedPair(dense: Timed, sparse: Timed, o: SparseBenchOptions): Promise<Pair> {
  try {
    for (let i = 0; i < 3; i++) { await dense.run(); await sparse.run(); }
    const a: number[] = [];
    const b: number[] = [];
    const start = performance.now();
    while (a.length < 5000 && (a.length < o.minRuns || performance.now() - start < 2 * o.budgetMs)) {
      a.push(await once(dense));
      b.push(await once(sparse));
    }
    return { dense: median(a), sparse: median(b), denseBest: Math.min(...a), sparseBest: Math.min(...b) };
  } finally {
    await dense.dispose();
    await sparse.dispose();
  }
}

function fmt(ms: number): string {
  return ms.toFixed(3).padStart(9);
}

export async function runSparseBench(o: SparseBenchOptions): Promise<SparseBenchReport> {
  // Optimized code only: with Liftoff a kernel measured before its (unpredictable) tier-up
  // looks 3–5× slower, which swung the sparse/dense ratio between runs (as src/tune/measure.ts).
  v8.setFlagsFromString('--no-liftoff');
  const { K, N, M, pattern } = o;
  o.log(`pruning a ${N}×${K} random weight to ${describePattern(pattern)} (magnitude, per group of ${pattern.m} along K)…`);
  const { positions, zeros } = prunedPositions(o);
  o.log(`achieved sparsity: ${(100 * zeros).toFixed(2)}% zeros; single thread, hot (one layer), M=${M}, group ${o.groupSize}`);
  const rows: SparseBenchRow[] = [];
  const blocks = K / o.groupSize;
  const kept = keptPerRow(K, pattern);
  const row = (r: SparseBenchRow): void => {
    rows.push(r);
    o.log(`${String(r.bits).padStart(4)}  ${r.kernel.padEnd(17)} ${fmt(r.dense_ms)} ms ${fmt(r.sparse_ms)} ms   ×${r.ratio.toFixed(2).padStart(6)}   ` +
      `${fmt(r.dense_best_ms)} ms ${fmt(r.sparse_best_ms)} ms   ×${r.best_ratio.toFixed(2).padStart(6)}   ` +
      `${(r.dense_bytes / 1e6).toFixed(2).padStart(6)} MB → ${(r.sparse_bytes / 1e6).toFixed(2).padStart(6)} MB`);
  };
  o.log('bits  kernel            median: dense     sparse   sparse/dense   fastest: dense     sparse   sparse/dense   weight bytes (dense → sparse)');
  for (const bits of o.bits) {
    const timings = (pair: Pair, scale = 1) => ({
      dense_ms: pair.dense, sparse_ms: pair.sparse * scale, ratio: (pair.sparse * scale) / pair.dense,
      dense_best_ms: pair.denseBest, sparse_best_ms: pair.sparseBest * scale, best_ratio: (pair.sparseBest * scale) / pair.denseBest,
    });
    const lut = await timedPair(await prepareLlmccWasm({ M, K, N, bits, ternary: false, groupSize: o.groupSize }, 1), await sparseLut(o, bits, positions), o);
    row({
      bits, kernel: 'lut', ...timings(lut),
      // One byte per plane per group of g = 4 (dense) or m (sparse) positions, plus scales/offsets.
      dense_bytes: bits * N * (K / 4) + 8 * N * blocks, sparse_bytes: bits * N * (K / pattern.m) + 8 * N * blocks,
    });
    const dq = await timedPair(await dequant(o, bits), await dequant(o, bits, positions), o);
    row({
      bits, kernel: 'dequant', ...timings(dq),
      dense_bytes: N * K + 4 * N * blocks, sparse_bytes: N * kept + N * indexBytesPerRow(K, pattern) + 4 * N * blocks,
    });
    // The table build of one row's gathered activations, timed against the dense LUT layer.
    const gather = await timedPair(await prepareLlmccWasm({ M, K, N, bits, ternary: false, groupSize: o.groupSize }, 1), await gatherLutBound(o), o);
    row({
      bits, kernel: 'gather-lut-bound', ...timings(gather, N * M),
      dense_bytes: bits * N * (K / 4) + 8 * N * blocks, sparse_bytes: bits * N * (kept / 4) + N * indexBytesPerRow(K, pattern) + 8 * N * blocks,
    });
  }
  return { pattern: describePattern(pattern), achieved_sparsity: zeros, rows };
}
