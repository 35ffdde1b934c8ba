import { add, lt, mul, select } from '../../../codegen/builder.js';
import type { WasmKernelDef } from '../kernel-def.js';
import { checkArenaTypes, clampI, declareIO, normAxis, product, rankOf, scalars, shapeIn } from './nn-util.js';

function axisOf(node: Parameters<WasmKernelDef['args']>[0], rank: number): number {
  const attr = node.attributes.get('axis');
  return normAxis(attr?.kind === 'int' ? attr.value : 0, rank);
}

/**
 * Gather (embedding lookup): out[outer, t, inner] = data[outer, index[t], inner]; negative
 * indices count from the end. Indices are clamped into range so a bad id cannot write
 * outside the arena (the reference interpreter reports it; a kernel cannot throw).
 */
export const gatherKernel: WasmKernelDef = {
  domain: '',
  op: 'Gather',
  check(ctx) {
    const rank = rankOf(ctx.inputs[0]);
    if (rank === undefined) return 'data rank is unknown';
    const axis = axisOf(ctx.node, rank);
    if (axis < 0 || axis >= rank) return `axis out of range for rank ${rank}`;
    const indices = ctx.inputs[1];
    if (!indices || (indices.dtype !== 'i32' && indices.dtype !== 'i64')) return 'indices must be int32 or int64';
    return checkArenaTypes(ctx);
  },
  build(ctx) {
    const { k, inputs, outputs } = declareIO(ctx);
    const [outer, axisDim, inner, count] = scalars(k, 'p', 4);
    const data = inputs[0]!, indices = inputs[1]!, out = outputs[0]!;
    k.loop('o', 0, outer, (o) => {
      k.loop('t', 0, count, (t) => {
        const raw = k.let('raw', indices.load(t));
        const index = k.let('index', clampI(select(lt(raw, 0), add(raw, axisDim), raw), 0, add(axisDim, -1)));
        const src = k.let('src', mul(add(mul(o, axisDim), index), inner));
        const dst = k.let('dst', mul(add(mul(o, count), t), inner));
        k.loop('e', 0, inner, (e) => k.store(out, add(dst, e), data.load(add(src, e))));
      }, { parallel: true });
    });
    return k.build();
  },
  args(node, shapes) {
    const data = shapeIn(shapes, 0);
    const axis = axisOf(node, data.length);
    return [product(data.slice(0, axis)), data[axis], product(data.slice(axis + 1)), product(shapeIn(shapes, 1))];
  },
};
