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
 * of candidate scales is tried (from the "no clipping" scale down to about half of it, coarse
 * then fine around the best), the codes rounded for each, and the least squared error kept; then the
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

/**
 * Scale search per group, coarse then fine: COARSE_STEPS scales evenly over [SEARCH_MIN, 1) of
 * the no-clipping scale, then FINE_STEPS more on each side of the best one, a third of a coarse
 * step apart (the same resolution as 24 even steps, at half the trials).
 */
const COARSE_STEPS = 8;
const FINE_STEPS = 2;
const SEARCH_MIN = 0.5;
/** Least-squares refits after the search (each re-rounds the codes). */
const REFIT_ROUNDS = 2;

function nearestCode(x: number, s: number, z: number, maxCode: number): number {
  return s === 0 ? clamp(Math.round(z), 0, maxCode) : clamp(Math.round(x / s + z), 0, maxCode);
}

/** 2^42 + 1: Veltkamp's splitter that rounds an f64 to 53 − 42 = 11 significant bits (f16's). */
const F16_SPLITTER = 4398046511105;
const F16_MIN_NORMAL = 2 ** -14;
const F16_MAX = 65504;

/** roundScale for the search's many candidates: f16 by Veltkamp splitting in its normal range. */
function roundScaleFast(x: number, dtype: ScaleDtype): number {
  if (dtype === 'f32') return Math.fround(x);
  if (x < F16_MIN_NORMAL || x > F16_MAX) return roundToF16(x);
  const c = F16_SPLITTER * x;
  return c - (c - x);
}

/**
 * The grid search of one weight at a time, group by group (see the module comment): state in
 * fields and typed arrays so the inner loops allocate nothing and stay monomorphic.
 */
class GridSearch {
  start = 0;
  end = 0;
  /** Best grid so far for the current group. */
  scale = 0;
  zero = 0;
  error = Infinity;
  /** Zero-point candidates of the current scale: zeros[0 .. zeroCount). */
  private readonly zeros = new Float64Array(3);
  private zeroCount = 0;

  constructor(
    private readonly w: Float32Array | Float64Array,
    private readonly k: number,
    private readonly maxCode: number,
    private readonly scaleDtype: ScaleDtype,
    /** Per-column error weights (length K), or undefined for the plain squared error. */
    private readonly imp: Float64Array | undefined,
  ) {}

  /** Squared error of rounding the group to the grid (s, z). */
  gridError(s: number, z: number): number {
    const { w, start, end, imp, maxCode } = this;
    let error = 0;
    if (s === 0) {
      const level = (clamp(Math.round(z), 0, maxCode) - z) * s;
      for (let i = start; i < end; i++) {
        const d = w[i] - level;
        error += imp ? imp[i % this.k] * d * d : d * d;
      }
      return error;
    }
    // Round to nearest as floor(v + ½) by truncation after the clamp: 4× faster than Math.round in V8.
    const inv = 1 / s;
    const zHalf = z + 0.5;
    if (imp) {
      for (let i = start, j = start % this.k; i < end; i++, j++) {
        const x = w[i];
        const v = x * inv + zHalf;
        const c = v <= 0 ? 0 : v >= maxCode ? maxCode : v | 0;
        const d = x - (c - z) * s;
        error += imp[j] * d * d;
      }
      return error;
    }
    for (let i = start; i < end; i++) {
      const x = w[i];
      const v = x * inv + zHalf;
      const c = v <= 0 ? 0 : v >= maxCode ? maxCode : v | 0;
      const d = x - (c - z) * s;
      error += d * d;
    }
    return error;
  }

  /** The least-squares scale for the codes rounded at (s, z), z fixed; s when degenerate. */
  refitScale(s: number, z: number): number {
    const { w, start, end, imp, maxCode } = this;
    if (s === 0) return s;
    const inv = 1 / s;
    const zHalf = z + 0.5;
    let num = 0;
    let den = 0;
    for (let i = start; i < end; i++) {
      const x = w[i];
      const v = x * inv + zHalf;
      const q = (v <= 0 ? 0 : v >= maxCode ? maxCode : v | 0) - z;
      const c = imp ? imp[i % this.k] : 1;
      num += c * x * q;
      den += c * q * q;
    }
    return den > 0 && num > 0 ? num / den : s;
  }

  /** Tries scale `s` (already in the storage dtype) with zero point z. */
  private try(s: number, z: number): boolean {
    const error = this.gridError(s, z);
    if (error >= this.error) return false;
    this.scale = s;
    this.zero = z;
    this.error = error;
    return true;
  }

  /** Tries a raw scale with every current zero candidate; true when one improved. */
  private tryZeros(rawScale: number, round: 'nearest' | 'up'): boolean {
    const s = round === 'up' ? roundScaleUp(rawScale, this.scaleDtype) : roundScaleFast(rawScale, this.scaleDtype);
    let improved = false;
    for (let i = 0; i < this.zeroCount; i++) if (this.try(s, this.zeros[i])) improved = true;
    return improved;
  }

  /** One fixed zero point (symmetric grids). */
  setZero(z: number): void {
    this.zeros[0] = z;
    this.zeroCount = 1;
  }

  /** Asymmetric zero candidates for scale s over [lo, hi]: grid bottom, top or centre aligned. */
  setAsymmetricZeros(s: number, lo: number, hi: number): void {
    const maxCode = this.maxCode;
    if (s === 0) { this.setZero(0); return; }
    const centre = Math.round(maxCode / 2 - (lo + hi) / (2 * s));
    let count = 0;
    for (const raw of [Math.round(-lo / s), Math.round(maxCode - hi / s), centre]) {
      const z = clamp(raw, 0, maxCode);
      let seen = false;
      for (let i = 0; i < count; i++) if (this.zeros[i] === z) seen = true;
      if (!seen) this.zeros[count++] = z;
    }
    this.zeroCount = count;
  }

