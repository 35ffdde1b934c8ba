import {
  KernelBuilder, abs, add, cast, constant, div, eq, f32, max, min, mul, nearest, select, sub,
} from '../../../../codegen/builder.js';
import type { Expr, Kernel } from '../../../../codegen/kernel.js';
import type { Node } from '../../../../ir/graph.js';
import { Attrs } from '../../../../ir/ops/attrs.js';
import { sparsePrecomputeAttrs } from '../../../../ir/ops/llmcc/SparseLutPrecompute.js';
import { TABLE_CODE_MAX } from '../../../../passes/lut/tables.js';
import { checkSparseLutLayout, sparseTableLayout } from '../../../../passes/sparsity/lut.js';
import type { KernelBuildContext, LaunchShapes, WasmKernelDef } from '../../kernel-def.js';
import { leadingDims } from '../lut/common.js';

/**
 * llmcc.SparseLutPrecompute on wasm (math: passes/sparsity/lut.ts): per group of M
 * activations, every choice's stored entries summed in f32 in t order, unused slots 0; int8
 * scales and codes with IEEE f32 division and ties-to-even, so the output matches the
 * reference bit for bit. Entries are computed twice per block (for the max, then the codes)
 * instead of being kept: the tables are small next to the matmul.
 */
export function buildSparseLutPrecompute(ctx: KernelBuildContext): Kernel {
  const p = sparsePrecomputeAttrs(new Attrs(ctx.node));
  const a0 = ctx.inputs[0];
  const K = a0?.shape?.[a0.shape.length - 1];
  if (typeof K !== 'number') throw new Attrs(ctx.node).error('K (the last dim of A) must be static');
  checkSparseLutLayout(p.pattern, K, p.groupSize);
  const layout = sparseTableLayout(p.pattern);
  const M_ = p.pattern.m;
  const groups = K / M_;
  const blocks = K / p.groupSize;
  const perBlock = p.groupSize / M_;
  const k = new KernelBuilder(ctx.name);
  const a = k.buffer('a', 'f32', 'read');
  const tables = k.buffer('tables', p.table === 'i8' ? 'i8' : 'f32', 'write');
  const tableScales = k.buffer('table_scales', 'f32', 'write');
  const M = k.scalar('M');

  k.loop('m', 0, M, (m) => {
    const actBase = k.let('abase', mul(m, K));
    const entriesOf = (j: Expr): Expr[] => {
      const acts = Array.from({ length: M_ }, (_, t) => k.let(`x${t}`, a.load(add(actBase, add(mul(j, M_), t)))));
      const out: Expr[] = [];
      for (const chosen of layout.choices) {
        for (let s = 0; s < layout.half; s++) {
          let acc: Expr = f32(0);
          chosen.forEach((t, i) => { acc = (s >> i) & 1 ? add(acc, acts[t]) : sub(acc, acts[t]); });
          out.push(k.let('e', acc));
        }
      }
      return out;
    };
    const slotBase = (j: Expr): Expr => k.let('tb', mul(add(mul(m, groups), j), layout.slots));
    k.loop('blk', 0, blocks, (blk) => {
      const first = k.let('j0', mul(blk, perBlock));
      const scaleAt = add(mul(m, blocks), blk);
      if (p.table === 'f32') {
        k.loop('j', first, add(first, perBlock), (j) => {
          const base = slotBase(j);
          entriesOf(j).forEach((e, i) => tables.store(add(base, i), e));
          for (let i = layout.entries; i < layout.slots; i++) tables.store(add(base, i), f32(0));
        });
        tableScales.store(scaleAt, f32(1));
        return;
      }
      const maxAbs = k.mut('mx', f32(0));
      k.loop('j', first, add(first, perBlock), (j) => {
        for (const e of entriesOf(j)) k.set(maxAbs, max(maxAbs, abs(e)));
      });
      const scale = k.let('scale', div(maxAbs, f32(TABLE_CODE_MAX)));
      tableScales.store(scaleAt, scale);
      const zero = k.let('zs', eq(scale, f32(0)));
      k.loop('j', first, add(first, perBlock), (j) => {
        const base = slotBase(j);
        entriesOf(j).forEach((e, i) => {
          const code = min(max(nearest(div(e, scale)), f32(-TABLE_CODE_MAX)), f32(TABLE_CODE_MAX));
          tables.store(add(base, i), select(zero, constant('i32', 0), cast(code, 'i32')));
        });
        for (let i = layout.entries; i < layout.slots; i++) tables.store(add(base, i), constant('i32', 0));
      });
    });
  }, { parallel: true });
  return k.build();
}

export const sparseLutPrecomputeKernel: WasmKernelDef = {
  domain: 'llmcc',
  op: 'SparseLutPrecompute',
  check(ctx) {
    const a = ctx.inputs[0];
    if (!a?.shape || typeof a.shape[a.shape.length - 1] !== 'number') return 'K (the last dim of A) must be static';
    return undefined;
  },
  build: buildSparseLutPrecompute,
  args(_node: Node, shapes: LaunchShapes): number[] {
    return [leadingDims(shapes.inputs[0], 1)];
  },
};
