import type { DType } from '../../dtype.js';
import type { Dim, TensorType } from '../../graph.js';
import { Tensor } from '../../tensor.js';
import type { Attrs } from '../attrs.js';
import type { EvalContext, InferContext, OpDef, OutputInfo } from '../types.js';
import { atNode } from './LutPrecompute.js';
import { checkRowsPerTile } from '../../../passes/lut/bitplanes.js';
import { checkSparseLutLayout, sparseBlockBound, sparseLutMatMul, sparseTableLayout } from '../../../passes/sparsity/lut.js';
import type { NMPattern } from '../../../passes/sparsity/pattern.js';

/**
 * llmcc.SparseLutMatMul(tables, table_scales, planes, scales, offsets?, bias?) → Y
 * attrs bits (1–4), sparsity_n, sparsity_m, group_size, K, N, rows_per_tile (default 1),
 * output_dtype ('f32' | 'f16' | 'bf16', default 'f32').
 *   tables [..., K/m, S], table_scales [..., K/group_size]   (llmcc.SparseLutPrecompute)
 *   planes u8 [bits, N, K/m]: per plane, row and group the byte e | sign·S (choice and sign
 *   pattern of the row's N kept weights), scales/offsets f32 [N, K/group_size]
 *   Y = Σ_blk table_scales·(scales·I + offsets·J) + bias   (passes/sparsity/lut.ts)
 * Without `offsets` (all zero, e.g. mid-rise 2-bit) the J lookups are skipped. With i8
 * tables I and J are exact integers; Y is accumulated in f64 and rounded once.
 */

export interface SparseLutMatMulAttrs {
  bits: number;
  pattern: NMPattern;
  groupSize: number;
  K: number;
  N: number;
  rowsPerTile: number;
  outputDtype: DType;
  groups: number;
  blocks: number;
  slots: number;
}

export function sparseLutMatMulAttrs(attrs: Attrs): SparseLutMatMulAttrs {
  const bits = attrs.int('bits');
  if (![1, 2, 3, 4].includes(bits)) throw attrs.error(`SparseLutMatMul supports 1–4 bit-planes, got bits = ${bits}`);
  const outputDtype = attrs.string('output_dtype', 'f32');
  if (outputDtype !== 'f32' && outputDtype !== 'f16' && outputDtype !== 'bf16') throw attrs.error(`output_dtype must be 'f32', 'f16' or 'bf16', got '${outputDtype}'`);
  const pattern = { n: attrs.int('sparsity_n'), m: attrs.int('sparsity_m') };
  const K = attrs.int('K');
  const N = attrs.int('N');
  const groupSize = attrs.int('group_size');
  const rowsPerTile = attrs.int('rows_per_tile', 1);
  const slots = atNode(attrs, () => {
    checkSparseLutLayout(pattern, K, groupSize);
    checkRowsPerTile(N, rowsPerTile);
    return sparseTableLayout(pattern).slots;
  });
  if (sparseBlockBound(bits, pattern, groupSize) > 2 ** 31 - 1) throw attrs.error(`group_size = ${groupSize} could overflow the int32 block sum`);
  return { bits, pattern, groupSize, K, N, rowsPerTile, outputDtype, groups: K / pattern.m, blocks: K / groupSize, slots };
}

function expectType(attrs: Attrs, what: string, type: TensorType | undefined, dtypes: readonly DType[], shape?: readonly Dim[]): void {
  if (!type) return;
  if (!dtypes.includes(type.dtype)) throw attrs.error(`${what} must be ${dtypes.join(' or ')}, got ${type.dtype}`);
  if (!shape || !type.shape) return;
  const ok = type.shape.length === shape.length &&
    type.shape.every((d, i) => typeof d !== 'number' || typeof shape[i] !== 'number' || d === shape[i]);
  if (!ok) throw attrs.error(`${what} must have shape [${shape.join(',')}], got [${type.shape.join(',')}]`);
}

/** Checks the inputs; returns the tables' leading (M) dims when known. */
function checkInputs(attrs: Attrs, types: readonly (TensorType | undefined)[], p: SparseLutMatMulAttrs): Dim[] | undefined {
  const [tables, tableScales, planes, scales, offsets, bias] = types;
  if (!tables || !tableScales || !planes || !scales) throw attrs.error('inputs tables, table_scales, planes and scales are required');
  expectType(attrs, 'tables', tables, ['i8', 'f32']);
  expectType(attrs, 'planes', planes, ['u8'], [p.bits, p.N, p.groups]);
  expectType(attrs, 'scales', scales, ['f32'], [p.N, p.blocks]);
  expectType(attrs, 'offsets', offsets, ['f32'], [p.N, p.blocks]);
  expectType(attrs, 'bias', bias, ['f32'], [p.N]);
  if (!tables.shape) return undefined;
  if (tables.shape.length < 2) throw attrs.error(`tables must have rank ≥ 2 ([..., K/m, S]), got rank ${tables.shape.length}`);
  const lead = tables.shape.slice(0, -2);
  expectType(attrs, 'tables', tables, ['i8', 'f32'], [...lead, p.groups, p.slots]);
  expectType(attrs, 'table_scales', tableScales, ['f32'], [...lead, p.blocks]);
  return lead;
}

export const SparseLutMatMul: OpDef = {
  domain: 'llmcc',
  op: 'SparseLutMatMul',
  infer(ctx: InferContext): OutputInfo[] {
    const p = sparseLutMatMulAttrs(ctx.attrs);
    const lead = checkInputs(ctx.attrs, ctx.inputs, p);
    return [{ type: { dtype: p.outputDtype, shape: lead ? [...lead, p.N] : undefined } }];
  },
  evaluate(ctx: EvalContext): Tensor[] {
    const p = sparseLutMatMulAttrs(ctx.attrs);
    const lead = checkInputs(ctx.attrs, ctx.inputs.map((t) => t && { dtype: t.dtype, shape: [...t.shape] }), p) as number[];
    const [tables, tableScales, planes, scales, offsets, bias] = ctx.inputs as (Tensor | undefined)[];
    const indices = planes!.numbers();
    const layout = sparseTableLayout(p.pattern);
    for (let i = 0; i < indices.length; i++) {
      if ((indices[i] & (layout.slots - 1)) >= layout.entries || indices[i] >= 2 * layout.slots) {
        throw ctx.attrs.error(`plane byte ${indices[i]} at element ${i} is not a ${p.pattern.n}:${p.pattern.m} table index`);
      }
    }
    const M = lead.reduce((a, b) => a * b, 1);
    const y = sparseLutMatMul({
      tables: tables!.numbers(), tableScales: tableScales!.numbers(), planes: indices, scales: scales!.numbers(),
      offsets: offsets?.numbers(), bias: bias?.numbers(),
      M, N: p.N, K: p.K, bits: p.bits, pattern: p.pattern, groupSize: p.groupSize, rowsPerTile: p.rowsPerTile,
    });
    return [Tensor.fromNumbers(p.outputDtype, [...lead, p.N], y)];
  },
};
