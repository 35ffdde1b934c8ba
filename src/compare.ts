import type { DType } from '../ir/dtype.js';
import type { Tensor } from '../ir/tensor.js';

export interface Tolerance {
  atol: number;
  rtol: number;
}

export interface Comparison {
  ok: boolean;
  /** Largest |actual − expected| (0 for exact types that match). */
  maxAbs: number;
  /** Largest |actual − expected| / |expected| over elements with expected ≠ 0. */
  maxRel: number;
  /** Cosine similarity of the two as vectors (1 for identical direction; NaN if either is all zeros). */
  cosine: number;
  /** Why it failed, when it failed for a structural reason (dtype, shape, NaN placement). */
  reason?: string;
}

/** Default tolerance by output dtype: what an f64-accumulating oracle should meet. */
export function defaultTolerance(dtype: DType): Tolerance {
  switch (dtype) {
    case 'f64': return { atol: 1e-7, rtol: 1e-5 };
    case 'f32': return { atol: 1e-4, rtol: 0 };
    case 'f16': case 'bf16': return { atol: 1e-2, rtol: 0 };
    default: return { atol: 0, rtol: 0 };
  }
}

/**
 * numpy.allclose-style comparison: |a − e| ≤ atol + rtol·|e| per element.
 * NaN matches NaN, infinities must match exactly.
 */
export function compareTensors(actual: Tensor, expected: Tensor, tolerance: Tolerance): Comparison {
  if (actual.dtype !== expected.dtype) {
    return { ok: false, maxAbs: Infinity, maxRel: Infinity, cosine: NaN, reason: `dtype ${actual.dtype} != expected ${expected.dtype}` };
  }
  if (actual.shape.length !== expected.shape.length || actual.shape.some((d, i) => d !== expected.shape[i])) {
    return {
      ok: false, maxAbs: Infinity, maxRel: Infinity, cosine: NaN,
      reason: `shape [${actual.shape.join(',')}] != expected [${expected.shape.join(',')}]`,
    };
  }
  if (Array.isArray(actual.data) || Array.isArray(expected.data)) {
    const a = actual.data as string[];
    const e = expected.data as string[];
    const bad = a.findIndex((s, i) => s !== e[i]);
    return bad < 0
      ? { ok: true, maxAbs: 0, maxRel: 0, cosine: 1 }
      : { ok: false, maxAbs: Infinity, maxRel: Infinity, cosine: NaN, reason: `string element ${bad}: "${a[bad]}" != "${e[bad]}"` };
  }
  const a = actual.data;
  const e = expected.data;
  let maxAbs = 0;
  let maxRel = 0;
  let ok = true;
  let reason: string | undefined;
  let dot = 0;
  let normA = 0;
  let normE = 0;
  for (let i = 0; i < a.length; i++) {
    const x = a[i];
    const y = e[i];
    if (Number.isFinite(x) && Number.isFinite(y)) {
      dot += x * y;
      normA += x * x;
      normE += y * y;
    }
    if (Number.isNaN(x) || Number.isNaN(y)) {
      if (Number.isNaN(x) !== Number.isNaN(y)) {
        ok = false;
        reason ??= `element ${i}: ${x} != expected ${y}`;
      }
      continue;
    }
    if (!Number.isFinite(x) || !Number.isFinite(y)) {
      if (x !== y) {
        ok = false;
        reason ??= `element ${i}: ${x} != expected ${y}`;
      }
      continue;
    }
    const diff = Math.abs(x - y);
    if (diff > maxAbs) maxAbs = diff;
    if (y !== 0) maxRel = Math.max(maxRel, diff / Math.abs(y));
    if (diff > tolerance.atol + tolerance.rtol * Math.abs(y)) ok = false;
  }
  const cosine = dot / Math.sqrt(normA * normE);
  return reason ? { ok, maxAbs, maxRel, cosine, reason } : { ok, maxAbs, maxRel, cosine };
}
