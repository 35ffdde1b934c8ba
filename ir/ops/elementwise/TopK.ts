import { Tensor } from '../../tensor.js';
import type { Dim } from '../../graph.js';
import type { EvalContext, OpDef } from '../types.js';
import { normalizeAxis } from '../util/shape.js';
import { requireInput, requireType, splitAtAxis, withNode } from './common.js';

/**
 * TopK: the k largest (or smallest) elements along `axis` and their i64 indices.
 * k is an attribute before opset 10 and a one-element input after. Equal values keep
 * index order (lower index first); NaN ranks above every number, as in numpy's sort.
 * Outputs are always sorted, which satisfies sorted = 0 too (its order is unspecified).
 */
function kOf(ctx: EvalContext): number {
  if (ctx.opset < 10) return ctx.attrs.int('k');
  const t = requireInput(ctx, 1);
  if (t.size !== 1) throw ctx.attrs.error(`TopK's k must have one element, got shape [${t.shape.join(',')}]`);
  return t.get(0);
}

export const TopK: OpDef = {
  domain: '',
  op: 'TopK',
  infer(ctx) {
    const input = requireType(ctx, 0);
    if (input.dtype === 'string' || input.dtype === 'bool') throw ctx.attrs.error(`TopK does not accept ${input.dtype} inputs`);
    const types = (shape: Dim[] | undefined) => [
      { type: { dtype: input.dtype, shape } },
      { type: { dtype: 'i64' as const, shape: shape ? [...shape] : undefined } },
    ];
    if (!input.shape) return types(undefined);
    const axis = withNode(ctx, () => normalizeAxis(ctx.attrs.int('axis', -1), input.shape!.length));
    let k: Dim | undefined;
    if (ctx.opset < 10) k = ctx.attrs.int('k');
    else {
      const constant = ctx.constant(1);
      k = constant ? constant.get(0) : ctx.shapeValue(1)?.[0];
    }
    const shape = [...input.shape];
    shape[axis] = k ?? ctx.symbols.fresh();
    return types(shape);
  },
  evaluate(ctx) {
    const x = requireInput(ctx, 0);
    if (x.dtype === 'string' || x.dtype === 'bool') throw ctx.attrs.error(`TopK does not accept ${x.dtype} inputs`);
    const axis = withNode(ctx, () => normalizeAxis(ctx.attrs.int('axis', -1), x.rank));
    const largest = ctx.opset < 11 || ctx.attrs.int('largest', 1) === 1;
    const k = kOf(ctx);
    const { outer, length, inner } = splitAtAxis(x.shape, axis);
    if (k < 0 || k > length) throw ctx.attrs.error(`TopK's k = ${k} is outside [0, ${length}] for axis ${axis}`);
    const src = x.numbers();
    const outShape = [...x.shape];
    outShape[axis] = k;
    const values = new Float64Array(outer * k * inner);
    const indices = new Float64Array(outer * k * inner);
    // Descending for largest, ascending otherwise; NaN is the greatest; ties by index.
    const rank = (a: number, b: number): number => {
      if (Number.isNaN(a) || Number.isNaN(b)) return Number.isNaN(a) ? (Number.isNaN(b) ? 0 : 1) : -1;
      return a < b ? -1 : a > b ? 1 : 0;
    };
    const order = Array.from({ length }, (_, i) => i);
    for (let o = 0; o < outer; o++) {
      for (let i = 0; i < inner; i++) {
        const base = o * length * inner + i;
        const at = (j: number) => src[base + j * inner];
        order.sort((p, q) => (largest ? rank(at(q), at(p)) : rank(at(p), at(q))) || p - q);
        for (let j = 0; j < k; j++) {
          const dst = (o * k + j) * inner + i;
          values[dst] = at(order[j]);
          indices[dst] = order[j];
        }
        for (let j = 0; j < length; j++) order[j] = j;
      }
    }
    return [Tensor.fromNumbers(x.dtype, outShape, values), Tensor.fromNumbers('i64', outShape, indices)];
  },
};
