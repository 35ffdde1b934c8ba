import type { OpDef, InferContext, EvalContext } from '../types.js';
import type { Dim } from '../../graph.js';
import { freshDims, inputTensor, inputType, knownDims, knownInts, outputInfo, resolveAxis } from './common.js';

/** Normalized, de-duplicated axes; an error for repeats. */
function normalizeAxes(ctx: InferContext | EvalContext, axes: number[], rank: number): number[] {
  const out = axes.map((a) => resolveAxis(ctx, a, rank));
  if (new Set(out).size !== out.length) throw ctx.attrs.error(`axes [${axes.join(',')}] repeat an axis`);
  return out;
}

/** Squeeze: removes size-1 dims (the listed ones, or all of them). */
export const Squeeze: OpDef = {
  domain: '',
  op: 'Squeeze',
  infer(ctx) {
    const input = inputType(ctx, 0);
    const hasAxesInput = ctx.opset >= 13 && ctx.inputs.length > 1 && ctx.inputs[1] !== undefined;
    const axes = ctx.opset < 13 ? ctx.attrs.optionalInts('axes') : knownInts(ctx, 1);
    const passThrough = knownDims(ctx, 0);
    if (!input.shape) return [outputInfo(input.dtype, undefined)];
    const rank = input.shape.length;
    if (hasAxesInput && !axes) {
      const count = ctx.inputs[1]?.shape?.[0];
      return [outputInfo(input.dtype, typeof count === 'number' ? freshDims(ctx, rank - count) : undefined)];
    }
    let shape: Dim[];
    if (axes && axes.length > 0) {
      const drop = new Set(normalizeAxes(ctx, axes, rank));
      for (const a of drop) {
        const d = input.shape[a];
        if (typeof d === 'number' && d !== 1) throw ctx.attrs.error(`cannot squeeze axis ${a} of size ${d}`);
      }
      shape = input.shape.filter((_, i) => !drop.has(i));
    } else {
      // Symbolic dims are assumed not to be 1: exporters name only dims that vary.
      shape = input.shape.filter((d) => d !== 1);
    }
    return [outputInfo(input.dtype, shape, passThrough)];
  },
  evaluate(ctx) {
    const data = inputTensor(ctx, 0);
    const axesTensor = ctx.opset >= 13 ? ctx.inputs[1] : undefined;
    const axes = ctx.opset < 13 ? ctx.attrs.optionalInts('axes') : axesTensor?.toArray();
    let shape: number[];
    if (axes && axes.length > 0) {
      const drop = new Set(normalizeAxes(ctx, axes, data.rank));
      for (const a of drop) {
        if (data.shape[a] !== 1) throw ctx.attrs.error(`cannot squeeze axis ${a} of size ${data.shape[a]}`);
      }
      shape = data.shape.filter((_, i) => !drop.has(i));
    } else {
      shape = data.shape.filter((d) => d !== 1);
    }
    return [data.reshape(shape)];
  },
};
