import { add, i32, mul } from '../../../codegen/builder.js';
import type { WasmKernelDef } from '../kernel-def.js';
import { checkArenaTypes, declareIO, normAxis, product, rankOf, scalars, shapeIn } from './nn-util.js';

/**
 * Concat: for every outer index, each input's contiguous block (its axis length x inner)
 * lands at the running axis offset of the output row.
 */
export const concatKernel: WasmKernelDef = {
  domain: '',
  op: 'Concat',
  check(ctx) {
    if (rankOf(ctx.outputs[0]) === undefined) return 'output rank is unknown';
    if (ctx.node.inputs.some((name) => !name)) return 'omitted Concat inputs are not supported';
    return checkArenaTypes(ctx);
  },
  build(ctx) {
    const count = ctx.node.inputs.length;
    const { k, inputs, outputs } = declareIO(ctx);
    const [outer, inner, outAxis] = scalars(k, 'p', 3);
    const axisDims = scalars(k, 'axis_dim', count);
    const out = outputs[0]!;
    const outRow = k.let('out_row', mul(outAxis, inner));
    let offset = i32(0);
    inputs.forEach((input, i) => {
      const block = k.let(`block${i}`, mul(axisDims[i], inner));
      const at = k.let(`at${i}`, mul(offset, inner));
      k.loop('o', 0, outer, (o) => {
        const src = k.let('src', mul(o, block));
        const dst = k.let('dst', add(mul(o, outRow), at));
        k.loop('e', 0, block, (e) => k.store(out, add(dst, e), input!.load(add(src, e))));
      });
      offset = k.let(`offset${i}`, add(offset, axisDims[i]));
    });
    return k.build();
  },
  args(node, shapes) {
    const out = shapes.outputs[0];
    const attr = node.attributes.get('axis');
    const axis = normAxis(attr?.kind === 'int' ? attr.value : 0, out.length);
    return [
      product(out.slice(0, axis)), product(out.slice(axis + 1)), out[axis],
      ...node.inputs.map((_, i) => shapeIn(shapes, i)[axis]),
    ];
  },
};
