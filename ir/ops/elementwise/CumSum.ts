import { Tensor } from '../../tensor.js';
import type { OpDef } from '../types.js';
import { normalizeAxis } from '../util/shape.js';
import { requireInput, requireType, splitAtAxis, withNode } from './common.js';

/** CumSum along the axis input; `exclusive` shifts by one, `reverse` runs from the end. */
export const CumSum: OpDef = {
  domain: '',
  op: 'CumSum',
  infer(ctx) {
    const input = requireType(ctx, 0);
    if (input.dtype === 'string' || input.dtype === 'bool') throw ctx.attrs.error(`CumSum does not accept ${input.dtype} inputs`);
    requireType(ctx, 1);
    return [{ type: { dtype: input.dtype, shape: input.shape } }];
  },
  evaluate(ctx) {
    const x = requireInput(ctx, 0);
    const axisTensor = requireInput(ctx, 1);
    if (x.dtype === 'string' || x.dtype === 'bool') throw ctx.attrs.error(`CumSum does not accept ${x.dtype} inputs`);
    if (axisTensor.size !== 1) throw ctx.attrs.error(`CumSum axis must be a scalar, got shape [${axisTensor.shape.join(',')}]`);
    const axis = withNode(ctx, () => normalizeAxis(axisTensor.get(0), x.rank));
    const exclusive = ctx.attrs.int('exclusive', 0) === 1;
    const reverse = ctx.attrs.int('reverse', 0) === 1;
    const { outer, length, inner } = splitAtAxis(x.shape, axis);
    const src = x.numbers();
    const out = new Float64Array(src.length);
    for (let o = 0; o < outer; o++) {
      for (let i = 0; i < inner; i++) {
        const base = o * length * inner + i;
        let sum = 0;
        for (let step = 0; step < length; step++) {
          const k = reverse ? length - 1 - step : step;
          const at = base + k * inner;
          if (exclusive) {
            out[at] = sum;
            sum += src[at];
          } else {
            sum += src[at];
            out[at] = sum;
          }
        }
      }
    }
    return [Tensor.fromNumbers(x.dtype, x.shape, out)];
  },
};
