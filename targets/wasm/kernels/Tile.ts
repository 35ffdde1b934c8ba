import { i32 } from '../../../codegen/builder.js';
import type { WasmKernelDef } from '../kernel-def.js';
import { checkArenaTypes, copyElement, copyNest, declareIO, rankOf, scalars, shapeIn, stridesOf } from './nn-util.js';

/**
 * Tile: each output axis is (repeat, input index); a 2·rank copy nest where the repeat
 * levels advance only the destination.
 */
export const tileKernel: WasmKernelDef = {
  domain: '',
  op: 'Tile',
  check(ctx) {
    if (rankOf(ctx.inputs[0]) === undefined) return 'input rank is unknown';
    return checkArenaTypes(ctx);
  },
  build(ctx) {
    const rank = rankOf(ctx.inputs[0]) ?? 0;
    const { k, inputs, outputs } = declareIO(ctx);
    const dims = scalars(k, 'dim', 2 * rank);
    const src = scalars(k, 'src_stride', 2 * rank);
    const dst = scalars(k, 'dst_stride', 2 * rank);
    copyNest(k, dims, src, dst, i32(0), i32(0), (s, d) => copyElement(k, inputs[0]!, s, outputs[0]!, d));
    return k.build();
  },
  args(_node, shapes) {
    const inShape = shapeIn(shapes, 0);
    const out = shapes.outputs[0];
    const inStrides = stridesOf(inShape);
    const outStrides = stridesOf(out);
    const dims: number[] = [], src: number[] = [], dst: number[] = [];
    inShape.forEach((n, d) => {
      const repeats = n === 0 ? 0 : out[d] / n;
      dims.push(repeats, n);
      src.push(0, inStrides[d]);
      dst.push(n * outStrides[d], outStrides[d]);
    });
    return [...dims, ...src, ...dst];
  },
};
