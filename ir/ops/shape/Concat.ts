import type { OpDef } from '../types.js';
import type { Dim } from '../../graph.js';
import { dimAdd } from '../../dims.js';
import { Tensor, sizeOf } from '../../tensor.js';
import { copyElement, knownDims, outputInfo, resolveAxis } from './common.js';

/** Concat: joins inputs along `axis`; all other dims must agree. */
export const Concat: OpDef = {
  domain: '',
  op: 'Concat',
  infer(ctx) {
    const types = ctx.inputs.filter((t) => t !== undefined);
    if (types.length === 0) throw ctx.attrs.error('Concat needs at least one input');
    const dtype = types[0].dtype;
    const known = types.find((t) => t.shape !== undefined)?.shape;
    if (!known) return [outputInfo(dtype, undefined)];
    const rank = known.length;
    const axis = resolveAxis(ctx, ctx.attrs.int('axis'), rank);
    const shape: Dim[] = [...known];
    let total: Dim = 0;
    for (const t of types) {
      if (!t.shape) {
        total = ctx.symbols.fresh();
        break;
      }
      if (t.shape.length !== rank) throw ctx.attrs.error(`Concat inputs have ranks ${rank} and ${t.shape.length}`);
      t.shape.forEach((d, i) => {
        if (i === axis) return;
        if (typeof d === 'number' && typeof shape[i] === 'number' && d !== shape[i]) {
          throw ctx.attrs.error(`Concat inputs disagree in dim ${i}: ${shape[i]} vs ${d}`);
        }
        if (typeof shape[i] !== 'number' && typeof d === 'number') shape[i] = d;
      });
      total = dimAdd(total, t.shape[axis]);
    }
    shape[axis] = total;
    // Concatenating shape vectors (Shape → Gather → Concat → Reshape) keeps their elements.
    let elements: Dim[] | undefined;
    if (rank === 1) {
      elements = [];
      for (let i = 0; i < ctx.inputs.length && elements; i++) {
        if (!ctx.inputs[i]) continue;
        const part = knownDims(ctx, i);
        elements = part ? [...elements, ...part] : undefined;
      }
    }
    return [outputInfo(dtype, shape, elements)];
  },
  evaluate(ctx) {
    const parts = ctx.inputs.filter((t): t is Tensor => t !== undefined);
    if (parts.length === 0) throw ctx.attrs.error('Concat needs at least one input');
    const first = parts[0];
    const rank = first.rank;
    const axis = resolveAxis(ctx, ctx.attrs.int('axis'), rank);
    for (const p of parts) {
      if (p.rank !== rank || p.shape.some((d, i) => i !== axis && d !== first.shape[i])) {
        throw ctx.attrs.error(`Concat inputs [${first.shape.join(',')}] and [${p.shape.join(',')}] do not match`);
      }
      if (p.dtype !== first.dtype) throw ctx.attrs.error(`Concat inputs have dtypes ${first.dtype} and ${p.dtype}`);
    }
    const outShape = [...first.shape];
    outShape[axis] = parts.reduce((n, p) => n + p.shape[axis], 0);
    const out = Tensor.zeros(first.dtype, outShape);
    const outer = sizeOf(first.shape.slice(0, axis));
    const inner = sizeOf(first.shape.slice(axis + 1));
    const outRow = outShape[axis] * inner;
    let offset = 0;
    for (const p of parts) {
      const row = p.shape[axis] * inner;
      for (let o = 0; o < outer; o++) {
        for (let i = 0; i < row; i++) copyElement(out, o * outRow + offset + i, p, o * row + i);
      }
      offset += row;
    }
    return [out];
  },
};