  /**
   * Searches the group [start, end) for the least squared error; `fullScale` is the scale at
   * which nothing clips. Asymmetric grids (lo/hi given) also search the zero point: the
   * candidates of each coarse scale, then the best one ±1 on the fine scales.
   */
  search(start: number, end: number, fullScale: number, fixedZero: number | undefined, lo: number, hi: number): void {
    this.start = start;
    this.end = end;
    this.error = Infinity;
    const zerosFor = (s: number): void => (fixedZero === undefined ? this.setAsymmetricZeros(s, lo, hi) : this.setZero(fixedZero));
    zerosFor(fullScale);
    this.scale = 0;
    this.zero = this.zeros[0];
    if (fullScale === 0) {
      this.tryZeros(0, 'nearest');
      return;
    }
    // The no-clipping scale, rounded up so it still clips nothing, is always a candidate.
    this.tryZeros(fullScale, 'up');
    const step = (1 - SEARCH_MIN) / COARSE_STEPS;
    let bestFraction = 1;
    for (let i = 0; i < COARSE_STEPS; i++) {
      const fraction = SEARCH_MIN + step * i;
      zerosFor(fullScale * fraction);
      if (this.tryZeros(fullScale * fraction, 'nearest')) bestFraction = fraction;
    }
    if (fixedZero === undefined) {
      const z = this.zero;
      this.zeroCount = 0;
      for (const c of [z - 1, z, z + 1]) if (c >= 0 && c <= this.maxCode) this.zeros[this.zeroCount++] = c;
    } else {
      this.setZero(fixedZero);
    }
    for (let i = 1; i <= FINE_STEPS; i++) {
      const delta = (step * i) / (FINE_STEPS + 1);
      if (bestFraction - delta > 0) this.tryZeros(fullScale * (bestFraction - delta), 'nearest');
      if (bestFraction + delta < 1) this.tryZeros(fullScale * (bestFraction + delta), 'nearest');
    }
    for (let round = 0; round < REFIT_ROUNDS; round++) {
      const refit = this.refitScale(this.scale, this.zero);
      if (refit === this.scale) break;
      this.try(roundScaleFast(refit, this.scaleDtype), this.zero);
    }
  }
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
  const imp = importance ? Float64Array.from(importance) : undefined;
  // Typed arrays keep the search's inner loops monomorphic; other inputs are copied once.
  const data = w instanceof Float32Array || w instanceof Float64Array ? w : Float64Array.from(w);
  const search = new GridSearch(data, k, maxCode, scaleDtype, imp);

  for (let g = 0; g < n * groupsPerRow; g++) {
    const start = Math.floor(g / groupsPerRow) * k + (g % groupsPerRow) * groupSize;
    const end = start + groupSize;
    if (oneBitSymmetric) {
      let sumAbs = 0;
      for (let i = start; i < end; i++) sumAbs += Math.abs(data[i]);
      scales[g] = roundScale((2 * sumAbs) / groupSize, scaleDtype);
      zeroPoints![g] = 0.5;
      for (let i = start; i < end; i++) codes[i] = data[i] >= 0 ? 1 : 0;
      continue;
    }
    if (!symmetric && bits === 1) {
      let mean = 0;
      for (let i = start; i < end; i++) mean += data[i];
      mean /= groupSize;
      let [sumLo, countLo, sumHi, countHi] = [0, 0, 0, 0];
      for (let i = start; i < end; i++) {
        if (data[i] >= mean) { sumHi += data[i]; countHi++; } else { sumLo += data[i]; countLo++; }
      }
      const hiLevel = sumHi / countHi;
      const loLevel = countLo ? sumLo / countLo : hiLevel;
      // A constant group (lo = hi) keeps its value through code 0: s = |value|, z = −sign(value).
      const constantGroup = countLo === 0;
      const s = roundScale(constantGroup ? Math.abs(hiLevel) : hiLevel - loLevel, scaleDtype);
      scales[g] = s;
      zeroPoints![g] = s === 0 ? 0 : Math.fround(-loLevel / s);
      for (let i = start; i < end; i++) codes[i] = !constantGroup && data[i] >= mean ? 1 : 0;
      continue;
    }

    if (symmetric) {
      let maxAbs = 0;
      for (let i = start; i < end; i++) maxAbs = Math.max(maxAbs, Math.abs(data[i]));
      // Mid-rise 2-bit: outer levels ±1.5·s; mid-tread: ±(half − 1)·s plus the extra −half·s.
      const z = midRise ? 1.5 : half;
      search.search(start, end, maxAbs / (midRise ? 2 : half - 0.5), z, 0, 0);
    } else {
      // The range widened to include 0, so every candidate grid (which holds 0) can cover it.
      let lo = 0;
      let hi = 0;
      for (let i = start; i < end; i++) {
        lo = Math.min(lo, data[i]);
        hi = Math.max(hi, data[i]);
      }
      search.search(start, end, (hi - lo) / maxCode, undefined, lo, hi);
    }
    scales[g] = search.scale;
    if (zeroPoints) zeroPoints[g] = search.zero;
    const { scale, zero } = search;
    if (scale === 0) codes.fill(nearestCode(0, 0, zero, maxCode), start, end);
    else {
      for (let i = start; i < end; i++) {
        const v = data[i] / scale + zero + 0.5; // floor(x/s + z + ½): round to nearest, as nearestCode
        codes[i] = v <= 0 ? 0 : v >= maxCode ? maxCode : v | 0;
      }
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
