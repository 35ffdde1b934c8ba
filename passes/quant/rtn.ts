import { LlmccError } from '../../ir/errors.js';
import { f16BitsToNumber, numberToF16Bits, roundToF16 } from '../../ir/float.js';
import type { QuantInfo, WeightBits } from '../../ir/quant.js';
import { dequantizeCodes } from '../../ir/ops/llmcc/QuantMatMul.js';

/**
 * Round-to-nearest (RTN) group-wise weight quantization with an MSE-optimal grid per group.
 *
 * The weight is row-major [N, K] (rows = output channels); each row is split into groups of
 * `groupSize` consecutive k, one scale (and zero point) per group. Codes are unsigned,
 * one per weight, and dequantize as w ≈ (code − z) · s (see llmcc.QuantMatMul). Every code
 * is the nearest level of its group's grid {(c − z)·s : c = 0 … 2^b − 1} (round to nearest,
 * clamped at the ends): only the grid (s, and z when asymmetric) is searched.
 *
 * Grid search (llama.cpp make_qx_quants / make_qkx2_quants style, no calibration data): a
 * min/max grid wastes levels on the tails of bell-shaped weights, so for each group a range
 * of candidate scales is tried (from the "no clipping" scale down to about half of it), the
 * codes rounded for each, and the candidate with the least squared error kept; then the
 * scale is refit by least squares for those codes (s = Σ w·(q − z) / Σ (q − z)²) and the
 * codes re-rounded, which can only lower the error further. Weights beyond the outermost
 * level are therefore clipped to it when that lowers the group's total error, so the
 * per-element error bound is s/2 only inside the grid's range.
 *
 * Symmetric, bits ≥ 3: offset-binary codes (z = 2^(b−1), no zero-point tensor), levels
 * −2^(b−1) … 2^(b−1) − 1 (a zero level, "mid-tread"); the extra negative level is used
 * when the search finds it helps.
 *
 * Symmetric, 2 bits: mid-tread would leave only 3 usable levels (ternary in disguise), so the
 * levels are the 4 "mid-rise" values ±0.5·s, ±1.5·s: codes 0..3 with explicit zero points 1.5
 * (which makes the LUT offset term (2^b − 1 − 2z) vanish).
 *
 * Symmetric, 1 bit: the levels are ±α with α = mean|w| over the group (the least-squares α
 * for sign quantization, as in BinaryConnect/XNOR-Net). Stored as codes {0, 1} with explicit
 * zero points 0.5 and scale 2α, so (code − 0.5) · 2α = ±α.
 *
 * Asymmetric, 1 bit: the two levels are the means of the weights below and at-or-above the
 * group mean (one Lloyd step): s = hi − lo, real-valued z = −lo / s, codes {0, 1}. Min/max
 * would put the two levels at the extremes, which is worse than no weights at all.
 *
 * Asymmetric, bits ≥ 2: scale and an integer zero point z ∈ [0, 2^b − 1] (stored as f32)
 * searched jointly (for each candidate scale: z aligning the grid's bottom, top or centre with
 * the group's, ±1). The grid always contains 0 (code z), and an integer z keeps (code − z)
 * exact, so the format converts losslessly to MatMulNBits / DequantizeLinear.
 *
 * Scales are rounded to the storage dtype (f32 or f16) before the codes are chosen, so the
 * codes are nearest for the scale actually stored.
 */

export type ScaleDtype = 'f32' | 'f16';

