import type { OpDef } from '../types.js';
import type { Dim } from '../../graph.js';
import { sizeOf } from '../../tensor.js';
import { inputTensor, inputType, knownDims, knownInts, outputInfo, resolveAxis, takeElements } from './common.js';

/** Gather: picks slices along `axis` by (possibly negative) indices. */
export const Gather: OpDef = {
  domain: '',
  op: 'Gather',
  infer(ctx) {
    const data = inputType(ctx, 0);
    const indices = inputType(ctx, 1);
    if (!data.shape || !indices.shape) return [outputInfo(data.dtype, undefined)];
    const axis = resolveAxis(ctx, ctx.attrs.int('axis', 0), data.shape.length);
    const shape: Dim[] = [...data.shape.slice(0, axis), ...indices.shape, ...data.shape.slice(axis + 1)];
    // Gathering from a shape vector (Shape → Gather) keeps the picked, possibly symbolic, dims.
    let elements: Dim[] | undefined;
    const whole = data.shape.length === 1 ? knownDims(ctx, 0) : undefined;
    const picks = knownInts(ctx, 1);
    if (whole && picks) {
      const n = whole.length;
      if (picks.every((p) => p >= -n && p < n)) elements = picks.map((p) => whole[p < 0 ? p + n : p]);
    }
    return [outputInfo(data.dtype, shape, elements)];
  },
  evaluate(ctx) {
    const data = inputTensor(ctx, 0);
    const indices = inputTensor(ctx, 1);
    const axis = resolveAxis(ctx, ctx.attrs.int('axis', 0), data.rank);
    const dim = data.shape[axis];
    const outer = sizeOf(data.shape.slice(0, axis));
    const inner = sizeOf(data.shape.slice(axis + 1));
    const picks = indices.toArray().map((p) => {
      if (p < -dim || p >= dim) throw ctx.attrs.error(`Gather index ${p} is out of range for axis size ${dim}`);
      return p < 0 ? p + dim : p;
    });
    const outShape = [...data.shape.slice(0, axis), ...indices.shape, ...data.shape.slice(axis + 1)];
    const source = new Int32Array(outer * picks.length * inner);
    let k = 0;
    for (let o = 0; o < outer; o++) {
      for (const p of picks) {
        const base = (o * dim + p) * inner;
        for (let i = 0; i < inner; i++) source[k++] = base + i;
      }
    }
    return [takeElements(data, outShape, source)];
  },
};
