import type { OpDef, InferContext, EvalContext } from '../types.js';
import type { Dim } from '../../graph.js';
import type { DType } from '../../dtype.js';
import { subtractDims } from './factors.js';
import { Tensor, convertNumber } from '../../tensor.js';
import { inputTensor, inputType, knownDims, outputInfo, MAX_SHAPE_VALUE_ELEMENTS } from './common.js';
import { isInteger } from '../../dtype.js';

/** Element count of Range: max(ceil((limit - start) / delta), 0). */
function rangeLength(start: number, limit: number, delta: number): number {
  return Math.max(Math.ceil((limit - start) / delta), 0);
}

/**
 * The dtype Range accumulates in: f16/bf16 compute in `stash_type` (f32 by default, opset
 * 27), every other type in itself.
 */
function computeType(ctx: InferContext | EvalContext, dtype: DType): DType {
  if ((dtype !== 'f16' && dtype !== 'bf16') || ctx.opset < 27) return dtype;
  const stash = ctx.attrs.int('stash_type', 1);
  if (stash !== 1 && stash !== 11) throw ctx.attrs.error(`Range stash_type ${stash} is not FLOAT (1) or DOUBLE (11)`);
  return stash === 1 ? 'f32' : 'f64';
}

/** Range: start, start+delta, … up to but excluding limit. */
export const Range: OpDef = {
  domain: '',
  op: 'Range',
  infer(ctx) {
    const dtype = inputType(ctx, 0).dtype;
    const [start, limit, delta] = [0, 1, 2].map((i) => knownDims(ctx, i)?.[0]);
    let length: Dim;
    let elements: Dim[] | undefined;
    if (typeof start === 'number' && typeof limit === 'number' && typeof delta === 'number') {
      if (delta === 0) throw ctx.attrs.error('Range delta cannot be 0');
      length = rangeLength(start, limit, delta);
      if (isInteger(dtype) && length <= MAX_SHAPE_VALUE_ELEMENTS) {
        elements = Array.from({ length }, (_, i) => start + i * delta);
      }
    } else if (delta === 1 && start !== undefined && limit !== undefined) {
      // Symbolic bounds (e.g. Range(0, sequence_length)); assumes limit >= start as exporters use it.
      length = subtractDims(limit, start);
    } else {
      length = ctx.symbols.fresh();
    }
    return [outputInfo(dtype, [length], elements)];
  },
  evaluate(ctx) {
    const [start, limit, delta] = [0, 1, 2].map((i) => {
      const t = inputTensor(ctx, i);
      if (t.size !== 1) throw ctx.attrs.error(`Range input ${i} must be a scalar, got shape [${t.shape.join(',')}]`);
      return t;
    });
    const dtype = start.dtype;
    if (limit.dtype !== dtype || delta.dtype !== dtype) throw ctx.attrs.error('Range inputs must share one dtype');
    const [s, l, d] = [start.get(0), limit.get(0), delta.get(0)];
    if (d === 0) throw ctx.attrs.error('Range delta cannot be 0');
    const compute = computeType(ctx, dtype);
    const n = rangeLength(s, l, d);
    const values = new Float64Array(n);
    for (let i = 0; i < n; i++) values[i] = convertNumber(compute, s + i * d);
    return [Tensor.fromNumbers(dtype, [n], values)];
  },
};