export interface RtnOptions {
  bits: WeightBits;
  groupSize: number;
  symmetric: boolean;
  scaleDtype?: ScaleDtype;
  /**
   * Optional per-k importance (length K, ≥ 0): the grid search minimizes Σ importance[k]·err²
   * instead of the plain squared error (codes stay round-to-nearest).
   */
  importance?: ArrayLike<number>;
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

/** Candidate scales per group, as fractions of the no-clipping scale. */
const SCALE_SEARCH_STEPS = 24;
const SCALE_SEARCH_MIN = 0.5;
/** Least-squares refits after the search (each re-rounds the codes). */
const REFIT_ROUNDS = 2;

/** One group's grid: codes 0..maxCode, level (c − z)·s. */
interface GroupFit {
  scale: number;
  zero: number;
  error: number;
}

function nearestCode(x: number, s: number, z: number, maxCode: number): number {
  return s === 0 ? clamp(Math.round(z), 0, maxCode) : clamp(Math.round(x / s + z), 0, maxCode);
}

/** Squared error of rounding w[start, end) to the grid (s, z). */
function gridError(w: ArrayLike<number>, start: number, end: number, s: number, z: number, maxCode: number, weight?: Weighting): number {
  let error = 0;
  for (let i = start; i < end; i++) {
    const d = w[i] - (nearestCode(w[i], s, z, maxCode) - z) * s;
    error += weight ? weight.of(i) * d * d : d * d;
  }
  return error;
}

/** Per-element weights of the squared error (the importance of each weight's column k). */
interface Weighting {
  of(index: number): number;
}

/** The least-squares scale for the codes rounded at (s, z), z fixed; s when degenerate. */
function refitScale(w: ArrayLike<number>, start: number, end: number, s: number, z: number, maxCode: number, weight?: Weighting): number {
  let num = 0;
  let den = 0;
  for (let i = start; i < end; i++) {
    const q = nearestCode(w[i], s, z, maxCode) - z;
    const c = weight ? weight.of(i) : 1;
    num += c * w[i] * q;
    den += c * q * q;
  }
  return den > 0 && num > 0 ? num / den : s;
}

/**
 * Searches the group's scale (and integer zero point when `zeroCandidates` gives several)
 * for the least squared error; `fullScale` is the scale at which nothing clips.
 */
function searchGrid(
  w: ArrayLike<number>, start: number, end: number, fullScale: number, maxCode: number,
  zeroCandidates: (s: number) => number[], scaleDtype: ScaleDtype, weight?: Weighting,
): GroupFit {
  let best: GroupFit = { scale: 0, zero: zeroCandidates(0)[0], error: Infinity };
  const consider = (rawScale: number, zeros: readonly number[]): void => {
    const s = roundScale(rawScale, scaleDtype);
    for (const z of zeros) {
      const error = gridError(w, start, end, s, z, maxCode, weight);
      if (error < best.error) best = { scale: s, zero: z, error };
    }
  };
  if (fullScale === 0) {
    consider(0, zeroCandidates(0));
    return best;
  }
  // The no-clipping scale, rounded up so it still clips nothing, is always a candidate.
  consider(roundScaleUp(fullScale, scaleDtype), zeroCandidates(fullScale));
  for (let step = 0; step < SCALE_SEARCH_STEPS; step++) {
    const s = fullScale * (SCALE_SEARCH_MIN + ((1 - SCALE_SEARCH_MIN) * step) / SCALE_SEARCH_STEPS);
    consider(s, zeroCandidates(s));
  }
  for (let round = 0; round < REFIT_ROUNDS; round++) {
    const refit = refitScale(w, start, end, best.scale, best.zero, maxCode, weight);
    if (refit === best.scale) break;
    consider(refit, [best.zero]);
  }
  return best;
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
  const importance = options.importance;
  if (importance && importance.length !== k) throw new LlmccError(`importance has ${importance.length} values, expected K=${k}`);
  const weight: Weighting | undefined = importance ? { of: (i) => importance[i % k] } : undefined;

  for (let g = 0; g < n * groupsPerRow; g++) {
    const start = Math.floor(g / groupsPerRow) * k + (g % groupsPerRow) * groupSize;
    const end = start + groupSize;
    if (oneBitSymmetric) {
      let sumAbs = 0;
      for (let i = start; i < end; i++) sumAbs += Math.abs(w[i]);
      scales[g] = roundScale((2 * sumAbs) / groupSize, scaleDtype);
      zeroPoints![g] = 0.5;
      for (let i = start; i < end; i++) codes[i] = w[i] >= 0 ? 1 : 0;
      continue;
    }
    if (!symmetric && bits === 1) {
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
      continue;
    }

    let fit: GroupFit;
    if (symmetric) {
      let maxAbs = 0;
      for (let i = start; i < end; i++) maxAbs = Math.max(maxAbs, Math.abs(w[i]));
      // Mid-rise 2-bit: outer levels ±1.5·s; mid-tread: ±(half − 1)·s plus the extra −half·s.
      const z = midRise ? 1.5 : half;
      const fullScale = maxAbs / (midRise ? 2 : half - 0.5);
      fit = searchGrid(w, start, end, fullScale, maxCode, () => [z], scaleDtype, weight);
    } else {
      // The range widened to include 0, so every candidate grid (which holds 0) can cover it.
      let lo = 0;
      let hi = 0;
      for (let i = start; i < end; i++) {
        lo = Math.min(lo, w[i]);
        hi = Math.max(hi, w[i]);
      }
      const zeroCandidates = (s: number): number[] => {
        if (s === 0) return [0];
        const centre = Math.round(maxCode / 2 - (lo + hi) / (2 * s));
        const found = [Math.round(-lo / s), Math.round(maxCode - hi / s), centre - 1, centre, centre + 1]
          .map((z) => clamp(z, 0, maxCode));
        return [...new Set(found)];
      };
      fit = searchGrid(w, start, end, (hi - lo) / maxCode, maxCode, zeroCandidates, scaleDtype, weight);
    }
    scales[g] = fit.scale;
    if (zeroPoints) zeroPoints[g] = fit.zero;
    for (let i = start; i < end; i++) codes[i] = nearestCode(w[i], fit.scale, fit.zero, maxCode);
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
