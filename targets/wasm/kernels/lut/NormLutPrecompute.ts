import { KernelBuilder, add, div, f32, mul, rem, sqrt, sub } from '../../../../codegen/builder.js';
import type { Kernel } from '../../../../codegen/kernel.js';
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
 * the y output, y's rows are staged in the scratch buffer.
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
  // Buffers come only for present outputs: without y, the normalized rows go to the scratch buffer.
  const hasY = hasOutputY(ctx.node);
  const yOutput = hasY ? k.buffer('y', 'f32', 'readwrite') : undefined;
  const tables = k.buffer('tables', table, 'write');
  const tableScales = k.buffer('table_scales', 'f32', 'write');
  const actSums = k.buffer('act_sums', 'f32', 'write');
  const hasSkipSum = ctx.node.outputs.length > 4 && ctx.node.outputs[4] !== '';
  const skipSum = hasSkipSum ? k.buffer('skip_sum', 'f32', 'readwrite') : undefined;
  const scratch = k.buffer('scratch', 'f32', 'readwrite');
  const y = yOutput ?? scratch;
  const M = k.scalar('M');
  const skipRows = k.scalar('skip_rows');
  const staging = skipSum ?? y;
  k.loop('m', 0, M, (m) => {
    const base = k.let('base', mul(m, H));
    const skipBase = k.let('sbase', mul(rem(m, skipRows), H));
    k.loop('h', 0, H, (h) => {
      let v = x.load(add(base, h));
      if (skip) v = add(v, skip.load(add(skipBase, h)));
      if (skipBias) v = add(v, skipBias.load(h));
      staging.store(add(base, h), v);
    });
    const mean = k.mut('mean', f32(0));
    if (layer) {
      k.loop('h', 0, H, (h) => k.set(mean, add(mean, staging.load(add(base, h)))));
      k.set(mean, div(mean, f32(H)));
    }
    const sq = k.mut('sq', f32(0));
    k.loop('h', 0, H, (h) => {
      const d = k.let('d', sub(staging.load(add(base, h)), mean));
      k.set(sq, add(sq, mul(d, d)));
    });
    const denom = k.let('denom', sqrt(add(div(sq, f32(H)), f32(epsilon))));
    k.loop('h', 0, H, (h) => {
      let out = mul(div(sub(staging.load(add(base, h)), mean), denom), gamma.load(h));
      if (beta) out = add(out, beta.load(h));
      y.store(add(base, h), out);
    });
    emitPrecomputeRow(k, {
      K: H, g: attrs.int('g', 4), groupSize: attrs.int('group_size'), table,
      activation: (kk) => y.load(add(base, kk)), tables, tableScales, actSums, row: m,
    });
  }, { parallel: true });
  return k.build();
}

export const normLutPrecomputeKernel: WasmKernelDef = {
  domain: 'llmcc',
  op: 'NormLutPrecompute',
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
  // Always defined (the convention then always passes one): the rows of y when y is absent.
  scratchBytes(node: Node, shapes: LaunchShapes): number {
    if (hasOutputY(node)) return 16;
    const x = shapes.inputs[0] ?? [];
    return Math.max(16, leadingDims(x, 1) * (x[x.length - 1] ?? 1) * 4);
  },
};
