import type { DType } from '../../dtype.js';
import { bitWidth, isFloat, isInteger } from '../../dtype.js';
import type { Dim } from '../../graph.js';
import { Tensor } from '../../tensor.js';
import type { EvalContext, InferContext, OpContextBase, OpDef } from '../types.js';
import { normalizeAxis } from '../util/shape.js';
import { integerValues, requireInput, requireType, strides, withNode } from './common.js';

/**
 * The Reduce* family. Axes come from the `axes` attribute before the op's switch-over
 * opset (13 for ReduceSum, 18 for the others) and from the optional second input after.
 * With no axes, everything is reduced unless noop_with_empty_axes = 1 (then the input
 * passes through). Reducing an empty set gives the reduction's identity.
 */
interface Reducer {
  op: string;
  /** Opset from which axes is an input. */
  axesInputSince: number;
  init: (dtype: DType) => number;
  step: (acc: number, x: number) => number;
  finish: (acc: number, count: number) => number;
  /** Which dtypes are accepted beyond the numeric ones. */
  acceptsBool?: boolean;
}

/** Lowest/highest representable value: the identity of Max/Min where there is no infinity. */
function lowest(dtype: DType): number {
  if (isFloat(dtype)) return -Infinity;
  if (dtype === 'bool' || dtype.startsWith('u')) return 0;
  return -(2 ** (bitWidth(dtype) - 1));
}

function highest(dtype: DType): number {
  if (isFloat(dtype)) return Infinity;
  if (dtype === 'bool') return 1;
  const bits = bitWidth(dtype);
  return dtype.startsWith('u') ? 2 ** bits - 1 : 2 ** (bits - 1) - 1;
}

// Math.max/min propagate NaN, as the spec's reductions do.
const maxStep = (acc: number, x: number): number => Math.max(acc, x);
const minStep = (acc: number, x: number): number => Math.min(acc, x);
const identity = (acc: number): number => acc;

const REDUCERS: Reducer[] = [
  { op: 'ReduceSum', axesInputSince: 13, init: () => 0, step: (a, x) => a + x, finish: identity },
  { op: 'ReduceMean', axesInputSince: 18, init: () => 0, step: (a, x) => a + x, finish: (a, n) => a / n },
  { op: 'ReduceMax', axesInputSince: 18, init: lowest, step: maxStep, finish: identity, acceptsBool: true },
  { op: 'ReduceMin', axesInputSince: 18, init: highest, step: minStep, finish: identity, acceptsBool: true },
  { op: 'ReduceProd', axesInputSince: 18, init: () => 1, step: (a, x) => a * x, finish: identity },
  { op: 'ReduceSumSquare', axesInputSince: 18, init: () => 0, step: (a, x) => a + x * x, finish: identity },
  { op: 'ReduceL1', axesInputSince: 18, init: () => 0, step: (a, x) => a + Math.abs(x), finish: identity },
  { op: 'ReduceL2', axesInputSince: 18, init: () => 0, step: (a, x) => a + x * x, finish: (a) => Math.sqrt(a) },
  { op: 'ReduceLogSum', axesInputSince: 18, init: () => 0, step: (a, x) => a + x, finish: (a) => Math.log(a) },
  // Log-sum-exp is computed stably below; these only serve the empty set (log 0 = -inf).
  { op: 'ReduceLogSumExp', axesInputSince: 18, init: () => 0, step: (a, x) => a + Math.exp(x), finish: (a) => Math.log(a) },
];

function checkDtype(ctx: OpContextBase, reducer: Reducer, dtype: DType): void {
  const ok = isFloat(dtype) || isInteger(dtype) || (dtype === 'bool' && reducer.acceptsBool);
  if (!ok) throw ctx.attrs.error(`${reducer.op} does not accept ${dtype} inputs`);
}

/** The requested axes: undefined = reduce all; [] with noop = identity. */
function axesAt(
  ctx: OpContextBase,
  reducer: Reducer,
  axesInput: () => number[] | undefined | 'unknown',
): number[] | undefined | 'unknown' {
  if (ctx.opset >= reducer.axesInputSince) return axesInput();
  return ctx.attrs.optionalInts('axes');
}

function resolveAxes(ctx: OpContextBase, axes: number[], rank: number): number[] {
  const resolved = axes.map((a) => withNode(ctx, () => normalizeAxis(a, rank, 'reduction axis')));
  if (new Set(resolved).size !== resolved.length) throw ctx.attrs.error(`repeated axes in [${axes.join(',')}]`);
  return resolved;
}

function noopWithEmptyAxes(ctx: OpContextBase, reducer: Reducer): boolean {
  return ctx.opset >= reducer.axesInputSince && ctx.attrs.int('noop_with_empty_axes', 0) === 1;
}

