import { Tensor } from '../../tensor.js';
import type { EvalContext, InferContext, OpDef, OutputInfo } from '../types.js';
import { input, inputType, requireFloat } from './common.js';

const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);

/**
 * FastGelu (com.microsoft): the tanh approximation of GELU on x + bias, where the optional
 * bias has the size of X's last dim: y = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).
 */
export const fastGelu: OpDef = {
  domain: 'com.microsoft',
  op: 'FastGelu',
  infer(ctx: InferContext): OutputInfo[] {
    const x = inputType(ctx, 0, 'X');
    requireFloat(ctx, x.dtype, 'X');
    return [{ type: { dtype: x.dtype, shape: x.shape } }];
  },
  evaluate(ctx: EvalContext): Tensor[] {
    const x = input(ctx, 0, 'X');
    const bias = ctx.inputs[1];
    requireFloat(ctx, x.dtype, 'X');
    const last = x.rank === 0 ? 1 : x.shape[x.rank - 1];
    if (bias && (bias.rank !== 1 || bias.size !== last)) {
      throw ctx.attrs.error(`bias must be 1-D with ${last} elements (X's last dim), got [${bias.shape.join(',')}]`);
    }
    const xs = x.numbers(), bs = bias?.numbers();
    const out = new Float64Array(x.size);
    for (let i = 0; i < x.size; i++) {
      const v = bs ? xs[i] + bs[i % last] : xs[i];
      out[i] = 0.5 * v * (1 + Math.tanh(SQRT_2_OVER_PI * (v + 0.044715 * v * v * v)));
    }
    return [Tensor.fromNumbers(x.dtype, x.shape, out)];
  },
};
