import type { Expr } from '../../../codegen/kernel.js';
import { add, i32, lt, mul, rem, select, sigmoid, sub, type KernelBuilder } from '../../../codegen/builder.js';
import { FUSED_MATMUL_ACTIVATIONS, type FusedActivation } from '../../../ir/ops/llmcc/FusedMatMul.js';
import type { Node } from '../../../ir/graph.js';
import type { WasmKernelDef } from '../kernel-def.js';
import { geluErf, geluTanh } from './Gelu.js';
import { emitGemmTile } from './MatMul.js';
import { declareIO, rankOf, scalars, shapeIn } from './nn-util.js';

/** The activation of a fused epilogue on one f32 value. */
function activate(k: KernelBuilder, activation: FusedActivation, v: Expr): Expr {
  switch (activation) {
    case 'none': return v;
    case 'relu': return select(lt(v, 0), 0, v);
    case 'gelu': return geluErf(v);
    case 'gelu_tanh': return geluTanh(v);
    case 'silu': {
      const x = k.let('silu_x', v);
      return mul(x, sigmoid(x));
    }
  }
}

function activationOf(node: Node): FusedActivation | undefined {
  const a = node.attributes.get('activation');
  const name = a?.kind === 'string' ? a.value : 'none';
  return (FUSED_MATMUL_ACTIVATIONS as readonly string[]).includes(name) ? (name as FusedActivation) : undefined;
}

/**
 * llmcc.FusedMatMul: A [..., M, K] · B [K, N] as one rows × K × N GEMM (A's leading dims
 * flattened; B is 2-D), then one f32x4 pass over the output adding the bias and applying the
 * activation: one kernel launch instead of MatMul, Add and the activation.
 */
export const fusedMatMulKernel: WasmKernelDef = {
  domain: 'llmcc',
  op: 'FusedMatMul',
  check(ctx) {
    const [a, b] = ctx.inputs;
    if ((rankOf(a) ?? 0) < 2 || rankOf(b) !== 2) return 'FusedMatMul needs A of rank >= 2 and a 2-D B';
    if (!a || !b || !['f32', 'f16', 'bf16'].includes(a.dtype) || a.dtype !== b.dtype) return 'FusedMatMul is float only';
    if (!activationOf(ctx.node)) return 'unknown activation';
    return undefined;
  },
  build(ctx) {
    const activation = activationOf(ctx.node)!;
    const { k, inputs, outputs } = declareIO(ctx);
    const [rows, n, depth] = scalars(k, 'p', 3);
    const out = outputs[0]!;
    const bias = inputs[2];
    emitGemmTile(k, inputs[0]!, inputs[1]!, out, i32(0), i32(0), i32(0), rows, n, depth);
    if (bias || activation !== 'none') {
      // f32x4 over each row, then a scalar tail; the activations are written for both widths.
      const n4 = k.let('n4', sub(n, rem(n, 4)));
      k.loop('r', 0, rows, (r) => {
        const rowBase = k.let('row_base', mul(r, n));
        k.loop('c', 0, n4, (c) => {
          const at = k.let('at', add(rowBase, c));
          const v = bias ? add(out.loadVec(at, 'f32x4'), bias.loadVec(c, 'f32x4')) : out.loadVec(at, 'f32x4');
          out.storeVec(at, activate(k, activation, v));
        }, { step: 4 });
        k.loop('c', n4, n, (c) => {
          const at = k.let('at', add(rowBase, c));
          const v = bias ? add(out.load(at), bias.load(c)) : out.load(at);
          out.store(at, activate(k, activation, v));
        });
      }, { parallel: true });
    }
    return k.build();
  },
  args(_node, shapes) {
    const a = shapeIn(shapes, 0);
    const b = shapeIn(shapes, 1);
    const depth = a[a.length - 1];
    const rows = a.slice(0, -1).reduce((x, y) => x * y, 1);
    return [rows, b[1], depth];
  },
};
