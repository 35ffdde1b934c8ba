import type { OpDef, OpContextBase } from '../types.js';
import { Tensor } from '../../tensor.js';
import type { Dim } from '../../graph.js';
import { inputTensor, inputType, outputInfo } from './common.js';

/** The [start, end) range of dims Shape reports: attributes from opset 15, clamped like Python slices. */
function dimRange(ctx: OpContextBase, rank: number): [number, number] {
  const clamp = (v: number): number => Math.min(Math.max(v < 0 ? v + rank : v, 0), rank);
  const start = clamp(ctx.attrs.int('start', 0));
  const end = ctx.attrs.has('end') ? clamp(ctx.attrs.int('end')) : rank;
  return [start, Math.max(start, end)];
}

/** Shape: the input's dims as an i64 vector; inference keeps symbolic dims in the shapeValue. */
export const Shape: OpDef = {
  domain: '',
  op: 'Shape',
  infer(ctx) {
    const shape = inputType(ctx, 0).shape;
    if (!shape) return [outputInfo('i64', [ctx.symbols.fresh()])];
    const [start, end] = dimRange(ctx, shape.length);
    const dims: Dim[] = shape.slice(start, end);
    return [outputInfo('i64', [dims.length], dims)];
  },
  evaluate(ctx) {
    const shape = inputTensor(ctx, 0).shape;
    const [start, end] = dimRange(ctx, shape.length);
    const dims = shape.slice(start, end);
    return [Tensor.fromNumbers('i64', [dims.length], dims)];
  },
};
