import { isFloat, type DType } from '../../ir/dtype.js';
import type { Tensor } from '../../ir/tensor.js';

/** Allowed disagreement: |target − ref| ≤ atol + rtol·|ref| (numpy.allclose). */
export interface DiffTolerance {
  atol: number;
  rtol: number;
}

/**
 * Default tolerances of intermediate values: the reference computes in f64 and rounds to the
 * dtype, a target computes in its own precision, so f32 allows a few f32 roundings of
 * accumulated sums and f16/bf16 a few of their ulps.
 */
export function diffTolerance(dtype: DType): DiffTolerance {
  switch (dtype) {
    case 'f64': return { atol: 1e-7, rtol: 1e-5 };
    case 'f32': return { atol: 1e-4, rtol: 1e-3 };
    case 'f16': return { atol: 1e-2, rtol: 1e-2 };
    case 'bf16': return { atol: 1e-2, rtol: 2e-2 };
    default: return isFloat(dtype) ? { atol: 0.125, rtol: 0.25 } : { atol: 0, rtol: 0 };
  }
}

/** How far one target value is from the reference value. */
export interface ValueDiff {
  elements: number;
  maxAbs: number;
  /** |target − ref| / |ref|, over elements whose |ref| is at least 1e-6 of the largest |ref|. */
  maxRel: number;
  /** |target − ref| in units in the last place of ref at the value's dtype (ints: 0 or ∞). */
  maxUlp: number;
  /** max |target − ref| / (atol + rtol·|ref|): > 1 means beyond tolerance. */
  tolUse: number;
  /** Elements where one side is NaN/±∞ and the other is not the same. */
  nonFinite: number;
  /** Set when the two cannot be compared element-wise (dtype or shape differ). */
  structural?: string;
  /** Element index of the largest tolerance use, with both values, for the report. */
  worst?: { index: number; target: number; ref: number };
}

const MANTISSA_BITS: Partial<Record<DType, number>> = { f64: 52, f32: 23, f16: 10, bf16: 7 };
const MIN_EXPONENT: Partial<Record<DType, number>> = { f64: -1022, f32: -126, f16: -14, bf16: -126 };

/** One unit in the last place at |x| for a float dtype (subnormal spacing below the normals). */
function ulpOf(x: number, dtype: DType): number {
  const mantissa = MANTISSA_BITS[dtype] ?? 3;
  const minExp = MIN_EXPONENT[dtype] ?? -6;
  const e = x === 0 ? minExp : Math.max(minExp, Math.floor(Math.log2(Math.abs(x))));
  return 2 ** (e - mantissa);
}

function numbers(t: Tensor): ArrayLike<number> | undefined {
  return t.dtype === 'string' ? undefined : (t.data as ArrayLike<number>);
}

export function measureValue(target: Tensor, ref: Tensor, tolerance: DiffTolerance = diffTolerance(ref.dtype)): ValueDiff {
  const empty: ValueDiff = { elements: 0, maxAbs: 0, maxRel: 0, maxUlp: 0, tolUse: 0, nonFinite: 0 };
  if (target.dtype !== ref.dtype) return { ...empty, tolUse: Infinity, structural: `dtype ${target.dtype}, reference ${ref.dtype}` };
  if (target.shape.length !== ref.shape.length || target.shape.some((d, i) => d !== ref.shape[i])) {
    return { ...empty, tolUse: Infinity, structural: `shape [${target.shape.join(',')}], reference [${ref.shape.join(',')}]` };
  }
  const a = numbers(target);
  const e = numbers(ref);
  if (!a || !e) {
    const differ = (target.data as string[]).filter((s, i) => s !== (ref.data as string[])[i]).length;
    return { ...empty, elements: ref.data.length, tolUse: differ ? Infinity : 0, structural: differ ? `${differ} strings differ` : undefined };
  }
  const float = isFloat(ref.dtype);
  let scale = 0;
  for (let i = 0; i < e.length; i++) if (Number.isFinite(e[i])) scale = Math.max(scale, Math.abs(e[i]));
  const relFloor = scale * 1e-6;
  const out: ValueDiff = { ...empty, elements: e.length };
  for (let i = 0; i < e.length; i++) {
    const x = a[i];
    const y = e[i];
    if (!Number.isFinite(x) || !Number.isFinite(y)) {
      const same = (Number.isNaN(x) && Number.isNaN(y)) || x === y;
      if (!same) {
        out.nonFinite++;
        out.maxAbs = out.maxUlp = out.tolUse = Infinity;
        out.worst ??= { index: i, target: x, ref: y };
      }
      continue;
    }
    const abs = Math.abs(x - y);
    if (abs === 0) continue;
    out.maxAbs = Math.max(out.maxAbs, abs);
    if (Math.abs(y) >= relFloor && y !== 0) out.maxRel = Math.max(out.maxRel, abs / Math.abs(y));
    out.maxUlp = Math.max(out.maxUlp, float ? abs / ulpOf(y, ref.dtype) : Infinity);
    const use = abs / (tolerance.atol + tolerance.rtol * Math.abs(y));
    if (use > out.tolUse) {
      out.tolUse = use;
      if (out.nonFinite === 0) out.worst = { index: i, target: x, ref: y };
    }
  }
  return out;
}
