import type { Dim } from '../../graph.js';
import { LlmccError } from '../../errors.js';
import { checkAllocatable } from '../../tensor.js';

/** Row-major strides. */
export function stridesOf(shape: readonly number[]): number[] {
  const strides = new Array<number>(shape.length);
  let s = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    strides[i] = s;
    s *= shape[i];
  }
  return strides;
}

/** Resolves a possibly negative axis against a rank, with a clear error when out of range. */
export function normalizeAxis(axis: number, rank: number, what = 'axis'): number {
  const a = axis < 0 ? axis + rank : axis;
  if (a < 0 || a >= rank) throw new LlmccError(`${what} ${axis} is out of range for rank ${rank}`);
  return a;
}

/** Multidirectional (numpy) broadcasting of shapes, static or symbolic. */
export function broadcastShapes(...shapes: (readonly Dim[])[]): Dim[] {
  const rank = Math.max(0, ...shapes.map((s) => s.length));
  const out: Dim[] = [];
  for (let i = 0; i < rank; i++) {
    let dim: Dim = 1;
    for (const s of shapes) {
      const d = s[s.length - rank + i] ?? 1;
      if (d === 1) continue;
      if (dim === 1) dim = d;
      else if (dim !== d) {
        if (typeof dim === 'number' && typeof d === 'number') {
          throw new LlmccError(`shapes [${shapes.map((x) => x.join(',')).join('] and [')}] cannot be broadcast`);
        }
        // Symbolic against static or another symbol: broadcasting says they must agree.
        if (typeof d === 'number') dim = d;
      }
    }
    out.push(dim);
  }
  return out;
}

/**
 * For an output shape and an input broadcast to it, the input's element offset for each
 * output element (flat). Cheap enough for the reference interpreter's sizes.
 */
export function broadcastIndex(outShape: readonly number[], inShape: readonly number[]): Int32Array {
  // The index map is as large as the output: refuse impossible shapes before allocating it.
  checkAllocatable(undefined, outShape);
  const size = outShape.reduce((a, b) => a * b, 1);
  const map = new Int32Array(size);
  const rank = outShape.length;
  const inStrides = stridesOf(inShape);
  const effective = new Array<number>(rank).fill(0);
  for (let i = 0; i < inShape.length; i++) {
    const o = rank - inShape.length + i;
    effective[o] = inShape[i] === 1 ? 0 : inStrides[i];
  }
  const counter = new Array<number>(rank).fill(0);
  let offset = 0;
  for (let i = 0; i < size; i++) {
    map[i] = offset;
    for (let d = rank - 1; d >= 0; d--) {
      counter[d]++;
      offset += effective[d];
      if (counter[d] < outShape[d]) break;
      offset -= effective[d] * counter[d];
      counter[d] = 0;
    }
  }
  return map;
}

export function shapesEqual(a: readonly Dim[], b: readonly Dim[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}
