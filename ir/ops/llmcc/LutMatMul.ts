import type { DType } from '../../dtype.js';
import type { Dim, TensorType } from '../../graph.js';
import { Tensor } from '../../tensor.js';
import type { Attrs } from '../attrs.js';
import type { EvalContext, InferContext, OpDef, OutputInfo } from '../types.js';
import { checkAccumulationFits, checkGroupLayout, storedEntries } from '../../../passes/lut/tables.js';
import { checkIndicesPerByte, checkRowsPerTile } from '../../../passes/lut/bitplanes.js';
import type { IndicesPerByte } from '../../quant.js';
import { lutMatMul } from '../../../passes/lut/matmul.js';
import { atNode } from './LutPrecompute.js';
import { readIndicesPerByte, readTiledScales } from './LutPackWeights.js';

/**
 * llmcc.LutMatMul(tables, table_scales, act_sums, planes, scales, offsets, bias?) → Y
 * attrs bits, g, group_size, K, N, rows_per_tile (default 1), output_dtype ('f32' | 'f16' | 'bf16',
 * default 'f32': the dtype of the activations the tables came from), tiled_scales (0/1, default 0:
 * scales and offsets stored tile by tile like the planes, passes/lut/bitplanes.ts scaleOffset),
 * indices_per_byte (1/2, default 1: groups 2j and 2j+1 in the low and high nibble of one byte).
 *   tables [..., K/g, 2^(g−1)] i8|f32, table_scales/act_sums [..., K/group_size] f32 (LutPrecompute)
 *   planes u8 [bits, N, K/(g·indices_per_byte)] (symmetrized bit-plane indices), scales/offsets f32 [N, K/group_size]
 *   Y [..., N] = Σ_blk (scales·table_scales·I + offsets·act_sums) + bias   (passes/lut/matmul.ts)
 * With i8 tables I is an exact integer; Y is accumulated in f64 and rounded once.
 */

interface MatMulAttrs {
  bits: number;
  g: number;
  groupSize: number;
  K: number;
  N: number;
  rowsPerTile: number;
  tiledScales: boolean;
  indicesPerByte: IndicesPerByte;
  outputDtype: DType;
}

function readAttrs(attrs: Attrs): MatMulAttrs {
  const bits = attrs.int('bits');
  if (![1, 2, 3, 4].includes(bits)) throw attrs.error(`LutMatMul supports 1–4 bit-planes, got bits = ${bits}`);
  const outputDtype = attrs.string('output_dtype', 'f32');
  if (outputDtype !== 'f32' && outputDtype !== 'f16' && outputDtype !== 'bf16') throw attrs.error(`output_dtype must be 'f32', 'f16' or 'bf16', got '${outputDtype}'`);
  const p: MatMulAttrs = {
    bits,
    g: attrs.int('g', 4),
    groupSize: attrs.int('group_size'),
    K: attrs.int('K'),
    N: attrs.int('N'),
    rowsPerTile: attrs.int('rows_per_tile', 1),
    tiledScales: readTiledScales(attrs),
    indicesPerByte: readIndicesPerByte(attrs),
    outputDtype,
  };
  atNode(attrs, () => {
    checkGroupLayout(p.K, p.g, p.groupSize);
    checkRowsPerTile(p.N, p.rowsPerTile);
    checkIndicesPerByte(p.g, p.K / p.g, p.indicesPerByte);
  });
  return p;
}

function expectShape(attrs: Attrs, what: string, shape: readonly Dim[] | undefined, expected: readonly Dim[]): void {
  if (!shape) return;
  const ok = shape.length === expected.length &&
    shape.every((d, i) => typeof d !== 'number' || typeof expected[i] !== 'number' || d === expected[i]);
  if (!ok) throw attrs.error(`${what} must have shape [${expected.join(',')}], got [${shape.join(',')}]`);
}

function expectDtype(attrs: Attrs, what: string, dtype: DType, allowed: readonly DType[]): void {
  if (!allowed.includes(dtype)) throw attrs.error(`${what} must be ${allowed.join(' or ')}, got ${dtype}`);
}

