import { LlmccError } from '../../ir/errors.js';
import type { WeightBits } from '../../ir/quant.js';
import { quantizeRtn, type QuantizedWeight, type ScaleDtype } from './rtn.js';
import { quantizeTernary } from './ternary.js';

/**
 * GPTQ (Frantar et al. 2022, "GPTQ: Accurate Post-Training Quantization for Generative
 * Pre-trained Transformers"): quantizes a weight [N, K] one input column at a time and spreads
 * each column's rounding error over the columns not yet quantized, so that the layer's output
 * error ‖X·(W − Ŵ)ᵀ‖² on calibration inputs X is small, not the weight error.
 *
 * H = XᵀX (any positive scale: only its shape matters), damped by λ·mean(diag H); U is the
 * upper Cholesky factor of H⁻¹ (H⁻¹ = UᵀU). Column i is rounded, its error e = (w − q) / U[i,i]
 * is subtracted as e·U[i, j] from every later column j: within a block of columns at once,
 * beyond it lazily once per block (the paper's "lazy batch updates").
 *
 * The storage format is RTN's (passes/quant/rtn.ts): codes dequantize as (c − z)·s with one
 * (s, z) per row and group of `groupSize` consecutive k. Each group's grid is chosen when GPTQ
 * reaches the group's first column, by RTN's grid search on the group's columns as they are
 * then (with the earlier groups' errors folded in), weighting each column's squared error by
 * diag(H); the codes are the nearest levels of that grid. With act-order (columns taken by
 * decreasing diag(H)) a group's columns are not reached together, so the grids are chosen up
 * front from the original weight ("static groups").
 *
 * With H = identity nothing is fed back and every grid is RTN's: the result equals
 * quantizeRtn's exactly.
 */

export interface GptqScheme {
  bits: WeightBits;
  ternary: boolean;
  groupSize: number;
  symmetric: boolean;
  scaleDtype: ScaleDtype;
}

export interface GptqOptions {
  /** λ: damping added to diag(H) as a fraction of its mean (default 0.01, the paper's). */
  damping?: number;
  /** Columns per lazy-update block (default 128; rounded up to a multiple of the group). */
  blockSize?: number;
  /** Quantize columns by decreasing diag(H) (default false). */
  actOrder?: boolean;
}

export const GPTQ_DEFAULT_DAMPING = 0.01;
export const GPTQ_DEFAULT_BLOCK = 128;
/** Damping is multiplied by 10 when H + λ·mean(diag H)·I is still not positive definite, up to this. */
const MAX_DAMPING = 10;

/** H prepared once per layer input: layers that read the same activations share it. */
export interface GptqFactor {
  k: number;
  /** Upper-triangular U [K, K] (row-major) with UᵀU = (damped H)⁻¹, in processing order. */
  u: Float64Array;
  /** Processing order → original column (act-order); undefined for the natural order. */
  order?: Int32Array;
  /** diag(H) per original column (damped; dead columns 1): the grid search's error weights. */
  importance: Float64Array;
  /** The damping actually used (raised when H was not positive definite). */
  damping: number;
}

/**
 * R upper-triangular with A = R·Rᵀ (Cholesky from the last row up), in place of a copy; returns
 * undefined when A is not positive definite.
 */
function reverseCholesky(a: Float64Array, k: number): Float64Array | undefined {
  const r = new Float64Array(k * k);
  for (let j = k - 1; j >= 0; j--) {
    let diag = a[j * k + j];
    for (let t = j + 1; t < k; t++) diag -= r[j * k + t] * r[j * k + t];
    if (!(diag > 0)) return undefined;
    const rjj = Math.sqrt(diag);
    r[j * k + j] = rjj;
    for (let i = 0; i < j; i++) {
      let sum = a[i * k + j];
      for (let t = j + 1; t < k; t++) sum -= r[i * k + t] * r[j * k + t];
      r[i * k + j] = sum / rjj;
    }
  }
  return r;
}

/** The inverse of an upper-triangular matrix (also upper-triangular), row by row from the bottom. */
function invertUpper(r: Float64Array, k: number): Float64Array {
  const u = new Float64Array(k * k);
  const acc = new Float64Array(k);
  for (let i = k - 1; i >= 0; i--) {
    // Row i of R·U = e_i: U[i, j] = −(Σ_{t>i} R[i, t]·U[t, j]) / R[i, i] for j > i.
    acc.fill(0, i, k);
    for (let t = i + 1; t < k; t++) {
      const rit = r[i * k + t];
      if (rit === 0) continue;
      const row = t * k;
      for (let j = t; j < k; j++) acc[j] += rit * u[row + j];
    }
    const inv = 1 / r[i * k + i];
    u[i * k + i] = inv;
    for (let j = i + 1; j < k; j++) u[i * k + j] = -acc[j] * inv;
  }
  return u;
}

/**
 * Prepares a Hessian H = XᵀX [K, K] (row-major, symmetric) for quantizeGptq. With H = R·Rᵀ
 * (R upper), H⁻¹ = R⁻ᵀR⁻¹, so U = R⁻¹: one factorization and one triangular inverse.
 */
