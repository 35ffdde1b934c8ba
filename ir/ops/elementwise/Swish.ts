import { isFloat } from '../../dtype.js';
import type { OpDef } from '../types.js';
import { mapUnary } from '../util/elementwise.js';
import { requireInput, requireType } from './common.js';

/** Swish (opset 24): x * sigmoid(alpha * x). */
export const Swish: OpDef = {
  domain: '',
  op: 'Swish',
  infer(ctx) {
    const type = requireType(ctx, 0);
    if (!isFloat(type.dtype)) throw ctx.attrs.error(`Swish does not accept ${type.dtype} inputs`);
    return [{ type: { dtype: type.dtype, shape: type.shape } }];
  },
  evaluate(ctx) {
    const x = requireInput(ctx, 0);
    if (!isFloat(x.dtype)) throw ctx.attrs.error(`Swish does not accept ${x.dtype} inputs`);
    const alpha = ctx.attrs.float('alpha', 1);
    return [mapUnary(x, x.dtype, (v) => v / (1 + Math.exp(-alpha * v)))];
  },
};