/** Checks every input's dtype and shape; returns the leading (M) dims of the tables. */
function checkInputs(attrs: Attrs, types: (TensorType | undefined)[], p: MatMulAttrs): Dim[] | undefined {
  const names = ['tables', 'table_scales', 'act_sums', 'planes', 'scales', 'offsets'];
  names.forEach((name, i) => {
    if (!types[i]) throw attrs.error(`missing required input ${i} '${name}'`);
  });
  const [tables, tableScales, actSums, planes, scales, offsets] = types as TensorType[];
  const bias = types[6];
  expectDtype(attrs, 'tables', tables.dtype, ['i8', 'f32']);
  expectDtype(attrs, 'table_scales', tableScales.dtype, ['f32']);
  expectDtype(attrs, 'act_sums', actSums.dtype, ['f32']);
  expectDtype(attrs, 'planes', planes.dtype, ['u8']);
  expectDtype(attrs, 'scales', scales.dtype, ['f32']);
  expectDtype(attrs, 'offsets', offsets.dtype, ['f32']);
  if (bias) expectDtype(attrs, 'bias', bias.dtype, ['f32']);
  const groups = p.K / p.g;
  const blocks = p.K / p.groupSize;
  expectShape(attrs, 'planes', planes.shape, [p.bits, p.N, groups / p.indicesPerByte]);
  expectShape(attrs, 'scales', scales.shape, [p.N, blocks]);
  expectShape(attrs, 'offsets', offsets.shape, [p.N, blocks]);
  if (bias) expectShape(attrs, 'bias', bias.shape, [p.N]);
  const layout = planes.quant?.layout;
  const show = (g: number, rows: number, perByte: number) => `bitplanes(g=${g},rows=${rows}${perByte === 2 ? ',per_byte=2' : ''})`;
  if (layout && (layout.kind !== 'bitplanes' || layout.g !== p.g || layout.rowsPerTile !== p.rowsPerTile || (layout.indicesPerByte ?? 1) !== p.indicesPerByte)) {
    throw attrs.error(`planes are laid out as ${layout.kind === 'bitplanes' ? show(layout.g, layout.rowsPerTile, layout.indicesPerByte ?? 1) : layout.kind}, ` +
      `but the node expects ${show(p.g, p.rowsPerTile, p.indicesPerByte)}`);
  }
  if (!tables.shape) return undefined;
  if (tables.shape.length < 2) throw attrs.error(`tables must have rank ≥ 2 ([..., K/g, 2^(g-1)]), got rank ${tables.shape.length}`);
  const lead = tables.shape.slice(0, -2);
  expectShape(attrs, 'tables', tables.shape, [...lead, groups, storedEntries(p.g)]);
  expectShape(attrs, 'table_scales', tableScales.shape, [...lead, blocks]);
  expectShape(attrs, 'act_sums', actSums.shape, [...lead, blocks]);
  return lead;
}

export const LutMatMul: OpDef = {
  domain: 'llmcc',
  op: 'LutMatMul',
  infer(ctx: InferContext): OutputInfo[] {
    const p = readAttrs(ctx.attrs);
    const lead = checkInputs(ctx.attrs, ctx.inputs, p);
    return [{ type: { dtype: p.outputDtype, shape: lead ? [...lead, p.N] : undefined } }];
  },
  evaluate(ctx: EvalContext): Tensor[] {
    const p = readAttrs(ctx.attrs);
    const lead = checkInputs(ctx.attrs, ctx.inputs.map((t) => t && { dtype: t.dtype, shape: [...t.shape] }), p) as number[];
    const [tables, tableScales, actSums, planes, scales, offsets, bias] = ctx.inputs as Tensor[];
    if (tables.dtype === 'i8') atNode(ctx.attrs, () => checkAccumulationFits(p.bits, p.g, p.groupSize));
    const limit = 1 << p.g;
    const indices = planes.numbers();
    for (let i = 0; i < indices.length; i++) {
      // Two indices per byte: each nibble must fit g bits.
      const bad = p.indicesPerByte === 1 ? indices[i] >= limit : (indices[i] & 0x0f) >= limit || indices[i] >> 4 >= limit;
      if (!bad) continue;
      const what = p.indicesPerByte === 1 ? `plane index ${indices[i]}` : `plane byte ${indices[i]} (two indices)`;
      throw ctx.attrs.error(`${what} at element ${i} does not fit g = ${p.g} bits`);
    }
    const M = lead.reduce((a, b) => a * b, 1);
    const y = lutMatMul({
      tables: tables.numbers(),
      tableScales: tableScales.numbers(),
      actSums: actSums.numbers(),
      planes: indices,
      scales: scales.numbers(),
      offsets: offsets.numbers(),
      bias: bias?.numbers(),
      M, N: p.N, K: p.K, bits: p.bits, g: p.g, groupSize: p.groupSize, rowsPerTile: p.rowsPerTile,
      tiledScales: p.tiledScales, indicesPerByte: p.indicesPerByte,
    });
    return [Tensor.fromNumbers(p.outputDtype, [...lead, p.N], y)];
  },
};
