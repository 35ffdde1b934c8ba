import { add, ge, i32, lt, mul, and, div, rem } from '../../../codegen/builder.js';
import type { WasmKernelDef } from '../kernel-def.js';
import { checkArenaTypes, declareIO, normAxis, product, rankOf, scalars, shapeIn } from './nn-util.js';

function axisOf(node: Parameters<WasmKernelDef['args']>[0], rank: number): number {
  const attr = node.attributes.get('axis');
  return normAxis(attr?.kind === 'int' ? attr.value : -2, rank);
}

/**
 * TensorScatter (opset 24 KV cache write): out = past_cache with `update` written along
 * `axis` from write_indices[batch] (0 without them); circular mode wraps positions, linear
 * mode skips positions outside the cache (the reference reports them as errors).
 */
export const tensorScatterKernel: WasmKernelDef = {
  domain: '',
  op: 'TensorScatter',
  check(ctx) {
    const rank = rankOf(ctx.inputs[0]);
    if (rank === undefined) return 'past_cache rank is unknown';
    const axis = axisOf(ctx.node, rank);
    if (axis <= 0 || axis >= rank) return `axis must be in 1..${rank - 1}`;
    const mode = ctx.node.attributes.get('mode');
    if (mode?.kind === 'string' && mode.value !== 'linear' && mode.value !== 'circular') return `mode '${mode.value}' is not linear or circular`;
    return checkArenaTypes(ctx);
  },
  build(ctx) {
    const mode = ctx.node.attributes.get('mode');
    const circular = mode?.kind === 'string' && mode.value === 'circular';
    const { k, inputs, outputs } = declareIO(ctx);
    const [total, prefixCount, perBatch, maxLength, length, inner] = scalars(k, 'p', 6);
    const past = inputs[0]!, update = inputs[1]!, out = outputs[0]!;
    // Skips the copy when the runtime runs the scatter in place (same buffer): still correct.
    k.loop('e', 0, total, (e) => k.store(out, e, past.load(e)));
    k.loop('prefix', 0, prefixCount, (prefix) => {
      const start = inputs[2] ? k.let('write_index', inputs[2].load(div(prefix, perBatch))) : i32(0);
      k.loop('s', 0, length, (s) => {
        let at = k.let('at', add(start, s));
        if (circular) at = k.let('wrapped', rem(add(rem(at, maxLength), maxLength), maxLength));
        k.if(and(ge(at, 0), lt(at, maxLength)), () => {
          const to = k.let('to', mul(add(mul(prefix, maxLength), at), inner));
          const from = k.let('from', mul(add(mul(prefix, length), s), inner));
          k.loop('i', 0, inner, (i) => k.store(out, add(to, i), update.load(add(from, i))));
        });
      });
    });
    return k.build();
  },
  args(node, shapes) {
    const past = shapeIn(shapes, 0);
    const update = shapeIn(shapes, 1);
    const axis = axisOf(node, past.length);
    const prefixCount = product(past.slice(0, axis));
    return [product(past), prefixCount, past[0] ? prefixCount / past[0] : 1, past[axis], update[axis], product(past.slice(axis + 1))];
  },
};
