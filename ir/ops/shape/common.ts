import type { Dim, TensorType } from '../../graph.js';
import type { DType } from '../../dtype.js';
import { isInteger } from '../../dtype.js';
import { Tensor, sizeOf, type NumericData } from '../../tensor.js';
import type { EvalContext, InferContext, OpContextBase, OutputInfo } from '../types.js';
import { stridesOf } from '../util/shape.js';

/** Largest integer tensor whose elements inference tracks as a shapeValue. */
export const MAX_SHAPE_VALUE_ELEMENTS = 64;

/** A tensor with the same dtype as `src` whose element i is src's element sourceIndex[i]. */
export function takeElements(src: Tensor, shape: readonly number[], sourceIndex: ArrayLike<number>): Tensor {
  const out = Tensor.zeros(src.dtype, shape);
  if (Array.isArray(src.data)) {
    const to = out.data as string[];
    for (let i = 0; i < sourceIndex.length; i++) to[i] = src.data[sourceIndex[i]];
  } else {
    const from = src.data;
    const to = out.data as NumericData;
    for (let i = 0; i < sourceIndex.length; i++) to[i] = from[sourceIndex[i]];
  }
  return out;
}

/** A copy of `src` (same dtype and shape) that callers may write into. */
export function cloneTensor(src: Tensor): Tensor {
  const data = Array.isArray(src.data) ? [...src.data] : src.data.slice();
  return new Tensor(src.dtype, [...src.shape], data);
}

/** Copies element `from` of `src` into element `to` of `dst` (same dtype). */
export function copyElement(dst: Tensor, to: number, src: Tensor, from: number): void {
  if (Array.isArray(dst.data)) dst.data[to] = (src.data as string[])[from];
  else (dst.data as NumericData)[to] = (src.data as NumericData)[from];
}

/** Calls f with every multi-index of `shape` in row-major order, and its flat offset. */
export function forEachIndex(shape: readonly number[], f: (index: number[], flat: number) => void): void {
  const total = sizeOf(shape);
  const index = new Array<number>(shape.length).fill(0);
  for (let flat = 0; flat < total; flat++) {
    f(index, flat);
    for (let d = shape.length - 1; d >= 0; d--) {
      if (++index[d] < shape[d]) break;
      index[d] = 0;
    }
  }
}

/** Flat offset of a multi-index under row-major strides. */
export function offsetOf(index: readonly number[], strides: readonly number[]): number {
  let o = 0;
  for (let i = 0; i < index.length; i++) o += index[i] * strides[i];
  return o;
}

export { stridesOf };

/** Known elements of a small integer input, symbolic where inference tracked them so. */
export function knownDims(ctx: InferContext, index: number): Dim[] | undefined {
  if (index >= ctx.inputs.length || !ctx.inputs[index]) return undefined;
  const tracked = ctx.shapeValue(index);
  if (tracked) return tracked;
  const constant = ctx.constant(index);
  if (constant && !Array.isArray(constant.data) && constant.rank <= 1 && constant.size <= MAX_SHAPE_VALUE_ELEMENTS) {
    return constant.toArray();
  }
  return undefined;
}

/** Known elements of an integer input when every one is a static number. */
export function knownInts(ctx: InferContext, index: number): number[] | undefined {
  const dims = knownDims(ctx, index);
  return dims && dims.every((d) => typeof d === 'number') ? (dims as number[]) : undefined;
}

/** The shapeValue to attach to a constant integer tensor, if small enough to track. */
export function shapeValueOfTensor(t: Tensor): Dim[] | undefined {
  if (!(isInteger(t.dtype) || t.dtype === 'bool') || t.rank > 1 || t.size > MAX_SHAPE_VALUE_ELEMENTS) return undefined;
  return t.toArray();
}

/** One inferred output, attaching a shapeValue only when the output can carry one (small, rank <= 1, integer or bool). */
export function outputInfo(dtype: DType, shape: Dim[] | undefined, shapeValue?: Dim[]): OutputInfo {
  const type: TensorType = { dtype, shape };
  const canCarry = shapeValue !== undefined && (isInteger(dtype) || dtype === 'bool') && shape !== undefined && shape.length <= 1 &&
    shapeValue.length <= MAX_SHAPE_VALUE_ELEMENTS;
  return canCarry ? { type, shapeValue } : { type };
}

/** The input type at `index`, or an error naming the node when it is missing. */
export function inputType(ctx: InferContext, index: number): TensorType {
  const t = ctx.inputs[index];
  if (!t) throw ctx.attrs.error(`missing required input ${index}`);
  return t;
}

/** The input tensor at `index`, or an error naming the node when it is missing. */
export function inputTensor(ctx: EvalContext, index: number): Tensor {
  const t = ctx.inputs[index];
  if (!t) throw ctx.attrs.error(`missing required input ${index}`);
  return t;
}

/** Resolves an axis against a rank with an error naming the node. */
export function resolveAxis(ctx: OpContextBase, axis: number, rank: number, what = 'axis'): number {
  const a = axis < 0 ? axis + rank : axis;
  if (!Number.isInteger(a) || a < 0 || a >= rank) throw ctx.attrs.error(`${what} ${axis} is out of range for rank ${rank}`);
  return a;
}

/** `count` fresh symbolic dims, for sizes inference cannot know. */
/** Ranks beyond this are refused (real models stay below 10; ONNX Runtime also caps rank). */
export const MAX_RANK = 1024;

export function freshDims(ctx: InferContext, count: number): Dim[] {
  // The rank comes from a (declared) shape-tensor length: a damaged file can claim billions.
  if (!Number.isSafeInteger(count) || count < 0 || count > MAX_RANK) {
    throw ctx.attrs.error(`a shape of rank ${count} is not supported (at most ${MAX_RANK})`);
  }
  return Array.from({ length: count }, () => ctx.symbols.fresh());
}
