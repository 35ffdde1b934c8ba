import type { Expr } from '../../../codegen/kernel.js';
import { type BufferRef, KernelBuilder, add, f32, i32, mul, rem, splat, sub } from '../../../codegen/builder.js';
import type { KernelBuildContext, TuningKnob, WasmKernelDef } from '../kernel-def.js';
import { broadcastStrides } from './Expand.js';
import { declareIO, rankOf, scalars, shapeIn } from './nn-util.js';

/**
 * Register tiles of the f32 GEMM: `rows` × (`vecs`·4) outputs per step; rows left over (all
 * of them when M < rows, as in decode's GEMV) use 1 × (`rowVecs`·4) tiles; K is unrolled
 * `kUnroll` times.
 */
export interface GemmTile {
  rows: number;
  vecs: number;
  rowVecs: number;
  kUnroll: number;
}

/** The hand-picked tiles (before tuning): 4 rows x 8 columns (8 f32x4 accumulators), 1 x 8 for single rows, no K unroll. */
export const DEFAULT_GEMM_TILE: GemmTile = { rows: 4, vecs: 2, rowVecs: 2, kUnroll: 1 };

/** MatMul's tuning knobs; every combination computes bit-identical results (same k order). */
export const GEMM_TILE_KNOBS: readonly TuningKnob[] = [
  { name: 'rows', values: [2, 4, 6], default: DEFAULT_GEMM_TILE.rows },
  { name: 'vecs', values: [1, 2, 3, 4], default: DEFAULT_GEMM_TILE.vecs },
  { name: 'row_vecs', values: [1, 2, 4, 6], default: DEFAULT_GEMM_TILE.rowVecs },
  { name: 'k_unroll', values: [1, 2, 4], default: DEFAULT_GEMM_TILE.kUnroll },
];

/** The tile `ctx.tuning` asks for (each knob's default when absent or not one of its values). */
export function gemmTileOf(tuning: KernelBuildContext['tuning']): GemmTile {
  const pick = (name: string): number => {
    const knob = GEMM_TILE_KNOBS.find((kn) => kn.name === name)!;
    const value = tuning?.[name];
    return value !== undefined && knob.values.includes(value) ? value : knob.default;
  };
  return { rows: pick('rows'), vecs: pick('vecs'), rowVecs: pick('row_vecs'), kUnroll: pick('k_unroll') };
}

/**
 * C[m, n] (+)= A[m, k] B[k, n] for row-major A (row stride `k`), B and C (row stride `n`),
 * all offsets in elements. Register tiles of `tile.rows` rows x `tile.vecs` f32x4 columns
 * (each B vector reused by every row of the tile), then 1-row tiles of `tile.rowVecs`
 * vectors; 1-vector and scalar column tails. The K loop is unrolled `tile.kUnroll` times
 * with a remainder loop. Every output sums its products in k order, so all tiles give
 * bit-identical results.
 */
export function emitGemmTile(
  k: KernelBuilder, a: BufferRef, b: BufferRef, c: BufferRef,
  aBase: Expr, bBase: Expr, cBase: Expr, m: Expr, n: Expr, depth: Expr, tile: GemmTile = DEFAULT_GEMM_TILE,
): void {
  const n4 = k.let('n4', sub(n, rem(n, 4)));
  const mTiled = k.let('m_tiled', sub(m, rem(m, tile.rows)));
  const pUnrolled = tile.kUnroll > 1 ? k.let('p_unrolled', sub(depth, rem(depth, tile.kUnroll))) : depth;
  /** The K loop: `step(p)` for p in [0, depth), unrolled, in order. */
  const depthLoop = (step: (p: Expr) => void): void => {
    k.loop('p', 0, pUnrolled, (p) => {
      for (let u = 0; u < tile.kUnroll; u++) step(u === 0 ? p : add(p, u));
    }, { step: tile.kUnroll });
    if (tile.kUnroll > 1) k.loop('p', pUnrolled, depth, step);
  };
  const rowsBlock = (rows: number, tileVecs: number, row0: Expr): void => {
    const aRows = Array.from({ length: rows }, (_, r) => k.let(`a_row${r}`, add(aBase, mul(add(row0, r), depth))));
    const cRows = Array.from({ length: rows }, (_, r) => k.let(`c_row${r}`, add(cBase, mul(add(row0, r), n))));
    const vectorColumns = (vecs: number, col0: Expr): void => {
      const accs = Array.from({ length: rows * vecs }, (_, i) => k.mut(`acc${i}`, splat(f32(0), 'f32x4')));
      depthLoop((p) => {
        const bRow = k.let('b_row', add(add(bBase, mul(p, n)), col0));
        const bv = Array.from({ length: vecs }, (_, v) => k.let(`bv${v}`, b.loadVec(add(bRow, 4 * v), 'f32x4')));
        for (let r = 0; r < rows; r++) {
          const av = k.let(`av${r}`, splat(a.load(add(aRows[r], p)), 'f32x4'));
          for (let v = 0; v < vecs; v++) k.set(accs[r * vecs + v], add(accs[r * vecs + v], mul(av, bv[v])));
        }
      });
      for (let r = 0; r < rows; r++) {
        for (let v = 0; v < vecs; v++) c.storeVec(add(add(cRows[r], col0), 4 * v), accs[r * vecs + v]);
      }
    };
    const nWide = k.let('n_wide', sub(n, rem(n, tileVecs * 4)));
    k.loop('j', 0, nWide, (j) => vectorColumns(tileVecs, j), { step: tileVecs * 4 });
    if (tileVecs > 1) k.loop('j', nWide, n4, (j) => vectorColumns(1, j), { step: 4 });
    k.loop('j', n4, n, (j) => {
      const accs = Array.from({ length: rows }, (_, r) => k.mut(`sacc${r}`, f32(0)));
      depthLoop((p) => {
        const bv = k.let('bs', b.load(add(add(bBase, mul(p, n)), j)));
        for (let r = 0; r < rows; r++) k.set(accs[r], add(accs[r], mul(a.load(add(aRows[r], p)), bv)));
      });
      for (let r = 0; r < rows; r++) c.store(add(cRows[r], j), accs[r]);
    });
  };
  k.loop('i', 0, mTiled, (i) => rowsBlock(tile.rows, tile.vecs, i), { step: tile.rows, parallel: true });
  k.loop('i', mTiled, m, (i) => rowsBlock(1, tile.rowVecs, i), { parallel: true });
}

