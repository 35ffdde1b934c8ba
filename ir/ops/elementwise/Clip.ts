import type { OpDef } from '../types.js';
import type { Tensor } from '../../tensor.js';
import { mapUnary } from '../util/elementwise.js';
import { requireInput, requireType } from './common.js';

/**
 * Clip: min(max(x, lo), hi). Before opset 11 the bounds are float attributes; since 11
 * they are optional scalar inputs of the input's dtype. When lo > hi every element
 * becomes hi (the spec's rule, which this order of min/max gives). NaN stays NaN.
 */
function scalarBound(t: Tensor | undefined, name: string, error: (m: string) => Error): number | undefined {
  if (!t) return undefined;
  if (t.size !== 1) throw error(`Clip's ${name} must be a scalar, got shape [${t.shape.join(',')}]`);
  return t.get(0);
}

export const Clip: OpDef = {
  domain: '',
  op: 'Clip',
  infer(ctx) {
    const input = requireType(ctx, 0);
    if (input.dtype === 'string' || input.dtype === 'bool') throw ctx.attrs.error(`Clip does not accept ${input.dtype} inputs`);
    for (const i of [1, 2]) {
      const bound = ctx.inputs[i];
      if (bound && bound.dtype !== input.dtype) throw ctx.attrs.error(`Clip bound ${i} has dtype ${bound.dtype}, expected ${input.dtype}`);
    }
    return [{ type: { dtype: input.dtype, shape: input.shape } }];
  },
  evaluate(ctx) {
    const x = requireInput(ctx, 0);
    if (x.dtype === 'string' || x.dtype === 'bool') throw ctx.attrs.error(`Clip does not accept ${x.dtype} inputs`);
    const error = (m: string) => ctx.attrs.error(m);
    let lo: number | undefined;
    let hi: number | undefined;
    if (ctx.opset < 11) {
      lo = ctx.attrs.float('min', -Infinity);
      hi = ctx.attrs.float('max', Infinity);
    } else {
      lo = scalarBound(ctx.inputs[1], 'min', error);
      hi = scalarBound(ctx.inputs[2], 'max', error);
    }
    const low = lo ?? -Infinity;
    const high = hi ?? Infinity;
    return [mapUnary(x, x.dtype, (v) => (Number.isNaN(v) ? v : Math.min(Math.max(v, low), high)))];
  },
};
