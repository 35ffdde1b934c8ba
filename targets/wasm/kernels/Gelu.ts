import { add, erf, mul, tanh, type Expr } from '../../../codegen/builder.js';
import { isFloat } from '../../../ir/dtype.js';
import { defineElementwise, type ElementFn } from './elementwise.js';

const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);

/** 0.5·x·(1 + erf(x/√2)). */
export function geluErf(x: Expr): Expr {
  return mul(mul(x, 0.5), add(erf(mul(x, Math.SQRT1_2)), 1));
}

/** 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))). */
export function geluTanh(x: Expr): Expr {
  const inner = mul(add(mul(mul(mul(x, x), x), 0.044715), x), SQRT_2_OVER_PI);
  return mul(mul(x, 0.5), add(tanh(inner), 1));
}

/** Gelu (opset 20): exact erf form, or the tanh approximation when approximate = "tanh". */
export const geluKernel = defineElementwise('', 'Gelu', (ctx) => {
  if (!ctx.inputs[0] || !isFloat(ctx.inputs[0].dtype)) return 'Gelu needs a float input';
  const attr = ctx.node.attributes.get('approximate');
  const mode = attr?.kind === 'string' ? attr.value : 'none';
  if (mode !== 'none' && mode !== 'tanh') return `unsupported approximate mode '${mode}'`;
  const fn: ElementFn = (_k, x) => (mode === 'tanh' ? geluTanh(x[0]!) : geluErf(x[0]!));
  return { scalar: fn, vector: fn };
});

/** com.microsoft FastGelu: the tanh Gelu of X (+ bias, 1-D over the last axis). */
export const fastGeluKernel = defineElementwise('com.microsoft', 'FastGelu', (ctx) => {
  if (!ctx.inputs[0] || !isFloat(ctx.inputs[0].dtype)) return 'FastGelu needs a float input';
  const bias = ctx.inputs[1];
  if (ctx.node.inputs[1] && bias?.shape && bias.shape.length !== 1) return 'FastGelu bias must be 1-D';
  const fn: ElementFn = (_k, x) => geluTanh(x[1] ? add(x[0]!, x[1]) : x[0]!);
  return { scalar: fn, vector: fn };
});
