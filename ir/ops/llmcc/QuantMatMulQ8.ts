import type { DType } from '../../dtype.js';
import type { Dim, TensorType } from '../../graph.js';
import { Tensor } from '../../tensor.js';
import { LlmccError } from '../../errors.js';
import type { Attrs } from '../attrs.js';
import type { EvalContext, InferContext, OpDef, OutputInfo } from '../types.js';
import { DOT_TILE_ROWS, dotLayout, type DotLayout } from '../../../passes/dot/layout.js';
import { dotMatMulQ8 } from '../../../passes/dot/q8-math.js';

/**
 * llmcc.QuantMatMulQ8(q, act_scales, act_sums, packed, scales, offsets, bias?) → Y
 * attrs bits (1, 2, 3, 4, 8), ternary (0/1), group_size, K, N, output_dtype (default 'f32').
 *   q [..., G·group_size] i8, act_scales/act_sums [..., G] f32/i32     (llmcc.QuantizeActQ8)
 *   packed u8 [ceil(N/4), G, group_size·bits/2]                      (dot layout, passes/dot/layout.ts)
 *   scales f32, offsets i32 [ceil(N/4), G, 4]: s_w/2 and 2·(z − c) per row, tile by tile
 *   Y [..., N] = Σ_blocks fround(h·s_a)·E (+ bias), E the exact int32 block dot
 * with G = ceil(K/group_size); the integer part is exact, the f32 order fixed (passes/dot/q8-math.ts).
 */

interface Q8Attrs {
  layout: DotLayout;
  outputDtype: DType;
}

function readAttrs(attrs: Attrs): Q8Attrs {
  const bits = attrs.int('bits');
  const ternary = attrs.int('ternary', 0);
  if (ternary !== 0 && ternary !== 1) throw attrs.error(`ternary must be 0 or 1, got ${ternary}`);
  if (ternary === 1 && bits !== 2) throw attrs.error(`ternary weights are 2-bit codes, got bits = ${bits}`);
  const groupSize = attrs.int('group_size');
  const K = attrs.int('K');
  const N = attrs.int('N');
  if (!(groupSize > 0) || !(K > 0) || !(N > 0)) throw attrs.error(`group_size, K and N must be positive, got ${groupSize}, ${K}, ${N}`);
  const outputDtype = attrs.string('output_dtype', 'f32');
  if (outputDtype !== 'f32' && outputDtype !== 'f16' && outputDtype !== 'bf16') throw attrs.error(`output_dtype must be 'f32', 'f16' or 'bf16', got '${outputDtype}'`);
  try {
    return { layout: dotLayout({ bits, ternary: ternary === 1, groupSize, K, N }), outputDtype };
  } catch (e) {
    if (e instanceof LlmccError) throw attrs.error(e.message);
    throw e;
  }
}

function expect(attrs: Attrs, what: string, t: TensorType, dtype: DType, shape: readonly Dim[] | undefined): void {
  if (t.dtype !== dtype) throw attrs.error(`${what} must be ${dtype}, got ${t.dtype}`);
  if (!shape || !t.shape) return;
  const ok = t.shape.length === shape.length && t.shape.every((d, i) => typeof d !== 'number' || typeof shape[i] !== 'number' || d === shape[i]);
  if (!ok) throw attrs.error(`${what} must have shape [${shape.join(',')}], got [${t.shape.join(',')}]`);
}

/** Checks every input; returns the leading (M) dims of q. */
function checkInputs(attrs: Attrs, types: (TensorType | undefined)[], p: Q8Attrs): Dim[] | undefined {
  const names = ['q', 'act_scales', 'act_sums', 'packed', 'scales', 'offsets'];
  names.forEach((name, i) => {
    if (!types[i]) throw attrs.error(`missing required input ${i} '${name}'`);
  });
  const [q, actScales, actSums, packed, scales, offsets] = types as TensorType[];
  const bias = types[6];
  const l = p.layout;
  expect(attrs, 'packed', packed, 'u8', [l.tiles, l.groups, l.groupBytes]);
  expect(attrs, 'scales', scales, 'f32', [l.tiles, l.groups, DOT_TILE_ROWS]);
  expect(attrs, 'offsets', offsets, 'i32', [l.tiles, l.groups, DOT_TILE_ROWS]);
  if (bias) expect(attrs, 'bias', bias, 'f32', [l.N]);
  const lead = q.shape?.slice(0, -1);
  if (q.shape && q.shape.length < 1) throw attrs.error('q must have rank ≥ 1');
  expect(attrs, 'q', q, 'i8', lead ? [...lead, l.groups * l.groupSize] : undefined);
  expect(attrs, 'act_scales', actScales, 'f32', lead ? [...lead, l.groups] : undefined);
  expect(attrs, 'act_sums', actSums, 'i32', lead ? [...lead, l.groups] : undefined);
  return lead;
}

export const QuantMatMulQ8: OpDef = {
  domain: 'llmcc',
  op: 'QuantMatMulQ8',
  infer(ctx: InferContext): OutputInfo[] {
    const p = readAttrs(ctx.attrs);
    const lead = checkInputs(ctx.attrs, ctx.inputs, p);
    return [{ type: { dtype: p.outputDtype, shape: lead ? [...lead, p.layout.N] : undefined } }];
  },
  evaluate(ctx: EvalContext): Tensor[] {
    const p = readAttrs(ctx.attrs);
    const lead = checkInputs(ctx.attrs, ctx.inputs.map((t) => t && { dtype: t.dtype, shape: [...t.shape] }), p) as number[];
    const [q, actScales, actSums, packed, scales, offsets, bias] = ctx.inputs as Tensor[];
    const M = lead.reduce((a, b) => a * b, 1);
    const y = dotMatMulQ8(
      { q: Int8Array.from(q.numbers()), scales: Float32Array.from(actScales.numbers()), sums: Int32Array.from(actSums.numbers()) },
      packed.numbers(), scales.numbers(), offsets.numbers(), bias?.numbers(), p.layout, M,
    );
    return [Tensor.fromNumbers(p.outputDtype, [...lead, p.layout.N], y)];
  },
};
