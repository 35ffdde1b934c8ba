import { erf } from '../elementwise/math.js';
import { matmulShape, matmulValues, requireInput } from '../nn/common.js';
import { Tensor, convertNumber } from '../../tensor.js';
import type { OpDef } from '../types.js';

/**
 * llmcc.FusedMatMul(A, B, bias?) → Y = activation(A·B + bias), what the fusion pass makes of a
 * MatMul followed by its bias Add and activation. B is 2-D [K, N]; bias 1-D [N].
 * activation: 'none' | 'relu' | 'gelu' (erf) | 'gelu_tanh' | 'silu'.
 *
 * Rounds like the unfused ops it replaces: the product to A's dtype (f64 accumulation, as
 * MatMul), the biased sum to A's dtype (as Add), then the activation.
 */

export const FUSED_MATMUL_ACTIVATIONS = ['none', 'relu', 'gelu', 'gelu_tanh', 'silu'] as const;
export type FusedActivation = (typeof FUSED_MATMUL_ACTIVATIONS)[number];

const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);

export function activationFunction(activation: FusedActivation): (v: number) => number {
  switch (activation) {
    case 'none': return (v) => v;
    case 'relu': return (v) => (v < 0 ? 0 : v);
    case 'gelu': return (v) => 0.5 * v * (1 + erf(v / Math.SQRT2));
    case 'gelu_tanh': return (v) => 0.5 * v * (1 + Math.tanh(SQRT_2_OVER_PI * (v + 0.044715 * v * v * v)));
    case 'silu': return (v) => v / (1 + Math.exp(-v));
  }
}

function isActivation(name: string): name is FusedActivation {
  return (FUSED_MATMUL_ACTIVATIONS as readonly string[]).includes(name);
}

export const FusedMatMul: OpDef = {
  domain: 'llmcc',
  op: 'FusedMatMul',
  infer(ctx) {
    const a = requireInput(ctx, 0, 'A');
    const b = requireInput(ctx, 1, 'B');
    const activation = ctx.attrs.string('activation', 'none');
    if (!isActivation(activation)) throw ctx.attrs.error(`unknown activation '${activation}' (expected ${FUSED_MATMUL_ACTIVATIONS.join(', ')})`);
    if (a.dtype !== b.dtype) throw ctx.attrs.error(`operand dtypes differ: ${a.dtype} and ${b.dtype}`);
    if (!['f32', 'f16', 'bf16'].includes(a.dtype)) throw ctx.attrs.error(`A must be a float tensor, got ${a.dtype}`);
    if (b.shape && b.shape.length !== 2) throw ctx.attrs.error(`B must be 2-D [K, N], got rank ${b.shape.length}`);
    const bias = ctx.inputs[2];
    if (bias) {
      if (bias.dtype !== a.dtype) throw ctx.attrs.error(`bias dtype ${bias.dtype} differs from A's ${a.dtype}`);
      if (bias.shape && (bias.shape.length !== 1 || (b.shape && typeof bias.shape[0] === 'number' && typeof b.shape[1] === 'number' && bias.shape[0] !== b.shape[1]))) {
        throw ctx.attrs.error(`bias must be 1-D [N], got [${bias.shape.join(',')}]`);
      }
    }
    const shape = a.shape && b.shape ? matmulShape(ctx.attrs, a.shape, b.shape) : undefined;
    return [{ type: { dtype: a.dtype, shape } }];
  },
  evaluate(ctx) {
    const [a, b, bias] = ctx.inputs;
    if (!a || !b) throw ctx.attrs.error('A and B are required');
    const activation = ctx.attrs.string('activation', 'none');
    if (!isActivation(activation)) throw ctx.attrs.error(`unknown activation '${activation}'`);
    if (b.rank !== 2) throw ctx.attrs.error(`B must be 2-D [K, N], got rank ${b.rank}`);
    const n = b.shape[1];
    if (bias && (bias.rank !== 1 || bias.size !== n)) throw ctx.attrs.error(`bias must be 1-D [${n}], got [${bias.shape.join(',')}]`);
    const { shape, values } = matmulValues(ctx.attrs, a.numbers(), a.shape, b.numbers(), b.shape);
    const f = activationFunction(activation);
    const bs = bias?.numbers();
    const out = new Float64Array(values.length);
    for (let i = 0; i < values.length; i++) {
      let v = convertNumber(a.dtype, values[i]);
      if (bs) v = convertNumber(a.dtype, v + bs[i % n]);
      out[i] = f(v);
    }
    return [Tensor.fromNumbers(a.dtype, shape, out)];
  },
};
