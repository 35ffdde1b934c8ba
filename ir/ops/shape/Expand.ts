import type { OpDef } from '../types.js';
import { broadcastIndex, broadcastShapes } from '../util/shape.js';
import { freshDims, inputTensor, inputType, knownDims, outputInfo, takeElements } from './common.js';

/** Expand: broadcasts the input against a target shape (bidirectionally, like numpy). */
export const Expand: OpDef = {
  domain: '',
  op: 'Expand',
  infer(ctx) {
    const input = inputType(ctx, 0);
    const target = knownDims(ctx, 1);
    if (!input.shape) return [outputInfo(input.dtype, undefined)];
    if (!target) {
      const length = ctx.inputs[1]?.shape?.[0];
      if (typeof length !== 'number') return [outputInfo(input.dtype, undefined)];
      const rank = Math.max(length, input.shape.length);
      // Where the input dim is not 1 it survives; elsewhere the size comes from the unknown target.
      const fresh = freshDims(ctx, rank);
      const shape = fresh.map((d, i) => {
        const own = input.shape?.[i - (rank - (input.shape?.length ?? 0))];
        return own !== undefined && own !== 1 ? own : d;
      });
      return [outputInfo(input.dtype, shape)];
    }
    try {
      return [outputInfo(input.dtype, broadcastShapes(input.shape, target))];
    } catch {
      throw ctx.attrs.error(`cannot expand [${input.shape.join(',')}] to [${target.join(',')}]`);
    }
  },
  evaluate(ctx) {
    const data = inputTensor(ctx, 0);
    const target = inputTensor(ctx, 1).toArray();
    let shape: number[];
    try {
      shape = broadcastShapes(data.shape, target) as number[];
    } catch {
      throw ctx.attrs.error(`cannot expand [${data.shape.join(',')}] to [${target.join(',')}]`);
    }
    return [takeElements(data, shape, broadcastIndex(shape, data.shape))];
  },
};
