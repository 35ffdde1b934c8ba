import { KernelBuilder, mul, add } from '../../../../codegen/builder.js';
import type { Expr, Kernel } from '../../../../codegen/kernel.js';
import type { Node } from '../../../../ir/graph.js';
import { Attrs } from '../../../../ir/ops/attrs.js';
import type { TableKind } from '../../../../passes/lut/tables.js';
import type { KernelBuildContext, LaunchShapes, WasmKernelDef } from '../../kernel-def.js';
import { leadingDims } from './common.js';
import { emitPrecomputeRow } from './precompute-emit.js';

/**
 * llmcc.LutPrecompute(A, scale?) on wasm: one scalar pass per row (math: precompute-emit.ts).
 * The optional scale multiplies in f32, which is A's own rounding only for f32 activations,
 * so f16/bf16 activations with a fused scale are not claimed.
 */

interface Params { g: number; groupSize: number; table: TableKind; K: number; scaleCount: number }

function params(ctx: KernelBuildContext): Params {
  const attrs = new Attrs(ctx.node);
  const shape = ctx.inputs[0]?.shape;
  const K = shape ? shape[shape.length - 1] : undefined;
  if (typeof K !== 'number') throw attrs.error('LutPrecompute on wasm needs a static K');
  const scaleShape = ctx.inputs[1]?.shape;
  const scaleCount = scaleShape ? scaleShape.reduce<number>((a, d) => a * (typeof d === 'number' ? d : NaN), 1) : 0;
  return {
    g: attrs.int('g', 4),
    groupSize: attrs.int('group_size'),
    table: attrs.string('table', 'i8') === 'f32' ? 'f32' : 'i8',
    K,
    scaleCount,
  };
}

export function buildLutPrecompute(ctx: KernelBuildContext): Kernel {
  const p = params(ctx);
  const k = new KernelBuilder(ctx.name);
  const a = k.buffer('a', 'f32', 'read');
  const scale = ctx.inputs[1] ? k.buffer('scale', 'f32', 'read') : undefined;
  const tables = k.buffer('tables', p.table === 'i8' ? 'i8' : 'f32', 'write');
  const tableScales = k.buffer('table_scales', 'f32', 'write');
  const actSums = k.buffer('act_sums', 'f32', 'write');
  const M = k.scalar('M');
  k.loop('m', 0, M, (m) => {
    const base = k.let('abase', mul(m, p.K));
    const activation = (kk: Expr): Expr => {
      const x = a.load(add(base, kk));
      if (!scale) return x;
      return mul(x, scale.load(p.scaleCount === 1 ? 0 : kk));
    };
    emitPrecomputeRow(k, { K: p.K, g: p.g, groupSize: p.groupSize, table: p.table, activation, tables, tableScales, actSums, row: m });
  }, { parallel: true });
  return k.build();
}

export const lutPrecomputeKernel: WasmKernelDef = {
  domain: 'llmcc',
  op: 'LutPrecompute',
  check(ctx) {
    const a = ctx.inputs[0];
    if (!a?.shape || typeof a.shape[a.shape.length - 1] !== 'number') return 'K (the last dim of A) must be static';
    if (ctx.inputs[1] && a.dtype !== 'f32') return `a fused scale on ${a.dtype} activations (rounding to ${a.dtype} happens in the reference)`;
    if (ctx.inputs[1]) {
      const s = ctx.inputs[1].shape;
      if (!s || s.some((d) => typeof d !== 'number')) return 'the scale input needs a static shape';
    }
    return undefined;
  },
  build: buildLutPrecompute,
  args(_node: Node, shapes: LaunchShapes): number[] {
    return [leadingDims(shapes.inputs[0], 1)];
  },
};
