import type { OpDef } from '../types.js';
import { dimMul } from '../../dims.js';
import { Tensor, checkAllocatable, sizeOf } from '../../tensor.js';
import { inputTensor, inputType, knownDims, outputInfo, stridesOf } from './common.js';

/** Tile: repeats the input `repeats[i]` times along each axis i. */
export const Tile: OpDef = {
  domain: '',
  op: 'Tile',
  infer(ctx) {
    const input = inputType(ctx, 0);
    if (!input.shape) return [outputInfo(input.dtype, undefined)];
    const shape = input.shape;
    const repeats = knownDims(ctx, 1);
    if (!repeats) return [outputInfo(input.dtype, shape.map(() => ctx.symbols.fresh()))];
    if (repeats.length !== shape.length) throw ctx.attrs.error(`Tile repeats has ${repeats.length} entries for rank ${shape.length}`);
    return [outputInfo(input.dtype, shape.map((d, i) => dimMul(d, repeats[i])))];
  },
  evaluate(ctx) {
    const data = inputTensor(ctx, 0);
    const repeats = inputTensor(ctx, 1).toArray();
    if (repeats.length !== data.rank) throw ctx.attrs.error(`Tile repeats has ${repeats.length} entries for rank ${data.rank}`);
    if (repeats.some((r) => r < 0)) throw ctx.attrs.error(`Tile repeats [${repeats.join(',')}] has a negative entry`);
    const outShape = data.shape.map((d, i) => d * repeats[i]);
    // Refuse an oversized output before any work (the tensor size budget of tensor.ts).
    try {
      checkAllocatable(data.dtype, outShape);
    } catch (error) {
      throw ctx.attrs.error(`Tile output: ${error instanceof Error ? error.message : String(error)}`);
    }
    const out = Tensor.zeros(data.dtype, outShape);
    if (sizeOf(outShape) > 0) tileInto(out.data, data.data, data.shape, repeats, outShape);
    return [out];
  },
};

/** Element storage that supports block copies (typed arrays and string[] alike). */
interface Copyable {
  [index: number]: unknown;
  copyWithin(target: number, start: number, end: number): unknown;
}

/**
 * Writes the tiling of `src` into `dst` with block copies: each axis, innermost first,
 * lays out one copy of its sub-block per input index, then replicates that block
 * `repeats[axis] - 1` times with copyWithin (a memmove), so the cost is one pass over
 * the output instead of per-element index arithmetic.
 */
function tileInto(dst: Copyable, src: ArrayLike<unknown>, shape: readonly number[], repeats: readonly number[], outShape: readonly number[]): void {
  const rank = shape.length;
  const inStrides = stridesOf(shape);
  const outBlocks = stridesOf(outShape); // elements of the output below each axis
  const fill = (axis: number, from: number, to: number): void => {
    if (axis === rank) {
      dst[to] = src[from];
      return;
    }
    const extent = shape[axis];
    if (axis === rank - 1) {
      for (let i = 0; i < extent; i++) dst[to + i] = src[from + i];
    } else {
      for (let i = 0; i < extent; i++) fill(axis + 1, from + i * inStrides[axis], to + i * outBlocks[axis]);
    }
    const block = extent * outBlocks[axis];
    // Doubling: each copy replicates everything laid out so far, so log2(repeats) memmoves.
    for (let filled = 1; filled < repeats[axis];) {
      const count = Math.min(filled, repeats[axis] - filled);
      dst.copyWithin(to + filled * block, to, to + count * block);
      filled += count;
    }
  };
  fill(0, 0, 0);
}
