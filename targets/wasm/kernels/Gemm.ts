import { add, f32, mul } from '../../../codegen/builder.js';
import type { WasmKernelDef } from '../kernel-def.js';
import { broadcastStrides } from './Expand.js';
import { declareIO, rankOf, scalars, shapeIn } from './nn-util.js';

function attr(node: Parameters<WasmKernelDef['args']>[0], name: string, fallback: number): number {
  const a = node.attributes.get(name);
  return a?.kind === 'int' || a?.kind === 'float' ? a.value : fallback;
}

/**
 * Gemm: Y = alpha * op(A) op(B) + beta * C. op(A)/op(B) are read through launch strides
 * (so transA/transB cost nothing extra), C through broadcast strides.
 */
export const gemmKernel: WasmKernelDef = {
  domain: '',
  op: 'Gemm',
  check(ctx) {
    const [a, b, c] = ctx.inputs;
    if (rankOf(a) !== 2 || rankOf(b) !== 2) return 'A and B must be 2-D';
    if (c && rankOf(c) === undefined) return 'C rank is unknown';
    for (const t of [a, b, c]) if (t && !['f32', 'f16', 'bf16', 'f64'].includes(t.dtype)) return `Gemm on wasm is float only (got ${t.dtype})`;
    return undefined;
  },
  build(ctx) {
    const alpha = Math.fround(attr(ctx.node, 'alpha', 1));
    const beta = Math.fround(attr(ctx.node, 'beta', 1));
    const { k, inputs, outputs } = declareIO(ctx);
    const [m, n, depth, aRow, aCol, bRow, bCol, cRow, cCol] = scalars(k, 'p', 9);
    const a = inputs[0]!, b = inputs[1]!, c = inputs[2], y = outputs[0]!;
    k.loop('i', 0, m, (i) => {
      k.loop('j', 0, n, (j) => {
        const acc = k.mut('acc', f32(0));
        const aBase = k.let('a_base', mul(i, aRow));
        const bBase = k.let('b_base', mul(j, bCol));
        k.loop('p', 0, depth, (p) => {
          k.set(acc, add(acc, mul(a.load(add(aBase, mul(p, aCol))), b.load(add(bBase, mul(p, bRow))))));
        });
        let value = mul(acc, f32(alpha));
        if (c) value = add(value, mul(f32(beta), c.load(add(mul(i, cRow), mul(j, cCol)))));
        k.store(y, add(mul(i, n), j), value);
      });
    }, { parallel: true });
    return k.build();
  },
  args(node, shapes) {
    const aShape = shapeIn(shapes, 0);
    const bShape = shapeIn(shapes, 1);
    const transA = attr(node, 'transA', 0) !== 0;
    const transB = attr(node, 'transB', 0) !== 0;
    const [m, depth] = transA ? [aShape[1], aShape[0]] : aShape;
    const n = transB ? bShape[0] : bShape[1];
    // Element strides of op(A) rows/columns and op(B) rows/columns.
    const [aRow, aCol] = transA ? [1, aShape[1]] : [aShape[1], 1];
    const [bRow, bCol] = transB ? [1, bShape[1]] : [bShape[1], 1];
    const cShape = shapes.inputs[2];
    const [cRow, cCol] = cShape ? broadcastStrides(cShape, [m, n]) : [0, 0];
    return [m, n, depth, aRow, aCol, bRow, bCol, cRow, cCol];
  },
};