function inferReduce(ctx: InferContext, reducer: Reducer) {
  const input = requireType(ctx, 0);
  checkDtype(ctx, reducer, input.dtype);
  const keepdims = ctx.attrs.int('keepdims', 1) === 1;
  const axes = axesAt(ctx, reducer, () => {
    if (!ctx.inputs[1]) return undefined;
    const constant = ctx.constant(1);
    if (constant) return integerValues(constant);
    const value = ctx.shapeValue(1);
    if (value && value.every((d): d is number => typeof d === 'number')) return value;
    return 'unknown';
  });
  const dtype = input.dtype;
  if (!input.shape) return [{ type: { dtype, shape: undefined } }];
  const rank = input.shape.length;
  if (axes === 'unknown') {
    // Which dims go is data-dependent: keepdims keeps the rank, else only a static axes length tells it.
    const axesType = ctx.inputs[1];
    const count = axesType?.shape?.length === 1 && typeof axesType.shape[0] === 'number' ? axesType.shape[0] : undefined;
    if (keepdims) return [{ type: { dtype, shape: input.shape.map(() => ctx.symbols.fresh()) } }];
    if (count === undefined || count === 0) return [{ type: { dtype, shape: undefined } }];
    return [{ type: { dtype, shape: Array.from({ length: rank - count }, () => ctx.symbols.fresh()) } }];
  }
  if ((axes === undefined || axes.length === 0) && noopWithEmptyAxes(ctx, reducer)) {
    return [{ type: { dtype, shape: input.shape } }];
  }
  const reduced = new Set(axes && axes.length ? resolveAxes(ctx, axes, rank) : input.shape.map((_, i) => i));
  const shape: Dim[] = [];
  input.shape.forEach((d, i) => {
    if (!reduced.has(i)) shape.push(d);
    else if (keepdims) shape.push(1);
  });
  return [{ type: { dtype, shape } }];
}

function evaluateReduce(ctx: EvalContext, reducer: Reducer): Tensor[] {
  const x = requireInput(ctx, 0);
  checkDtype(ctx, reducer, x.dtype);
  const keepdims = ctx.attrs.int('keepdims', 1) === 1;
  const axes = axesAt(ctx, reducer, () => (ctx.inputs[1] ? integerValues(ctx.inputs[1]) : undefined)) as number[] | undefined;
  if ((axes === undefined || axes.length === 0) && noopWithEmptyAxes(ctx, reducer)) return [x];
  const rank = x.rank;
  const reduced = new Set(axes && axes.length ? resolveAxes(ctx, axes, rank) : x.shape.map((_, i) => i));
  const outShape: number[] = [];
  const keptShape: number[] = [];
  x.shape.forEach((d, i) => {
    if (!reduced.has(i)) {
      outShape.push(d);
      keptShape.push(d);
    } else if (keepdims) outShape.push(1);
  });
  const outSize = keptShape.reduce((a, b) => a * b, 1);
  // Output offset of each input element: the kept dims' coordinates in output strides.
  const keptStrides = strides(keptShape);
  const inputToOutput = new Array<number>(rank).fill(0);
  let k = 0;
  for (let i = 0; i < rank; i++) if (!reduced.has(i)) inputToOutput[i] = keptStrides[k++];
  const src = x.numbers();
  const count = x.shape.reduce((a, b, i) => (reduced.has(i) ? a * b : a), 1);
  const out = new Float64Array(outSize);
  const logSumExp = reducer.op === 'ReduceLogSumExp';
  if (logSumExp) out.fill(-Infinity); // running max first, for a stable sum
  else out.fill(reducer.init(x.dtype));
  const visit = (f: (o: number, v: number) => void) => {
    const counter = new Array<number>(rank).fill(0);
    let offset = 0;
    for (let i = 0; i < src.length; i++) {
      f(offset, src[i]);
      for (let d = rank - 1; d >= 0; d--) {
        counter[d]++;
        offset += inputToOutput[d];
        if (counter[d] < x.shape[d]) break;
        offset -= inputToOutput[d] * counter[d];
        counter[d] = 0;
      }
    }
  };
  if (logSumExp) {
    const max = out;
    visit((o, v) => { max[o] = Math.max(max[o], v); });
    const sums = new Float64Array(outSize);
    visit((o, v) => { sums[o] += Number.isFinite(max[o]) ? Math.exp(v - max[o]) : Math.exp(v); });
    for (let o = 0; o < outSize; o++) out[o] = Number.isFinite(max[o]) ? max[o] + Math.log(sums[o]) : Math.log(sums[o]);
  } else {
    visit((o, v) => { out[o] = reducer.step(out[o], v); });
    for (let o = 0; o < outSize; o++) out[o] = reducer.finish(out[o], count);
  }
  return [Tensor.fromNumbers(x.dtype, outShape, out)];
}

export const reduceOps: OpDef[] = REDUCERS.map((reducer) => ({
  domain: '',
  op: reducer.op,
  infer: (ctx) => inferReduce(ctx, reducer),
  evaluate: (ctx) => evaluateReduce(ctx, reducer),
}));
