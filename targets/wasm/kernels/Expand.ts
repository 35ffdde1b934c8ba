import { i32 } from '../../../codegen/builder.js';
import type { WasmKernelDef } from '../kernel-def.js';
import { checkArenaTypes, copyElement, copyNest, declareIO, rankOf, scalars, shapeIn, stridesOf } from './nn-util.js';

/**
 * Strides that read `inShape` broadcast (numpy, right-aligned) to `outShape`: 0 along axes
 * the input repeats.
 */
export function broadcastStrides(inShape: readonly number[], outShape: readonly number[]): number[] {
  const strides = stridesOf(inShape);
  const offset = outShape.length - inShape.length;
  return outShape.map((_, d) => {
    const id = d - offset;
    if (id < 0 || inShape[id] === 1) return 0;
    return strides[id];
  });
}

/** Expand: numpy broadcast of the input to the output shape, as a strided copy. */
export const expandKernel: WasmKernelDef = {
  domain: '',
  op: 'Expand',
  check(ctx) {
    if (rankOf(ctx.outputs[0]) === undefined) return 'output rank is unknown';
    return checkArenaTypes(ctx);
  },
  build(ctx) {
    const rank = rankOf(ctx.outputs[0]) ?? 0;
    const { k, inputs, outputs } = declareIO(ctx);
    const dims = scalars(k, 'dim', rank);
    const src = scalars(k, 'src_stride', rank);
    const dst = scalars(k, 'dst_stride', rank);
    copyNest(k, dims, src, dst, i32(0), i32(0), (s, d) => copyElement(k, inputs[0]!, s, outputs[0]!, d));
    return k.build();
  },
  args(_node, shapes) {
    const out = shapes.outputs[0];
    return [...out, ...broadcastStrides(shapeIn(shapes, 0), out), ...stridesOf(out)];
  },
};
