import type { Dim } from '../../graph.js';
import { Tensor } from '../../tensor.js';
import type { OpDef } from '../types.js';
import { broadcastIndex, broadcastShapes } from '../util/shape.js';
import { requireInput } from './common.js';

/** Y = alpha * op(A) * op(B) + beta * C, with C unidirectionally broadcast to [M, N]. */
export const Gemm: OpDef = {
  domain: '',
  op: 'Gemm',
  infer(ctx) {
    const a = requireInput(ctx, 0, 'A');
    const b = requireInput(ctx, 1, 'B');
    const transA = ctx.attrs.int('transA', 0) !== 0;
    const transB = ctx.attrs.int('transB', 0) !== 0;
    if (a.shape && a.shape.length !== 2) throw ctx.attrs.error(`A must be 2-D, got rank ${a.shape.length}`);
    if (b.shape && b.shape.length !== 2) throw ctx.attrs.error(`B must be 2-D, got rank ${b.shape.length}`);
    let shape: Dim[] | undefined;
    if (a.shape && b.shape) {
      const [m, ka] = transA ? [a.shape[1], a.shape[0]] : a.shape;
      const [kb, n] = transB ? [b.shape[1], b.shape[0]] : b.shape;
      if (typeof ka === 'number' && typeof kb === 'number' && ka !== kb) {
        throw ctx.attrs.error(`inner dimensions do not match: ${ka} and ${kb}`);
      }
      shape = [m, n];
      const c = ctx.inputs[2];
      if (c?.shape && !broadcastsTo(c.shape, shape)) {
        throw ctx.attrs.error(`C of shape [${c.shape.join(',')}] does not broadcast to [${shape.join(',')}]`);
      }
    }
    return [{ type: { dtype: a.dtype, shape } }];
  },
  evaluate(ctx) {
    const [a, b, c] = ctx.inputs;
    if (!a || !b) throw ctx.attrs.error('A and B are required');
    const transA = ctx.attrs.int('transA', 0) !== 0;
    const transB = ctx.attrs.int('transB', 0) !== 0;
    const alpha = ctx.attrs.float('alpha', 1);
    const beta = ctx.attrs.float('beta', 1);
    if (a.rank !== 2 || b.rank !== 2) throw ctx.attrs.error('A and B must be 2-D');
    const [m, k] = transA ? [a.shape[1], a.shape[0]] : a.shape;
    const [kb, n] = transB ? [b.shape[1], b.shape[0]] : b.shape;
    if (k !== kb) throw ctx.attrs.error(`inner dimensions do not match: ${k} and ${kb}`);
    const av = a.numbers();
    const bv = b.numbers();
    const aAt = (i: number, p: number): number => (transA ? av[p * m + i] : av[i * k + p]);
    const bAt = (p: number, j: number): number => (transB ? bv[j * k + p] : bv[p * n + j]);
    let cMap: Int32Array | undefined;
    if (c) {
      if (!broadcastsTo(c.shape, [m, n])) {
        throw ctx.attrs.error(`C of shape [${c.shape.join(',')}] does not broadcast to [${m},${n}]`);
      }
      cMap = broadcastIndex([m, n], c.shape);
    }
    const cv = c?.numbers();
    const values = new Float64Array(m * n);
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        let sum = 0;
        for (let p = 0; p < k; p++) sum += aAt(i, p) * bAt(p, j);
        let y = alpha * sum;
        if (cv && cMap) y += beta * cv[cMap[i * n + j]];
        values[i * n + j] = y;
      }
    }
    return [Tensor.fromNumbers(a.dtype, [m, n], values)];
  },
};

/** Whether `from` broadcasts unidirectionally to `to` (C may not grow the output). */
function broadcastsTo(from: readonly Dim[], to: readonly Dim[]): boolean {
  try {
    return broadcastShapes(from, to).join() === to.join();
  } catch {
    return false;
  }
}
