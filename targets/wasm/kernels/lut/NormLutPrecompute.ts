import { KernelBuilder, add, div, f32, mul, rem, sqrt, sub } from '../../../../codegen/builder.js';
import type { Expr, Kernel } from '../../../../codegen/kernel.js';
import type { Node } from '../../../../ir/graph.js';
import { Attrs } from '../../../../ir/ops/attrs.js';
import type { KernelBuildContext, LaunchShapes, WasmKernelDef } from '../../kernel-def.js';
import { leadingDims } from './common.js';
import { emitPrecomputeRow } from './precompute-emit.js';

/**
 * llmcc.NormLutPrecompute(x, gamma, beta?, skip?, skip_bias?) → (y, tables, table_scales,
 * act_sums, skip_sum?) on wasm (semantics: ir/ops/llmcc/NormLutPrecompute.ts). The residual
 * sum v is written to skip_sum (or, without it, to y as a staging row), the norm statistics
 * are f32 (the reference uses f64: y may differ in the last bit, and a table code then by
 * one step), and the tables are built from the stored y exactly as LutPrecompute would.
 * Scalar arguments: M (rows) and the rows of skip (it repeats over the leading rows). Without
 * y (the lowering drops it when unused) the normalized values are recomputed where read.
 */

function hiddenOf(ctx: KernelBuildContext): number {
  const shape = ctx.inputs[0]?.shape;
  const h = shape ? shape[shape.length - 1] : undefined;
  if (typeof h !== 'number') throw new Attrs(ctx.node).error('NormLutPrecompute on wasm needs a static last dim');
  return h;
}

/** Whether the lowering kept y (it drops it when only the tables are read). */
function hasOutputY(node: Node): boolean {
  return node.outputs.length > 0 && node.outputs[0] !== '';
}

export function buildNormLutPrecompute(ctx: KernelBuildContext): Kernel {
  const attrs = new Attrs(ctx.node);
  const H = hiddenOf(ctx);
  const layer = attrs.string('norm') === 'layer';
  const epsilon = attrs.float('epsilon', 1e-5);
  const table = attrs.string('table', 'i8') === 'f32' ? 'f32' : 'i8';
  const k = new KernelBuilder(ctx.name);
  const x = k.buffer('x', 'f32', 'read');
  const gamma = k.buffer('gamma', 'f32', 'read');
  const beta = ctx.inputs[2] ? k.buffer('beta', 'f32', 'read') : undefined;
  const skip = ctx.inputs[3] ? k.buffer('skip', 'f32', 'read') : undefined;
  const skipBias = ctx.inputs[4] ? k.buffer('skip_bias', 'f32', 'read') : undefined;
  // Buffers come only for present outputs (the lowering drops y when only the tables are read).
  const y = hasOutputY(ctx.node) ? k.buffer('y', 'f32', 'readwrite') : undefined;
  const tables = k.buffer('tables', table, 'write');
  const tableScales = k.buffer('table_scales', 'f32', 'write');
  const actSums = k.buffer('act_sums', 'f32', 'write');
  const hasSkipSum = ctx.node.outputs.length > 4 && ctx.node.outputs[4] !== '';
  const skipSum = hasSkipSum ? k.buffer('skip_sum', 'f32', 'readwrite') : undefined;
  const M = k.scalar('M');
  const skipRows = k.scalar('skip_rows');
  const staging = skipSum ?? y;
  k.loop('m', 0, M, (m) => {
    const base = k.let('base', mul(m, H));
    const skipBase = k.let('sbase', mul(rem(m, skipRows), H));
    const residual = (h: Expr): Expr => {
      let v = x.load(add(base, h));
      if (skip) v = add(v, skip.load(add(skipBase, h)));
      if (skipBias) v = add(v, skipBias.load(h));
      return v;
    };
    // With neither y nor skip_sum there is nowhere to stage v: it is recomputed (same f32 ops).
    if (staging) k.loop('h', 0, H, (h) => staging.store(add(base, h), residual(h)));
    const v = (h: Expr): Expr => (staging ? staging.load(add(base, h)) : residual(h));
    const mean = k.mut('mean', f32(0));
    if (layer) {
      k.loop('h', 0, H, (h) => k.set(mean, add(mean, v(h))));
      k.set(mean, div(mean, f32(H)));
    }
    const sq = k.mut('sq', f32(0));
    k.loop('h', 0, H, (h) => {
      const d = k.let('d', sub(v(h), mean));
      k.set(sq, add(sq, mul(d, d)));
    });
    const denom = k.let('denom', sqrt(add(div(sq, f32(H)), f32(epsilon))));
    const normalized = (h: Expr): Expr => {
      const out = mul(div(sub(v(h), mean), denom), gamma.load(h));
      return beta ? add(out, beta.load(h)) : out;
    };
    if (y) k.loop('h', 0, H, (h) => y.store(add(base, h), normalized(h)));
    emitPrecomputeRow(k, {
      K: H, g: attrs.int('g', 4), groupSize: attrs.int('group_size'), table,
      activation: (kk) => (y ? y.load(add(base, kk)) : normalized(kk)), tables, tableScales, actSums, row: m,
    });
  }, { parallel: true });
  return k.build();
}

export const normLutPrecomputeKernel: WasmKernelDef = {
  domain: 'llmcc',
  op: 'NormLutPrecompute',
  // The lowering drops y when only the tables are read; the kernel then recomputes y in place.
  firstOutputOptional: true,
  check(ctx) {
    const shape = ctx.inputs[0]?.shape;
    if (!shape || typeof shape[shape.length - 1] !== 'number') return 'the hidden size (last dim of x) must be static';
    return undefined;
  },
  build: buildNormLutPrecompute,
  args(_node: Node, shapes: LaunchShapes): number[] {
    const skip = shapes.inputs[3];
    return [leadingDims(shapes.inputs[0], 1), skip ? Math.max(1, leadingDims(skip, 1)) : 1];
  },
};
