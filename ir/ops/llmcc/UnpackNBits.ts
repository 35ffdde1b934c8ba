import type { DType } from '../../dtype.js';
import type { Dim, TensorType } from '../../graph.js';
import type { QuantInfo } from '../../quant.js';
import { Tensor } from '../../tensor.js';
import type { Attrs } from '../attrs.js';
import type { OpDef } from '../types.js';
import { checkNBitsParams, unpackNBitsCodes, unpackNBitsZeroPoints, type NBitsLayout, type NBitsParams } from '../../../passes/quant/nbits.js';
import { atNode } from './LutPrecompute.js';

/**
 * llmcc.UnpackNBits(B, scales, zero_points?) → (codes, scales_out, zero_points_out)
 * attrs K, N, bits (2–8), block_size: com.microsoft.MatMulNBits' weight inputs, unpacked at
 * run time into what llmcc.QuantMatMul takes (the import-prequantized pass inserts it when the
 * weights are graph values rather than initializers):
 *   B           u8 [N, blocks, blob] (any shape with that many bytes), codes LSB-first
 *   scales      f32 | f16 | bf16, N·blocks elements
 *   zero_points u8 packed (N·ceil(blocks·bits/8) bytes) or float (N·blocks), optional
 *   codes           u8 [N, K], one code per weight; 5–7-bit codes are carried as 8-bit
 *   scales_out      [N, blocks], f16 stays f16, f32/bf16 → f32 (bf16 widens exactly)
 *   zero_points_out f32 [N, blocks], always explicit (2^(bits−1) when absent)
 * Unpacking rules: passes/quant/nbits.ts (shared with the compile-time import).
 */

function readParams(attrs: Attrs): NBitsParams & NBitsLayout {
  const p = { k: attrs.int('K'), n: attrs.int('N'), bits: attrs.int('bits', 4), blockSize: attrs.int('block_size') };
  return { ...p, ...atNode(attrs, () => checkNBitsParams(p)) };
}

function scaleOutDtype(attrs: Attrs, dtype: DType): 'f32' | 'f16' {
  if (dtype === 'f16') return 'f16';
  if (dtype === 'f32' || dtype === 'bf16') return 'f32';
  throw attrs.error(`scales must be f32, f16 or bf16, got ${dtype}`);
}

function elementCount(shape: readonly Dim[] | undefined): number | undefined {
  if (!shape) return undefined;
  let count = 1;
  for (const d of shape) {
    if (typeof d !== 'number') return undefined;
    count *= d;
  }
  return count;
}

function checkCount(attrs: Attrs, what: string, type: TensorType, expected: number): void {
  const count = elementCount(type.shape);
  if (count !== undefined && count !== expected) throw attrs.error(`${what} must have ${expected} elements, got ${count} [${type.shape!.join(',')}]`);
}

function checkInputs(attrs: Attrs, p: NBitsParams & NBitsLayout, inputs: readonly (TensorType | undefined)[]): 'f32' | 'f16' {
  const [b, scales, zeroPoints] = inputs;
  if (!b || !scales) throw attrs.error('inputs B and scales are required');
  if (b.dtype !== 'u8') throw attrs.error(`B must be u8, got ${b.dtype}`);
  checkCount(attrs, 'B', b, p.n * p.blocks * p.blobSize);
  const scaleDtype = scaleOutDtype(attrs, scales.dtype);
  checkCount(attrs, 'scales', scales, p.n * p.blocks);
  if (zeroPoints) {
    if (zeroPoints.dtype === 'u8') checkCount(attrs, 'packed zero_points', zeroPoints, p.n * p.zeroPointRowBytes);
    else if (['f32', 'f16', 'bf16'].includes(zeroPoints.dtype)) checkCount(attrs, 'zero_points', zeroPoints, p.n * p.blocks);
    else throw attrs.error(`zero_points must be u8 (packed) or float, got ${zeroPoints.dtype}`);
  }
  return scaleDtype;
}

export const UnpackNBits: OpDef = {
  domain: 'llmcc',
  op: 'UnpackNBits',
  infer(ctx) {
    const p = readParams(ctx.attrs);
    const scaleDtype = checkInputs(ctx.attrs, p, ctx.inputs);
    const quant: QuantInfo = {
      bits: p.storedBits, ternary: false, groupSize: p.blockSize,
      symmetric: !ctx.inputs[2] && p.storedBits === p.bits, scaleDtype, layout: { kind: 'codes-nk' },
    };
    return [
      { type: { dtype: 'u8', shape: [p.n, p.k], quant } },
      { type: { dtype: scaleDtype, shape: [p.n, p.blocks] } },
      { type: { dtype: 'f32', shape: [p.n, p.blocks] } },
    ];
  },
  evaluate(ctx) {
    const p = readParams(ctx.attrs);
    const [b, scales, zeroPoints] = ctx.inputs;
    const scaleDtype = checkInputs(ctx.attrs, p, ctx.inputs.map((t) => t && { dtype: t.dtype, shape: [...t.shape] }));
    if (!b || !scales) throw ctx.attrs.error('inputs B and scales are required');
    const codes = atNode(ctx.attrs, () => unpackNBitsCodes(b.numbers(), p));
    const zero = atNode(ctx.attrs, () => unpackNBitsZeroPoints(zeroPoints?.numbers(), zeroPoints?.dtype === 'u8', p))
      ?? new Float32Array(p.n * p.blocks).fill(2 ** (p.bits - 1));
    return [
      new Tensor('u8', [p.n, p.k], codes),
      Tensor.fromNumbers(scaleDtype, [p.n, p.blocks], scales.numbers()),
      new Tensor('f32', [p.n, p.blocks], zero),
    ];
  },
};
