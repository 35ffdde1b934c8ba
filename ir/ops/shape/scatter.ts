import type { EvalContext, OpContextBase } from '../types.js';
import { convertNumber, type NumericData, type Tensor } from '../../tensor.js';
import { copyElement } from './common.js';

export type Reduction = 'none' | 'add' | 'mul' | 'max' | 'min';

/** The reduction attribute (opset 16 adds add/mul, 18 adds max/min). */
export function reductionOf(ctx: OpContextBase): Reduction {
  const r = ctx.attrs.string('reduction', 'none');
  const allowed: Reduction[] = ctx.opset >= 18 ? ['none', 'add', 'mul', 'max', 'min'] : ctx.opset >= 16 ? ['none', 'add', 'mul'] : ['none'];
  if (!(allowed as string[]).includes(r)) throw ctx.attrs.error(`reduction '${r}' is not supported at opset ${ctx.opset}`);
  return r as Reduction;
}

/** Writes update element `from` into out element `to`, combining per the reduction. */
export function scatterInto(ctx: EvalContext, out: Tensor, to: number, updates: Tensor, from: number, reduction: Reduction): void {
  if (reduction === 'none') {
    copyElement(out, to, updates, from);
    return;
  }
  if (Array.isArray(out.data)) throw ctx.attrs.error(`reduction '${reduction}' does not apply to string tensors`);
  const dst = out.data as NumericData;
  const a = dst[to];
  const b = (updates.data as NumericData)[from];
  let r: number;
  switch (reduction) {
    case 'add': r = a + b; break;
    case 'mul': r = a * b; break;
    case 'max': r = Math.max(a, b); break;
    default: r = Math.min(a, b); break;
  }
  dst[to] = convertNumber(out.dtype, r);
}
