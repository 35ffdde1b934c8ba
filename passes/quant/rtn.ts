import { LlmccError } from '../../ir/errors.js';
import { f16BitsToNumber, numberToF16Bits, roundToF16 } from '../../ir/float.js';
import type { QuantInfo, WeightBits } from '../../ir/quant.js';
import { dequantizeCodes } from '../../ir/ops/llmcc/QuantMatMul.js';

/**
 * Round-to-nearest (RTN) group-wise weight quantization.
 *
 * The weight is row-major [N, K] (rows = output channels); each row is split into groups of
 * `groupSize` consecutive k, one scale (and zero point) per group. Codes are unsigned,
 * one per weight, and dequantize as w ≈ (code − z) · s (see llmcc.QuantMatMul).
 *
 * Symmetric, bits ≥ 3: codes are offset-binary (z = 2^(b−1), no zero-point tensor), levels
 * −2^(b−1) … 2^(b−1) − 1 (a zero level, "mid-tread"). The scale is s = max|w| / (2^(b−1) − 0.5):
 * max|w| then clips to the outermost level ±(2^(b−1) − 1)·s by exactly s/2, the same worst case
 * as rounding inside the grid, so the step is finer than the usual max / (2^(b−1) − 1) while
 * every weight stays within s/2 of its level. (The extra negative code is reached only on a tie.)
 *
 * Symmetric, 2 bits: mid-tread would leave only 3 usable levels (ternary in disguise), so the
 * levels are the 4 "mid-rise" values ±0.5·s, ±1.5·s: codes 0..3 with explicit zero points 1.5
 * and s = max|w| / 2 (max|w| is half a step outside the outer level). The error is still
 * ≤ s/2, and the zero point makes the LUT offset term (2^b − 1 − 2z) vanish.
 *
 * Symmetric, 1 bit: the levels are ±α with α = mean|w| over the group (the least-squares α
 * for sign quantization, as in BinaryConnect/XNOR-Net). Stored as codes {0, 1} with explicit
 * zero points 0.5 and scale 2α, so (code − 0.5) · 2α = ±α. This is the one scheme without
 * the s/2 error bound: a weight larger than 2α is clipped.
 *
 * Asymmetric, 1 bit: the two levels are the means of the weights below and at-or-above the
 * group mean (one Lloyd step): s = hi − lo, real-valued z = −lo / s, codes {0, 1}. Min/max
 * would put the two levels at the extremes, which is worse than no weights at all.
 *
 * Asymmetric, bits ≥ 2: min/max over the group widened to include 0, s = (max − min) / (2^b − 1) and an
 * integer zero point z = round(−min / s) ∈ [0, 2^b − 1] (stored as f32). Including 0 keeps z
 * in range, and an integer z keeps (code − z) exact, so the format converts losslessly to
 * MatMulNBits / DequantizeLinear.
 *
 * Scales are rounded *up* to the storage dtype (f32 or f16), which keeps the s/2 bound exact.
 */

export type ScaleDtype = 'f32' | 'f16';

export interface RtnOptions {
  bits: WeightBits;
  groupSize: number;
  symmetric: boolean;
  scaleDtype?: ScaleDtype;
}

/** A quantized [N, K] weight in the codes-nk layout llmcc.QuantMatMul takes. */
export interface QuantizedWeight {
  info: QuantInfo;
  n: number;
  k: number;
  /** u8 codes, row-major [N, K]. */
  codes: Uint8Array;
  /** Per group, row-major [N, K / groupSize]; values exactly representable in info.scaleDtype. */
  scales: Float32Array;
  /** Explicit zero points [N, K / groupSize], or undefined for the default (2^(b−1); ternary 1). */
  zeroPoints?: Float32Array;
}

const f32Scratch = new Float32Array(1);
const u32Scratch = new Uint32Array(f32Scratch.buffer);

/** The smallest value of the storage dtype that is >= x (x >= 0). */
export function roundScaleUp(x: number, dtype: ScaleDtype): number {
  if (dtype === 'f16') {
    const rounded = roundToF16(x);
    return rounded >= x ? rounded : f16BitsToNumber(numberToF16Bits(rounded) + 1);
  }
  f32Scratch[0] = x;
  if (f32Scratch[0] >= x) return f32Scratch[0];
  u32Scratch[0] += 1;
  return f32Scratch[0];
}

/** The nearest value of the storage dtype. */
export function roundScale(x: number, dtype: ScaleDtype): number {
  return dtype === 'f16' ? roundToF16(x) : Math.fround(x);
}

export function checkGrouping(k: number, groupSize: number): void {
  if (!Number.isInteger(groupSize) || groupSize <= 0) throw new LlmccError(`group size must be a positive integer, got ${groupSize}`);
  if (k % groupSize !== 0) throw new LlmccError(`K=${k} is not a multiple of the group size ${groupSize}`);
}

