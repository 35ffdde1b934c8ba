import type { OpContextBase, OpDef } from '../types.js';
import { dimProduct } from '../../dims.js';
import { sizeOf } from '../../tensor.js';
import { inputTensor, inputType, outputInfo } from './common.js';

/** Flatten's split point; axis may equal the rank, and be negative from opset 11. */
function splitAxis(ctx: OpContextBase, rank: number): number {
  const axis = ctx.attrs.int('axis', 1);
  const a = axis < 0 ? axis + rank : axis;
  if (a < 0 || a > rank) throw ctx.attrs.error(`Flatten axis ${axis} is out of range for rank ${rank}`);
  return a;
}

/** Flatten: a 2-D view [prod(dims before axis), prod(dims from axis)]. */
export const Flatten: OpDef = {
  domain: '',
  op: 'Flatten',
  infer(ctx) {
    const input = inputType(ctx, 0);
    if (!input.shape) return [outputInfo(input.dtype, [ctx.symbols.fresh(), ctx.symbols.fresh()])];
    const a = splitAxis(ctx, input.shape.length);
    return [outputInfo(input.dtype, [dimProduct(input.shape.slice(0, a)), dimProduct(input.shape.slice(a))])];
  },
  evaluate(ctx) {
    const data = inputTensor(ctx, 0);
    const a = splitAxis(ctx, data.rank);
    return [data.reshape([sizeOf(data.shape.slice(0, a)), sizeOf(data.shape.slice(a))])];
  },
};
