import type { DType } from '../../dtype.js';
import type { Dim, TensorType } from '../../graph.js';
import type { IndicesPerByte, QuantInfo, WeightBits } from '../../quant.js';
import { Tensor } from '../../tensor.js';
import type { Attrs } from '../attrs.js';
import type { OpDef } from '../types.js';
import { checkGroupLayout } from '../../../passes/lut/tables.js';
import { checkIndicesPerByte, checkRowsPerTile, relayoutWeights } from '../../../passes/lut/bitplanes.js';
import { atNode } from './LutPrecompute.js';

/**
 * llmcc.LutPackWeights(codes, scales, zero_points?) → (planes, half_scales, offsets)
 * attrs bits (1–4), ternary (0/1), g, group_size, K, N, rows_per_tile (default 1),
 * tiled_scales (0/1, default 0: half_scales and offsets tiled like the planes, bitplanes.ts),
 * indices_per_byte (1/2, default 1: two g-bit indices of groups 2j, 2j+1 per byte, bitplanes.ts).
 * The LUT weight re-layout of passes/lut/bitplanes.ts (symmetrized bit-planes, s/2 and the
 * offset term), done at run time: lut-lower inserts it when a QuantMatMul's weights are not
 * constants (e.g. MatMulNBits fed its weights as graph inputs); for constant weights the pass
 * does the same re-layout offline, with the same function, so both give identical planes.
 *   codes       u8 [N, K] (codes-nk), scales f32|f16 [N, K/group_size], zero_points f32 [N, K/group_size]
 *   planes      u8 [bits, N, K/(g·indices_per_byte)] (layout bitplanes{g, rows_per_tile, indices_per_byte})
 *   half_scales f32 [N, K/group_size] = s/2;  offsets f32 [N, K/group_size] = (s/2)·(2^b − 1 − 2z)
 */

interface PackAttrs {
  bits: number;
  ternary: boolean;
  g: number;
  groupSize: number;
  K: number;
  N: number;
  rowsPerTile: number;
  tiledScales: boolean;
  indicesPerByte: IndicesPerByte;
}

function readAttrs(attrs: Attrs): PackAttrs {
  const bits = attrs.int('bits');
  if (![1, 2, 3, 4].includes(bits)) throw attrs.error(`LutPackWeights supports 1–4 bit-planes, got bits = ${bits}`);
  const ternaryFlag = attrs.int('ternary', 0);
  if (ternaryFlag !== 0 && ternaryFlag !== 1) throw attrs.error(`ternary must be 0 or 1, got ${ternaryFlag}`);
  if (ternaryFlag === 1 && bits !== 2) throw attrs.error(`ternary weights are stored as 2-bit codes, got bits=${bits}`);
  const p: PackAttrs = {
    bits, ternary: ternaryFlag === 1, g: attrs.int('g', 4), groupSize: attrs.int('group_size'),
    K: attrs.int('K'), N: attrs.int('N'), rowsPerTile: attrs.int('rows_per_tile', 1),
    tiledScales: readTiledScales(attrs),
    indicesPerByte: readIndicesPerByte(attrs),
  };
  atNode(attrs, () => {
    checkGroupLayout(p.K, p.g, p.groupSize);
    checkRowsPerTile(p.N, p.rowsPerTile);
    checkIndicesPerByte(p.g, p.K / p.g, p.indicesPerByte);
  });
  return p;
}

/** The indices_per_byte attribute (1 or 2, default 1) of LutPackWeights and LutMatMul. */
export function readIndicesPerByte(attrs: Attrs): IndicesPerByte {
  const perByte = attrs.int('indices_per_byte', 1);
  if (perByte !== 1 && perByte !== 2) throw attrs.error(`indices_per_byte must be 1 or 2, got ${perByte}`);
  return perByte;
}

/** The tiled_scales attribute (0 or 1) of LutPackWeights and LutMatMul. */
export function readTiledScales(attrs: Attrs): boolean {
  const flag = attrs.int('tiled_scales', 0);
  if (flag !== 0 && flag !== 1) throw attrs.error(`tiled_scales must be 0 or 1, got ${flag}`);
  return flag === 1;
}

function expect(attrs: Attrs, what: string, type: TensorType, dtypes: readonly DType[], shape: readonly number[]): void {
  if (!dtypes.includes(type.dtype)) throw attrs.error(`${what} must be ${dtypes.join(' or ')}, got ${type.dtype}`);
  if (!type.shape) return;
  const ok = type.shape.length === shape.length && type.shape.every((d: Dim, i) => typeof d !== 'number' || d === shape[i]);
  if (!ok) throw attrs.error(`${what} must have shape [${shape.join(',')}], got [${type.shape.join(',')}]`);
}

function checkInputs(attrs: Attrs, p: PackAttrs, inputs: readonly (TensorType | undefined)[]): TensorType {
  const [codes, scales, zeroPoints] = inputs;
  if (!codes || !scales) throw attrs.error('inputs codes and scales are required');
  const blocks = p.K / p.groupSize;
  expect(attrs, 'codes', codes, ['u8'], [p.N, p.K]);
  expect(attrs, 'scales', scales, ['f32', 'f16'], [p.N, blocks]);
  if (zeroPoints) expect(attrs, 'zero_points', zeroPoints, ['f32'], [p.N, blocks]);
  return codes;
}

export const LutPackWeights: OpDef = {
  domain: 'llmcc',
  op: 'LutPackWeights',
  infer(ctx) {
    const p = readAttrs(ctx.attrs);
    const codes = checkInputs(ctx.attrs, p, ctx.inputs);
    const blocks = p.K / p.groupSize;
    const quant: QuantInfo = {
      bits: p.bits as WeightBits, ternary: p.ternary, groupSize: p.groupSize,
      symmetric: codes.quant?.symmetric ?? !ctx.inputs[2], scaleDtype: 'f32',
      layout: { kind: 'bitplanes', g: p.g, rowsPerTile: p.rowsPerTile, ...(p.indicesPerByte === 2 ? { indicesPerByte: 2 } : {}) },
    };
    return [
      { type: { dtype: 'u8', shape: [p.bits, p.N, p.K / p.g / p.indicesPerByte], quant } },
      { type: { dtype: 'f32', shape: [p.N, blocks] } },
      { type: { dtype: 'f32', shape: [p.N, blocks] } },
    ];
  },
  evaluate(ctx) {
    const p = readAttrs(ctx.attrs);
    const [codes, scales, zeroPoints] = ctx.inputs;
    checkInputs(ctx.attrs, p, ctx.inputs.map((t) => t && { dtype: t.dtype, shape: [...t.shape] }));
    if (!codes || !scales) throw ctx.attrs.error('inputs codes and scales are required');
    const relaid = atNode(ctx.attrs, () => relayoutWeights({
      codes: codes.numbers(), scales: scales.numbers(), zeroPoints: zeroPoints?.numbers(),
      bits: p.bits, ternary: p.ternary, N: p.N, K: p.K, groupSize: p.groupSize,
    }, p.g, p.rowsPerTile, undefined, p.tiledScales, p.indicesPerByte));
    const blocks = p.K / p.groupSize;
    return [
      new Tensor('u8', [p.bits, p.N, p.K / p.g / p.indicesPerByte], relaid.planes),
      new Tensor('f32', [p.N, blocks], relaid.scales),
      new Tensor('f32', [p.N, blocks], relaid.offsets),
    ];
  },
};
