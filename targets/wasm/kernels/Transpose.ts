import { i32 } from '../../../codegen/builder.js';
import type { WasmKernelDef } from '../kernel-def.js';
import { checkArenaTypes, copyElement, copyNest, declareIO, rankOf, scalars, shapeIn, stridesOf } from './nn-util.js';

/** The permutation of a Transpose node (default: reversed axes). */
function permOf(node: Parameters<WasmKernelDef['args']>[0], rank: number): number[] {
  const attr = node.attributes.get('perm');
  return attr?.kind === 'ints' ? attr.value.map((p) => (p < 0 ? p + rank : p)) : Array.from({ length: rank }, (_, i) => rank - 1 - i);
}

/**
 * Transpose: a strided copy walking the output in order; the source strides are the input's
 * strides permuted (passed at launch, so one kernel serves every shape of this rank).
 */
export const transposeKernel: WasmKernelDef = {
  domain: '',
  op: 'Transpose',
  check(ctx) {
    const rank = rankOf(ctx.inputs[0]);
    if (rank === undefined) return 'input rank is unknown';
    const perm = permOf(ctx.node, rank);
    if (perm.length !== rank || [...perm].sort((a, b) => a - b).some((p, i) => p !== i)) return `perm [${perm.join(',')}] is not a permutation of ${rank} axes`;
    return checkArenaTypes(ctx);
  },
  build(ctx) {
    const rank = rankOf(ctx.inputs[0]) ?? 0;
    const { k, inputs, outputs } = declareIO(ctx);
    const dims = scalars(k, 'dim', rank);
    const src = scalars(k, 'src_stride', rank);
    const dst = scalars(k, 'dst_stride', rank);
    const input = inputs[0]!, output = outputs[0]!;
    copyNest(k, dims, src, dst, i32(0), i32(0), (s, d) => copyElement(k, input, s, output, d));
    return k.build();
  },
  args(node, shapes) {
    const inShape = shapeIn(shapes, 0);
    const perm = permOf(node, inShape.length);
    const inStrides = stridesOf(inShape);
    const out = shapes.outputs[0];
    return [...out, ...perm.map((p) => inStrides[p]), ...stridesOf(out)];
  },
};
