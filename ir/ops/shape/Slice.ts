import type { OpDef, InferContext, EvalContext } from '../types.js';
import type { Dim } from '../../graph.js';
import { dimSub } from '../../dims.js';
import { subtractDims } from './factors.js';
import { forEachIndex, inputTensor, inputType, knownDims, knownInts, outputInfo, resolveAxis, stridesOf, takeElements } from './common.js';

/** Ends at or beyond this mean "to the end of the axis" when the axis size is symbolic. */
const TO_END = 2 ** 31 - 1;

/** One axis' slice after ONNX's negative-index and clamping rules: first index, step, length. */
interface AxisSlice {
  start: number;
  step: number;
  length: number;
}

/** ONNX Slice clamping: positive steps clamp to [0, dim], negative steps to [0, dim-1] / [-1, dim-1]. */
function resolveAxisSlice(dim: number, rawStart: number, rawEnd: number, step: number): AxisSlice {
  let start = rawStart < 0 ? rawStart + dim : rawStart;
  let end = rawEnd < 0 ? rawEnd + dim : rawEnd;
  if (step > 0) {
    start = Math.min(Math.max(start, 0), dim);
    end = Math.min(Math.max(end, 0), dim);
  } else {
    start = Math.min(Math.max(start, 0), dim - 1);
    end = Math.min(Math.max(end, -1), dim - 1);
  }
  const length = Math.max(0, Math.ceil((end - start) / step));
  return { start, step, length };
}

/** Starts, ends, axes and steps: attributes before opset 10, inputs from it. */
interface SliceParams<T> {
  starts: T[];
  ends: T[];
  axes: number[] | undefined;
  steps: number[] | undefined;
}

function checkParams<T>(ctx: InferContext | EvalContext, p: SliceParams<T>, rank: number): number[] {
  if (p.starts.length !== p.ends.length) throw ctx.attrs.error('Slice starts and ends differ in length');
  const axes = (p.axes ?? p.starts.map((_, i) => i)).map((a) => resolveAxis(ctx, a, rank));
  if (axes.length !== p.starts.length) throw ctx.attrs.error('Slice axes and starts differ in length');
  if (new Set(axes).size !== axes.length) throw ctx.attrs.error('Slice axes repeat an axis');
  if (p.steps) {
    if (p.steps.length !== p.starts.length) throw ctx.attrs.error('Slice steps and starts differ in length');
    if (p.steps.some((s) => s === 0)) throw ctx.attrs.error('Slice steps cannot be 0');
  }
  return axes;
}

/** A bound relative to the axis end (`fromEnd`) or absolute. */
function symbolicLength(dim: Dim, start: Dim, end: Dim, fresh: () => Dim): Dim {
  const bound = (b: Dim): { fromEnd: boolean; value: Dim } => {
    if (typeof b === 'number' && b >= TO_END) return { fromEnd: true, value: 0 };
    if (typeof b === 'number' && b < 0) return { fromEnd: true, value: b };
    return { fromEnd: false, value: b };
  };
  const s = bound(start);
  const e = bound(end);
  // Exported graphs slice within bounds; the lengths below assume the axis is long enough.
  if (s.fromEnd && e.fromEnd) return Math.max(0, (e.value as number) - (s.value as number));
  if (!s.fromEnd && e.fromEnd) {
    const fromEnd = -(e.value as number);
    return typeof s.value === 'number' ? dimSub(dim, s.value + fromEnd) : dimSub(dimSub(dim, fromEnd), s.value);
  }
  if (!s.fromEnd && !e.fromEnd) {
    if (typeof s.value === 'number' && typeof e.value === 'number') return Math.max(0, e.value - s.value);
    return subtractDims(e.value, s.value);
  }
  return fresh();
}

/** Slice: strided sub-tensor along some axes. */
export const Slice: OpDef = {
  domain: '',
  op: 'Slice',
  infer(ctx) {
    const input = inputType(ctx, 0);
    if (!input.shape) return [outputInfo(input.dtype, undefined)];
    const shape = input.shape;
    let params: SliceParams<Dim> | undefined;
    if (ctx.opset < 10) {
      params = { starts: ctx.attrs.ints('starts'), ends: ctx.attrs.ints('ends'), axes: ctx.attrs.optionalInts('axes'), steps: undefined };
    } else {
      const starts = knownDims(ctx, 1);
      const ends = knownDims(ctx, 2);
      const axes = ctx.inputs[3] ? knownInts(ctx, 3) : undefined;
      const steps = ctx.inputs[4] ? knownInts(ctx, 4) : undefined;
      const unknown = !starts || !ends || (ctx.inputs[3] && !axes) || (ctx.inputs[4] && !steps);
      if (!unknown && starts && ends) params = { starts, ends, axes, steps };
    }
    if (!params) return [outputInfo(input.dtype, shape.map(() => ctx.symbols.fresh()))];
    const axes = checkParams(ctx, params, shape.length);
    const out: Dim[] = [...shape];
    const picked: (AxisSlice | undefined)[] = new Array(shape.length).fill(undefined);
    axes.forEach((axis, i) => {
      const dim = shape[axis];
      const start = params.starts[i];
      const end = params.ends[i];
      const step = params.steps?.[i] ?? 1;
      if (typeof dim === 'number' && typeof start === 'number' && typeof end === 'number') {
        picked[axis] = resolveAxisSlice(dim, start, end, step);
        out[axis] = picked[axis].length;
      } else if (step === 1) {
        out[axis] = symbolicLength(dim, start, end, () => ctx.symbols.fresh());
      } else {
        out[axis] = ctx.symbols.fresh();
      }
    });
    // Slicing a shape vector keeps the picked elements.
    let elements: Dim[] | undefined;
    const whole = knownDims(ctx, 0);
    const only = picked[0];
    if (whole && shape.length === 1 && only) {
      elements = Array.from({ length: only.length }, (_, k) => whole[only.start + k * only.step]);
    }
    return [outputInfo(input.dtype, out, elements)];
  },
  evaluate(ctx) {
    const data = inputTensor(ctx, 0);
    const params: SliceParams<number> = ctx.opset < 10
      ? { starts: ctx.attrs.ints('starts'), ends: ctx.attrs.ints('ends'), axes: ctx.attrs.optionalInts('axes'), steps: undefined }
      : {
        starts: inputTensor(ctx, 1).toArray(),
        ends: inputTensor(ctx, 2).toArray(),
        axes: ctx.inputs[3]?.toArray(),
        steps: ctx.inputs[4]?.toArray(),
      };
    const axes = checkParams(ctx, params, data.rank);
    const slices: AxisSlice[] = data.shape.map((d) => ({ start: 0, step: 1, length: d }));
    axes.forEach((axis, i) => {
      slices[axis] = resolveAxisSlice(data.shape[axis], params.starts[i], params.ends[i], params.steps?.[i] ?? 1);
    });
    const outShape = slices.map((s) => s.length);
    const strides = stridesOf(data.shape);
    const source = new Int32Array(outShape.reduce((a, b) => a * b, 1));
    forEachIndex(outShape, (index, flat) => {
      let o = 0;
      for (let d = 0; d < index.length; d++) o += (slices[d].start + index[d] * slices[d].step) * strides[d];
      source[flat] = o;
    });
    return [takeElements(data, outShape, source)];
  },
};