export function factorHessian(hessian: ArrayLike<number>, k: number, options: GptqOptions = {}): GptqFactor {
  if (hessian.length !== k * k) throw new LlmccError(`Hessian has ${hessian.length} values, expected ${k}x${k}`);
  const base = options.damping ?? GPTQ_DEFAULT_DAMPING;
  if (!(base >= 0)) throw new LlmccError(`GPTQ damping must be >= 0, got ${base}`);
  const diag = new Float64Array(k);
  let mean = 0;
  for (let i = 0; i < k; i++) {
    // A column whose input is always 0 (its row and column of H are 0) cannot affect the output.
    diag[i] = hessian[i * k + i] > 0 ? hessian[i * k + i] : 1;
    mean += diag[i] / k;
  }
  let order: Int32Array | undefined;
  if (options.actOrder) {
    order = Int32Array.from({ length: k }, (_, i) => i).sort((a, b) => diag[b] - diag[a] || a - b);
  }
  const at = order ?? Int32Array.from({ length: k }, (_, i) => i);
  for (let damping = base; ; damping = damping === 0 ? 1e-4 : damping * 10) {
    const a = new Float64Array(k * k);
    for (let i = 0; i < k; i++) {
      const row = at[i] * k;
      for (let j = 0; j < k; j++) a[i * k + j] = hessian[row + at[j]];
      a[i * k + i] = diag[at[i]] + damping * mean;
    }
    const r = reverseCholesky(a, k);
    if (r) {
      const importance = new Float64Array(k);
      for (let i = 0; i < k; i++) importance[i] = diag[i] + damping * mean;
      return { k, u: invertUpper(r, k), order, importance, damping };
    }
    if (damping >= MAX_DAMPING) throw new LlmccError(`GPTQ: the Hessian (K=${k}) is not positive definite even with damping ${damping}`);
  }
}

/** The grid of one row and group: levels (c − zero)·scale, c = 0 … maxCode. */
interface GroupGrids {
  scales: Float32Array;
  zeroPoints?: Float32Array;
}

function defaultZero(scheme: GptqScheme): number {
  return scheme.ternary ? 1 : 2 ** (scheme.bits - 1);
}

/** The error weights of one group's columns, or undefined when they are all equal (plain squared error). */
function groupImportance(importance: Float64Array, start: number, size: number): Float64Array | undefined {
  const slice = importance.subarray(start, start + size);
  return slice.every((v) => v === slice[0]) ? undefined : slice;
}

/** RTN's (or ternary absmean's) grids for a weight [n, k] whose groups are `groupSize` wide. */
function chooseGrids(w: Float64Array, n: number, k: number, scheme: GptqScheme, importance: Float64Array | undefined): GroupGrids {
  const q = scheme.ternary
    ? quantizeTernary(w, n, k, { groupSize: scheme.groupSize, scaleDtype: scheme.scaleDtype })
    : quantizeRtn(w, n, k, { bits: scheme.bits, groupSize: scheme.groupSize, symmetric: scheme.symmetric, scaleDtype: scheme.scaleDtype, importance });
  return { scales: q.scales, zeroPoints: q.zeroPoints };
}

/**
 * GPTQ-quantizes `w` (rows [N, K], row-major) for the inputs summarized by `factor`; the
 * result is in the same format (and bit-identical layout) as quantizeRtn / quantizeTernary.
 */