function clamp(x: number, lo: number, hi: number): number {
  return x < lo ? lo : x > hi ? hi : x;
}

export function quantizeRtn(w: ArrayLike<number>, n: number, k: number, options: RtnOptions): QuantizedWeight {
  const { bits, groupSize, symmetric } = options;
  const scaleDtype = options.scaleDtype ?? 'f32';
  if (![1, 2, 3, 4, 8].includes(bits)) throw new LlmccError(`bits must be 1, 2, 3, 4 or 8, got ${bits}`);
  checkGrouping(k, groupSize);
  if (w.length !== n * k) throw new LlmccError(`weight has ${w.length} elements, expected ${n}x${k}`);
  const groupsPerRow = k / groupSize;
  const codes = new Uint8Array(n * k);
  const scales = new Float32Array(n * groupsPerRow);
  const oneBitSymmetric = symmetric && bits === 1;
  const midRise = symmetric && bits === 2;
  const zeroPoints = !symmetric || bits <= 2 ? new Float32Array(n * groupsPerRow) : undefined;
  const maxCode = 2 ** bits - 1;
  const half = 2 ** (bits - 1);

  for (let g = 0; g < n * groupsPerRow; g++) {
    const start = Math.floor(g / groupsPerRow) * k + (g % groupsPerRow) * groupSize;
    const end = start + groupSize;
    if (oneBitSymmetric) {
      let sumAbs = 0;
      for (let i = start; i < end; i++) sumAbs += Math.abs(w[i]);
      scales[g] = roundScale((2 * sumAbs) / groupSize, scaleDtype);
      zeroPoints![g] = 0.5;
      for (let i = start; i < end; i++) codes[i] = w[i] >= 0 ? 1 : 0;
    } else if (!symmetric && bits === 1) {
      let mean = 0;
      for (let i = start; i < end; i++) mean += w[i];
      mean /= groupSize;
      let [sumLo, countLo, sumHi, countHi] = [0, 0, 0, 0];
      for (let i = start; i < end; i++) {
        if (w[i] >= mean) { sumHi += w[i]; countHi++; } else { sumLo += w[i]; countLo++; }
      }
      const hiLevel = sumHi / countHi;
      const loLevel = countLo ? sumLo / countLo : hiLevel;
      // A constant group (lo = hi) keeps its value through code 0: s = |value|, z = −sign(value).
      const constantGroup = countLo === 0;
      const s = roundScale(constantGroup ? Math.abs(hiLevel) : hiLevel - loLevel, scaleDtype);
      scales[g] = s;
      zeroPoints![g] = s === 0 ? 0 : Math.fround(-loLevel / s);
      for (let i = start; i < end; i++) codes[i] = !constantGroup && w[i] >= mean ? 1 : 0;
    } else if (midRise) {
      let maxAbs = 0;
      for (let i = start; i < end; i++) maxAbs = Math.max(maxAbs, Math.abs(w[i]));
      const s = roundScaleUp(maxAbs / 2, scaleDtype);
      scales[g] = s;
      zeroPoints![g] = 1.5;
      // floor(w/s + 2) = round(w/s + 1.5): the nearest of the levels (code − 1.5)·s.
      for (let i = start; i < end; i++) codes[i] = s === 0 ? 2 : clamp(Math.floor(w[i] / s + 2), 0, 3);
    } else if (symmetric) {
      let maxAbs = 0;
      for (let i = start; i < end; i++) maxAbs = Math.max(maxAbs, Math.abs(w[i]));
      const s = roundScaleUp(maxAbs / (half - 0.5), scaleDtype);
      scales[g] = s;
      for (let i = start; i < end; i++) {
        const q = s === 0 ? 0 : clamp(Math.round(w[i] / s), -half, half - 1);
        codes[i] = q + half;
      }
    } else {
      let lo = 0;
      let hi = 0;
      for (let i = start; i < end; i++) {
        lo = Math.min(lo, w[i]);
        hi = Math.max(hi, w[i]);
      }
      const s = roundScaleUp((hi - lo) / maxCode, scaleDtype);
      const z = s === 0 ? 0 : clamp(Math.round(-lo / s), 0, maxCode);
      scales[g] = s;
      zeroPoints![g] = z;
      for (let i = start; i < end; i++) codes[i] = s === 0 ? z : clamp(Math.round(w[i] / s) + z, 0, maxCode);
    }
  }
  return {
    info: { bits, ternary: false, groupSize, symmetric, scaleDtype, layout: { kind: 'codes-nk' } },
    n, k, codes, scales, zeroPoints,
  };
}

/** The weight a QuantizedWeight stands for, [N, K]: exactly what llmcc.QuantMatMul multiplies by. */
export function dequantize(q: QuantizedWeight): Float32Array {
  return dequantizeCodes(q.codes, q.scales, q.zeroPoints, { ...q.info, k: q.k, n: q.n });
}
