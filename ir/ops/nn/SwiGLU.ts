import { Tensor } from '../../tensor.js';
import type { OpDef } from '../types.js';
import { requireFloat, requireInput } from './common.js';

/** SwiGLU (opset 28): Y = A * sigmoid(alpha * A) * B, A and B of identical shape and type. */
export const SwiGLU: OpDef = {
  domain: '',
  op: 'SwiGLU',
  infer(ctx) {
    const a = requireInput(ctx, 0, 'A');
    const b = requireInput(ctx, 1, 'B');
    requireFloat(ctx.attrs, a.dtype, 'A');
    if (a.dtype !== b.dtype) throw ctx.attrs.error(`A and B types differ: ${a.dtype} and ${b.dtype}`);
    if (a.shape && b.shape && (a.shape.length !== b.shape.length ||
      a.shape.some((d, i) => typeof d === 'number' && typeof b.shape![i] === 'number' && d !== b.shape![i]))) {
      throw ctx.attrs.error(`A [${a.shape.join(',')}] and B [${b.shape.join(',')}] must have identical shapes`);
    }
    return [{ type: { dtype: a.dtype, shape: a.shape ? [...a.shape] : b.shape ? [...b.shape] : undefined } }];
  },
  evaluate(ctx) {
    const [a, b] = ctx.inputs;
    if (!a || !b) throw ctx.attrs.error('A and B are required');
    if (a.shape.join() !== b.shape.join()) {
      throw ctx.attrs.error(`A [${a.shape.join(',')}] and B [${b.shape.join(',')}] must have identical shapes`);
    }
    const alpha = ctx.attrs.float('alpha', 1);
    const av = a.numbers();
    const bv = b.numbers();
    const y = new Float64Array(av.length);
    for (let i = 0; i < av.length; i++) y[i] = (av[i] / (1 + Math.exp(-alpha * av[i]))) * bv[i];
    return [Tensor.fromNumbers(a.dtype, a.shape, y)];
  },
};
