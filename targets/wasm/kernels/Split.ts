import { add, i32, mul } from '../../../codegen/builder.js';
import type { WasmKernelDef } from '../kernel-def.js';
import { checkArenaTypes, declareIO, normAxis, product, rankOf, scalars, shapeIn } from './nn-util.js';

/** Split: the inverse of Concat; every output takes its block of each input row. */
export const splitKernel: WasmKernelDef = {
  domain: '',
  op: 'Split',
  check(ctx) {
    if (rankOf(ctx.inputs[0]) === undefined) return 'input rank is unknown';
    if (ctx.node.outputs.some((name) => !name)) return 'omitted Split outputs are not supported';
    return checkArenaTypes(ctx);
  },
  build(ctx) {
    const count = ctx.node.outputs.length;
    const { k, inputs, outputs } = declareIO(ctx);
    const [outer, inner, inAxis] = scalars(k, 'p', 3);
    const axisDims = scalars(k, 'axis_dim', count);
    const input = inputs[0]!;
    const inRow = k.let('in_row', mul(inAxis, inner));
    let offset = i32(0);
    outputs.forEach((output, i) => {
      const block = k.let(`block${i}`, mul(axisDims[i], inner));
      const at = k.let(`at${i}`, mul(offset, inner));
      k.loop('o', 0, outer, (o) => {
        const src = k.let('src', add(mul(o, inRow), at));
        const dst = k.let('dst', mul(o, block));
        k.loop('e', 0, block, (e) => k.store(output!, add(dst, e), input.load(add(src, e))));
      });
      offset = k.let(`offset${i}`, add(offset, axisDims[i]));
    });
    return k.build();
  },
  args(node, shapes) {
    const inShape = shapeIn(shapes, 0);
    const attr = node.attributes.get('axis');
    const axis = normAxis(attr?.kind === 'int' ? attr.value : 0, inShape.length);
    return [
      product(inShape.slice(0, axis)), product(inShape.slice(axis + 1)), inShape[axis],
      ...node.outputs.map((_, i) => shapes.outputs[i][axis]),
    ];
  },
};
