import type { OpDef, InferContext, EvalContext } from '../types.js';
import type { Dim } from '../../graph.js';
import { freshDims, inputTensor, inputType, knownDims, knownInts, outputInfo, resolveAxis } from './common.js';

/** Inserts size-1 dims at `axes`, which index the output's rank. */
function unsqueezeShape<D extends Dim>(ctx: InferContext | EvalContext, shape: readonly D[], axes: number[]): (D | 1)[] {
  const outRank = shape.length + axes.length;
  const inserted = axes.map((a) => resolveAxis(ctx, a, outRank));
  if (new Set(inserted).size !== inserted.length) throw ctx.attrs.error(`axes [${axes.join(',')}] repeat an axis`);
  const out: (D | 1)[] = [];
  let next = 0;
  for (let i = 0; i < outRank; i++) out.push(inserted.includes(i) ? 1 : shape[next++]);
  return out;
}

function axesOf(ctx: EvalContext): number[] {
  if (ctx.opset < 13) return ctx.attrs.ints('axes');
  return inputTensor(ctx, 1).toArray();
}

/** Unsqueeze: inserts size-1 dims. */
export const Unsqueeze: OpDef = {
  domain: '',
  op: 'Unsqueeze',
  infer(ctx) {
    const input = inputType(ctx, 0);
    const axes = ctx.opset < 13 ? ctx.attrs.ints('axes') : knownInts(ctx, 1);
    if (!input.shape) return [outputInfo(input.dtype, undefined)];
    if (!axes) {
      const count = ctx.inputs[1]?.shape?.[0];
      return [outputInfo(input.dtype, typeof count === 'number' ? freshDims(ctx, input.shape.length + count) : undefined)];
    }
    return [outputInfo(input.dtype, unsqueezeShape(ctx, input.shape, axes), knownDims(ctx, 0))];
  },
  evaluate(ctx) {
    const data = inputTensor(ctx, 0);
    return [data.reshape(unsqueezeShape(ctx, data.shape, axesOf(ctx)))];
  },
};
