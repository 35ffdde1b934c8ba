import { max, min, type Expr } from '../../../codegen/builder.js';
import { defineElementwise } from './elementwise.js';

/**
 * Clip: min(max(x, lo), hi) (so lo > hi gives hi, NaN stays NaN). Opset < 11 has float
 * attributes; since 11 the bounds are optional scalar inputs, broadcast like any input.
 */
export const clipKernel = defineElementwise('', 'Clip', (ctx) => {
  const dtype = ctx.inputs[0]?.dtype;
  if (!dtype || dtype === 'bool' || dtype === 'string') return `Clip does not accept ${dtype ?? 'unknown'} inputs`;
  const attrs = ctx.node.attributes;
  const loAttr = attrs.get('min');
  const hiAttr = attrs.get('max');
  const lo = loAttr?.kind === 'float' ? loAttr.value : undefined;
  const hi = hiAttr?.kind === 'float' ? hiAttr.value : undefined;
  const fn = (_k: unknown, x: (Expr | undefined)[]): Expr => {
    let v = x[0]!;
    const low = x[1] ?? lo;
    const high = x[2] ?? hi;
    if (low !== undefined) v = max(v, low);
    if (high !== undefined) v = min(v, high);
    return v;
  };
  return dtype === 'f32' || dtype === 'f16' || dtype === 'bf16' || dtype === 'f64' ? { scalar: fn, vector: fn } : { scalar: fn };
});