export function quantizeGptq(w: ArrayLike<number>, n: number, k: number, factor: GptqFactor, scheme: GptqScheme, options: GptqOptions = {}): QuantizedWeight {
  const g = scheme.groupSize;
  if (!Number.isInteger(g) || g <= 0 || k % g !== 0) throw new LlmccError(`K=${k} is not a multiple of the group size ${g}`);
  if (w.length !== n * k) throw new LlmccError(`weight has ${w.length} elements, expected ${n}x${k}`);
  if (factor.k !== k) throw new LlmccError(`GPTQ factor is for K=${factor.k}, the weight has K=${k}`);
  const { u, order, importance } = factor;
  const groupsPerRow = k / g;
  const maxCode = scheme.ternary ? 2 : 2 ** scheme.bits - 1;
  const blockRequest = options.blockSize ?? GPTQ_DEFAULT_BLOCK;
  if (!Number.isInteger(blockRequest) || blockRequest <= 0) throw new LlmccError(`GPTQ block size must be a positive integer, got ${blockRequest}`);
  // A group never straddles two blocks, so its columns are current when its grid is chosen.
  const block = Math.min(k, Math.ceil(blockRequest / g) * g);
  const col = (i: number): number => (order ? order[i] : i);

  // Working copy in processing order.
  const work = new Float64Array(n * k);
  for (let row = 0; row < n; row++) for (let i = 0; i < k; i++) work[row * k + i] = w[row * k + col(i)];

  const scales = new Float32Array(n * groupsPerRow);
  let zeroPoints: Float32Array | undefined;
  const setGrids = (group: number, grids: GroupGrids, from: number): void => {
    for (let row = 0; row < n; row++) {
      scales[row * groupsPerRow + group] = grids.scales[row * (grids.scales.length / n) + from];
      if (grids.zeroPoints) {
        zeroPoints ??= new Float32Array(n * groupsPerRow);
        zeroPoints[row * groupsPerRow + group] = grids.zeroPoints[row * (grids.zeroPoints.length / n) + from];
      }
    }
  };
  if (order) {
    // Static groups: every grid from the original weight, before any error is fed back.
    const original = Float64Array.from(w);
    const imp = importance.every((v) => v === importance[0]) ? undefined : importance;
    const grids = chooseGrids(original, n, k, scheme, imp);
    for (let group = 0; group < groupsPerRow; group++) setGrids(group, grids, group);
  }
  const zeroFallback = defaultZero(scheme);

  const codes = new Uint8Array(n * k);
  const errors = new Float64Array(n * block);
  const groupColumns = new Float64Array(n * g);
  for (let i1 = 0; i1 < k; i1 += block) {
    const i2 = Math.min(i1 + block, k);
    for (let i = i1; i < i2; i++) {
      if (!order && i % g === 0) {
        for (let row = 0; row < n; row++) for (let t = 0; t < g; t++) groupColumns[row * g + t] = work[row * k + i + t];
        setGrids(i / g, chooseGrids(groupColumns, n, g, { ...scheme, groupSize: g }, groupImportance(importance, i, g)), 0);
      }
      const original = col(i);
      const group = Math.floor(original / g);
      const d = u[i * k + i];
      for (let row = 0; row < n; row++) {
        const s = scales[row * groupsPerRow + group];
        const z = zeroPoints ? zeroPoints[row * groupsPerRow + group] : zeroFallback;
        const x = work[row * k + i];
        let c: number;
        if (s === 0) c = Math.min(maxCode, Math.max(0, Math.round(z)));
        else {
          const v = x / s + z + 0.5; // floor(x/s + z + ½): round to nearest, exactly as RTN
          c = v <= 0 ? 0 : v >= maxCode ? maxCode : v | 0;
        }
        codes[row * k + original] = c;
        const e = (x - (c - z) * s) / d;
        errors[row * block + (i - i1)] = e;
        if (e === 0) continue;
        const uRow = i * k;
        const wRow = row * k;
        for (let j = i + 1; j < i2; j++) work[wRow + j] -= e * u[uRow + j];
      }
    }
    if (i2 === k) break;
    // Lazy update: the block's errors reach the remaining columns at once.
    for (let row = 0; row < n; row++) {
      const wRow = row * k;
      const eRow = row * block - i1;
      let t = i1;
      // Four of the block's columns per pass over the row: a quarter of the loads and stores.
      for (; t + 4 <= i2; t += 4) {
        const e0 = errors[eRow + t];
        const e1 = errors[eRow + t + 1];
        const e2 = errors[eRow + t + 2];
        const e3 = errors[eRow + t + 3];
        const u0 = t * k;
        const u1 = u0 + k;
        const u2 = u1 + k;
        const u3 = u2 + k;
        for (let j = i2; j < k; j++) work[wRow + j] -= e0 * u[u0 + j] + e1 * u[u1 + j] + e2 * u[u2 + j] + e3 * u[u3 + j];
      }
      for (; t < i2; t++) {
        const e = errors[eRow + t];
        const uRow = t * k;
        for (let j = i2; j < k; j++) work[wRow + j] -= e * u[uRow + j];
      }
    }
  }
  const symmetric = scheme.ternary || scheme.symmetric;
  return {
    info: { bits: scheme.ternary ? 2 : scheme.bits, ternary: scheme.ternary, groupSize: g, symmetric, scaleDtype: scheme.scaleDtype, layout: { kind: 'codes-nk' } },
    n, k, codes, scales, zeroPoints,
  };
}

/**
 * Output SQNR in dB of replacing W by Ŵ for inputs with Gram matrix H = XᵀX:
 * 10·log10(Σ_n w_n·H·w_nᵀ / Σ_n δ_n·H·δ_nᵀ), δ = W − Ŵ. Infinity when exact.
 */
export function hessianSqnrDb(w: ArrayLike<number>, approx: ArrayLike<number>, n: number, k: number, hessian: ArrayLike<number>): number {
  let signal = 0;
  let noise = 0;
  const delta = new Float64Array(k);
  for (let row = 0; row < n; row++) {
    for (let i = 0; i < k; i++) delta[i] = w[row * k + i] - approx[row * k + i];
    for (let i = 0; i < k; i++) {
      let hw = 0;
      let hd = 0;
      for (let j = 0; j < k; j++) {
        const h = hessian[i * k + j];
        hw += h * w[row * k + j];
        hd += h * delta[j];
      }
      signal += w[row * k + i] * hw;
      noise += delta[i] * hd;
    }
  }
  if (noise <= 0) return Infinity;
  return 10 * Math.log10(signal / noise);
}
