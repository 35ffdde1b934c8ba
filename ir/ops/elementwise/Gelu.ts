import { isFloat } from '../../dtype.js';
import type { OpDef } from '../types.js';
import { mapUnary } from '../util/elementwise.js';
import { erf } from './math.js';
import { requireInput, requireType } from './common.js';

const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);

/** Gelu (opset 20): exact erf form, or the tanh approximation when approximate = "tanh". */
export const Gelu: OpDef = {
  domain: '',
  op: 'Gelu',
  infer(ctx) {
    const type = requireType(ctx, 0);
    if (!isFloat(type.dtype)) throw ctx.attrs.error(`Gelu does not accept ${type.dtype} inputs`);
    approximation(ctx.attrs.string('approximate', 'none'), ctx.attrs.error.bind(ctx.attrs));
    return [{ type: { dtype: type.dtype, shape: type.shape } }];
  },
  evaluate(ctx) {
    const x = requireInput(ctx, 0);
    if (!isFloat(x.dtype)) throw ctx.attrs.error(`Gelu does not accept ${x.dtype} inputs`);
    const tanh = approximation(ctx.attrs.string('approximate', 'none'), ctx.attrs.error.bind(ctx.attrs));
    const f = tanh
      ? (v: number) => 0.5 * v * (1 + Math.tanh(SQRT_2_OVER_PI * (v + 0.044715 * v * v * v)))
      : (v: number) => 0.5 * v * (1 + erf(v / Math.SQRT2));
    return [mapUnary(x, x.dtype, f)];
  },
};

/** true for the tanh approximation; errors on modes the spec does not define. */
function approximation(mode: string, error: (m: string) => Error): boolean {
  if (mode === 'none') return false;
  if (mode === 'tanh') return true;
  throw error(`unsupported approximate mode '${mode}' (expected 'none' or 'tanh')`);
}
