import { mul, sigmoid } from '../../../codegen/builder.js';
import { isFloat } from '../../../ir/dtype.js';
import { defineElementwise, type ElementFn } from './elementwise.js';

/** SwiGLU (ai.onnx): A · sigmoid(alpha · A) · B, A and B of one shape (the fused SiLU gate). */
export const swigluKernel = defineElementwise('', 'SwiGLU', (ctx) => {
  const [a, b] = ctx.inputs;
  if (!a || !b || !isFloat(a.dtype) || a.dtype !== b.dtype) return 'SwiGLU needs two float inputs of one dtype';
  if (!a.shape || !b.shape || a.shape.length !== b.shape.length || a.shape.some((d, i) => d !== b.shape![i])) {
    return 'SwiGLU inputs must have identical shapes';
  }
  const attr = ctx.node.attributes.get('alpha');
  const alpha = attr?.kind === 'float' ? attr.value : 1;
  const fn: ElementFn = (_k, x) => mul(mul(x[0]!, sigmoid(alpha === 1 ? x[0]! : mul(x[0]!, alpha))), x[1]!);
  return { scalar: fn, vector: fn };
});
