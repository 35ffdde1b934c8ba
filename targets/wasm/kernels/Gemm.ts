import type { Expr } from '../../../codegen/kernel.js';
import { add, f32, mul, rem, sub } from '../../../codegen/builder.js';
import type { TuningKnob, WasmKernelDef } from '../kernel-def.js';
import { broadcastStrides } from './Expand.js';
import { declareIO, rankOf, scalars, shapeIn } from './nn-util.js';

function attr(node: Parameters<WasmKernelDef['args']>[0], name: string, fallback: number): number {
  const a = node.attributes.get(name);
  return a?.kind === 'int' || a?.kind === 'float' ? a.value : fallback;
}

/** Gemm's tuning knob: output columns per step, sharing each A load (every output still sums in k order). */
export const GEMM_KNOBS: readonly TuningKnob[] = [{ name: 'cols', values: [1, 2, 4, 8], default: 1 }];

/**
 * Gemm: Y = alpha * op(A) op(B) + beta * C. op(A)/op(B) are read through launch strides
 * (so transA/transB cost nothing extra), C through broadcast strides. `cols` outputs of a
 * row are computed per step (one A load feeds them all), then single-column tails.
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
  tuningSpace: () => GEMM_KNOBS,
  build(ctx) {
    const alpha = Math.fround(attr(ctx.node, 'alpha', 1));
    const beta = Math.fround(attr(ctx.node, 'beta', 1));
    const requested = ctx.tuning?.cols;
    const cols = requested !== undefined && GEMM_KNOBS[0].values.includes(requested) ? requested : GEMM_KNOBS[0].default;
    const { k, inputs, outputs } = declareIO(ctx);
    const [m, n, depth, aRow, aCol, bRow, bCol, cRow, cCol] = scalars(k, 'p', 9);
    const a = inputs[0]!, b = inputs[1]!, c = inputs[2], y = outputs[0]!;
    const nMain = cols > 1 ? k.let('n_main', sub(n, rem(n, cols))) : n;
    /** Outputs (i, j0 .. j0 + width − 1), each summed in k order. */
    const columns = (i: Expr, j0: Expr, width: number): void => {
      const accs = Array.from({ length: width }, (_, w) => k.mut(`acc${w}`, f32(0)));
      const aBase = k.let('a_base', mul(i, aRow));
      const bBases = Array.from({ length: width }, (_, w) => k.let(`b_base${w}`, mul(add(j0, w), bCol)));
      k.loop('p', 0, depth, (p) => {
        const av = k.let('av', a.load(add(aBase, mul(p, aCol))));
        const bOff = k.let('b_off', mul(p, bRow));
        for (let w = 0; w < width; w++) k.set(accs[w], add(accs[w], mul(av, b.load(add(bBases[w], bOff)))));
      });
      for (let w = 0; w < width; w++) {
        const j = add(j0, w);
        let value = mul(accs[w], f32(alpha));
        if (c) value = add(value, mul(f32(beta), c.load(add(mul(i, cRow), mul(j, cCol)))));
        k.store(y, add(mul(i, n), j), value);
      }
    };
    k.loop('i', 0, m, (i) => {
      k.loop('j', 0, nMain, (j) => columns(i, j, cols), { step: cols });
      if (cols > 1) k.loop('j', nMain, n, (j) => columns(i, j, 1));
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
