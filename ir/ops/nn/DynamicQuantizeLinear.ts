import { Tensor } from '../../tensor.js';
import type { OpDef } from '../types.js';
import { requireInput, roundHalfEven } from './common.js';

/**
 * Quantizes a float32 tensor to uint8 with a scale and zero point computed from its range
 * (widened to include 0). Every step is float32 arithmetic, as in the spec.
 */
export const DynamicQuantizeLinear: OpDef = {
  domain: '',
  op: 'DynamicQuantizeLinear',
  infer(ctx) {
    const x = requireInput(ctx, 0, 'x');
    if (x.dtype !== 'f32') throw ctx.attrs.error(`x must be f32, got ${x.dtype}`);
    return [
      { type: { dtype: 'u8', shape: x.shape ? [...x.shape] : undefined } },
      { type: { dtype: 'f32', shape: [] } },
      { type: { dtype: 'u8', shape: [] } },
    ];
  },
  evaluate(ctx) {
    const x = ctx.inputs[0];
    if (!x) throw ctx.attrs.error('x is required');
    const xv = x.numbers();
    const f = Math.fround;
    const [qmin, qmax] = [0, 255];
    let min = 0;
    let max = 0;
    for (const v of xv) {
      if (v < min) min = v;
      if (v > max) max = v;
    }
    const scale = f(f(max === min ? 1 : f(max - min)) / (qmax - qmin));
    const initialZeroPoint = f(qmin - f(min / scale));
    const zeroPoint = roundHalfEven(Math.max(qmin, Math.min(qmax, initialZeroPoint)));
    const y = new Float64Array(xv.length);
    for (let i = 0; i < xv.length; i++) {
      y[i] = Math.max(qmin, Math.min(qmax, roundHalfEven(f(xv[i] / scale)) + zeroPoint));
    }
    return [Tensor.fromNumbers('u8', x.shape, y), Tensor.scalar('f32', scale), Tensor.scalar('u8', zeroPoint)];
  },
};
