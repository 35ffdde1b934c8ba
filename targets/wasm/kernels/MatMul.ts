import type { Expr } from '../../../codegen/kernel.js';
import { type BufferRef, KernelBuilder, add, f32, i32, mul, rem, splat, sub } from '../../../codegen/builder.js';
import type { WasmKernelDef } from '../kernel-def.js';
import { broadcastStrides } from './Expand.js';
import { declareIO, rankOf, scalars, shapeIn } from './nn-util.js';

/**
 * C[m, n] (+)= A[m, k] B[k, n] for row-major A (row stride `k`), B and C (row stride `n`),
 * all offsets in elements. Register tiles of 4 rows x 8 columns (8 f32x4 accumulators, each
 * B vector reused by 4 rows), then 1-row tiles, then 4- and 1-column tails; every output
 * sums its products in k order.
 */
export function emitGemmTile(
  k: KernelBuilder, a: BufferRef, b: BufferRef, c: BufferRef,
  aBase: Expr, bBase: Expr, cBase: Expr, m: Expr, n: Expr, depth: Expr,
): void {
  const n8 = k.let('n8', sub(n, rem(n, 8)));
  const n4 = k.let('n4', sub(n, rem(n, 4)));
  const m4 = k.let('m4', sub(m, rem(m, 4)));
  const rowsBlock = (rows: number, row0: Expr): void => {
    const aRows = Array.from({ length: rows }, (_, r) => k.let(`a_row${r}`, add(aBase, mul(add(row0, r), depth))));
    const cRows = Array.from({ length: rows }, (_, r) => k.let(`c_row${r}`, add(cBase, mul(add(row0, r), n))));
    const vectorColumns = (vecs: number, col0: Expr): void => {
      const accs = Array.from({ length: rows * vecs }, (_, i) => k.mut(`acc${i}`, splat(f32(0), 'f32x4')));
      k.loop('p', 0, depth, (p) => {
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
    k.loop('j', 0, n8, (j) => vectorColumns(2, j), { step: 8 });
    k.loop('j', n8, n4, (j) => vectorColumns(1, j), { step: 4 });
    k.loop('j', n4, n, (j) => {
      const accs = Array.from({ length: rows }, (_, r) => k.mut(`sacc${r}`, f32(0)));
      k.loop('p', 0, depth, (p) => {
        const bv = k.let('bs', b.load(add(add(bBase, mul(p, n)), j)));
        for (let r = 0; r < rows; r++) k.set(accs[r], add(accs[r], mul(a.load(add(aRows[r], p)), bv)));
      });
      for (let r = 0; r < rows; r++) c.store(add(cRows[r], j), accs[r]);
    });
  };
  k.loop('i', 0, m4, (i) => rowsBlock(4, i), { step: 4, parallel: true });
  k.loop('i', m4, m, (i) => rowsBlock(1, i), { parallel: true });
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
  build(ctx) {
    const { batchRank } = matmulRanks(rankOf(ctx.inputs[0])!, rankOf(ctx.inputs[1])!);
    const { k, inputs, outputs } = declareIO(ctx);
    const [m, n, depth] = scalars(k, 'p', 3);
    const dims = scalars(k, 'batch_dim', batchRank);
    const aStrides = scalars(k, 'a_stride', batchRank);
    const bStrides = scalars(k, 'b_stride', batchRank);
    const cStrides = scalars(k, 'c_stride', batchRank);
    const nest = (level: number, aOff: Expr, bOff: Expr, cOff: Expr): void => {
      if (level === batchRank) {
        emitGemmTile(k, inputs[0]!, inputs[1]!, outputs[0]!, aOff, bOff, cOff, m, n, depth);
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