/** Ranks after numpy's 1-D promotion, and the output's batch rank. */
function matmulRanks(aRank: number, bRank: number): { batchRank: number } {
  return { batchRank: Math.max(Math.max(aRank, 2) - 2, Math.max(bRank, 2) - 2) };
}

/**
 * MatMul (f32): numpy semantics (1-D promotion, broadcast batch dims). The batch nest walks
 * the output's batch dims with per-operand strides (0 where an operand broadcasts).
 */
export const matMulKernel: WasmKernelDef = {
  domain: '',
  op: 'MatMul',
  check(ctx) {
    const [a, b] = ctx.inputs;
    if (rankOf(a) === undefined || rankOf(b) === undefined) return 'operand ranks are unknown';
    if (rankOf(a) === 0 || rankOf(b) === 0) return 'MatMul operands must have rank >= 1';
    const float = (t: typeof a): boolean => !!t && ['f32', 'f16', 'bf16', 'f64'].includes(t.dtype);
    if (!float(a) || !float(b)) return `MatMul on wasm is float only (got ${a?.dtype} x ${b?.dtype})`;
    return undefined;
  },
  tuningSpace: () => GEMM_TILE_KNOBS,
  build(ctx) {
    const { batchRank } = matmulRanks(rankOf(ctx.inputs[0])!, rankOf(ctx.inputs[1])!);
    const tile = gemmTileOf(ctx.tuning);
    const { k, inputs, outputs } = declareIO(ctx);
    const [m, n, depth] = scalars(k, 'p', 3);
    const dims = scalars(k, 'batch_dim', batchRank);
    const aStrides = scalars(k, 'a_stride', batchRank);
    const bStrides = scalars(k, 'b_stride', batchRank);
    const cStrides = scalars(k, 'c_stride', batchRank);
    const nest = (level: number, aOff: Expr, bOff: Expr, cOff: Expr): void => {
      if (level === batchRank) {
        emitGemmTile(k, inputs[0]!, inputs[1]!, outputs[0]!, aOff, bOff, cOff, m, n, depth, tile);
        return;
      }
      k.loop(`b${level}`, 0, dims[level], (bi) => {
        nest(level + 1,
          k.let(`a_off${level}`, add(aOff, mul(bi, aStrides[level]))),
          k.let(`b_off${level}`, add(bOff, mul(bi, bStrides[level]))),
          k.let(`c_off${level}`, add(cOff, mul(bi, cStrides[level]))));
      });
    };
    nest(0, i32(0), i32(0), i32(0));
    return k.build();
  },
  args(_node, shapes) {
    const aShape = shapeIn(shapes, 0);
    const bShape = shapeIn(shapes, 1);
    const aMat = aShape.length === 1 ? [1, aShape[0]] : aShape;
    const bMat = bShape.length === 1 ? [bShape[0], 1] : bShape;
    const { batchRank } = matmulRanks(aShape.length, bShape.length);
    const m = aMat[aMat.length - 2];
    const depth = aMat[aMat.length - 1];
    const n = bMat[bMat.length - 1];
    const aBatch = aMat.slice(0, -2);
    const bBatch = bMat.slice(0, -2);
    const outBatch = Array.from({ length: batchRank }, (_, d) => {
      const ad = aBatch[d - (batchRank - aBatch.length)] ?? 1;
      const bd = bBatch[d - (batchRank - bBatch.length)] ?? 1;
      return Math.max(ad, bd);
    });
    // Batch strides in elements of whole matrices.
    const scaled = (strides: number[], size: number): number[] => strides.map((s) => s * size);
    const cStrides = outBatch.map((_, d) => outBatch.slice(d + 1).reduce((x, y) => x * y, 1) * m * n);
    return [
      m, n, depth, ...outBatch,
      ...scaled(broadcastStrides(aBatch, outBatch), m * depth),
      ...scaled(broadcastStrides(bBatch, outBatch), depth * n),
      ...cStrides,
    ];
  },
};
