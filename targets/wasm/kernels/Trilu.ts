import { add, ge, i32, le, mul, select, sub } from '../../../codegen/builder.js';
import type { WasmKernelDef } from '../kernel-def.js';
import { checkArenaTypes, declareIO, product, rankOf, scalars, shapeIn } from './nn-util.js';

/** Trilu: keeps the upper (j - i >= k) or lower (j - i <= k) triangle of every matrix. */
export const triluKernel: WasmKernelDef = {
  domain: '',
  op: 'Trilu',
  check(ctx) {
    const rank = rankOf(ctx.inputs[0]);
    if (rank === undefined) return 'input rank is unknown';
    if (rank < 2) return `Trilu needs rank >= 2, got ${rank}`;
    return checkArenaTypes(ctx);
  },
  build(ctx) {
    const upperAttr = ctx.node.attributes.get('upper');
    const upper = upperAttr?.kind === 'int' ? upperAttr.value !== 0 : true;
    const { k, inputs, outputs } = declareIO(ctx);
    const [matrices, rows, cols] = scalars(k, 'p', 3);
    const diagonal = inputs[1] ? k.let('diagonal', inputs[1].load(0)) : i32(0);
    const input = inputs[0]!, out = outputs[0]!;
    k.loop('m', 0, matrices, (m) => {
      k.loop('r', 0, rows, (r) => {
        const base = k.let('base', mul(add(mul(m, rows), r), cols));
        k.loop('c', 0, cols, (c) => {
          const offset = sub(c, r);
          const keep = upper ? ge(offset, diagonal) : le(offset, diagonal);
          k.store(out, add(base, c), select(keep, input.load(add(base, c)), 0));
        });
      });
    });
    return k.build();
  },
  args(_node, shapes) {
    const s = shapeIn(shapes, 0);
    return [product(s.slice(0, -2)), s[s.length - 2], s[s.length - 1]];
  },
};
