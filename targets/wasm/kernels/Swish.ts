import { mul, sigmoid } from '../../../codegen/builder.js';
import { isFloat } from '../../../ir/dtype.js';
import { defineElementwise, type ElementFn } from './elementwise.js';

/** Swish (opset 24): x · sigmoid(alpha · x). */
export const swishKernel = defineElementwise('', 'Swish', (ctx) => {
  if (!ctx.inputs[0] || !isFloat(ctx.inputs[0].dtype)) return 'Swish needs a float input';
  const attr = ctx.node.attributes.get('alpha');
  const alpha = attr?.kind === 'float' ? attr.value : 1;
  const fn: ElementFn = (_k, x) => mul(x[0]!, sigmoid(alpha === 1 ? x[0]! : mul(x[0]!, alpha)));
  return { scalar: fn, vector: fn };
});
