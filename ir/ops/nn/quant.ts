import type { Dim } from '../../graph.js';
import { type DType, isFloat } from '../../dtype.js';
import type { Tensor } from '../../tensor.js';
import type { Attrs } from '../attrs.js';
import { stridesOf } from '../util/shape.js';

/** Shared by QuantizeLinear and DequantizeLinear: how scale / zero point map onto elements. */

export const INTEGER_QUANT_TYPES: readonly DType[] = ['u8', 'i8', 'u16', 'i16', 'u4', 'i4', 'u2', 'i2'];
export const FLOAT_QUANT_TYPES: readonly DType[] = ['f8e4m3fn', 'f8e4m3fnuz', 'f8e5m2', 'f8e5m2fnuz', 'f4e2m1'];

export function isQuantType(dtype: DType): boolean {
  return INTEGER_QUANT_TYPES.includes(dtype) || FLOAT_QUANT_TYPES.includes(dtype);
}

/** Resolves the quantization axis (only meaningful for per-axis and blocked parameters). */
export function quantAxis(attrs: Attrs, rank: number): number {
  const axis = attrs.int('axis', 1);
  const a = axis < 0 ? axis + rank : axis;
  return a;
}

/**
 * Checks a scale/zero-point shape against X for the three modes: per-tensor (scalar or
 * one element), per-axis (1-D of X's size along axis), blocked (X's rank, the axis dim
 * being ceil(X[axis] / block_size)).
 */
export function checkParamShape(
  attrs: Attrs, what: string, param: readonly Dim[], x: readonly Dim[], axis: number, blockSize: number,
): void {
  const size = param.reduce<number>((n, d) => (typeof d === 'number' ? n * d : NaN), 1);
  if (param.length === 0 || size === 1) return;
  if (axis < 0 || axis >= x.length) throw attrs.error(`axis ${attrs.int('axis', 1)} is out of range for rank ${x.length}`);
  if (blockSize <= 0) {
    if (param.length !== 1) throw attrs.error(`${what} must be a scalar or 1-D for per-axis quantization, got rank ${param.length}`);
    if (typeof param[0] === 'number' && typeof x[axis] === 'number' && param[0] !== x[axis]) {
      throw attrs.error(`${what} has ${param[0]} elements but X has ${x[axis]} along axis ${axis}`);
    }
    return;
  }
  if (param.length !== x.length) throw attrs.error(`${what} must have X's rank for blocked quantization`);
  param.forEach((d, i) => {
    const xd = x[i];
    if (typeof d !== 'number' || typeof xd !== 'number') return;
    const want = i === axis ? Math.ceil(xd / blockSize) : xd;
    if (d !== want) {
      throw attrs.error(`${what} of shape [${param.join(',')}] does not match X [${x.join(',')}] blocked by ${blockSize} on axis ${axis}`);
    }
  });
}

/** For each element of X (flat), the flat index of its scale / zero point. */
export function paramIndex(attrs: Attrs, what: string, param: Tensor, x: Tensor, axis: number, blockSize: number): Int32Array {
  checkParamShape(attrs, what, param.shape, x.shape, axis, blockSize);
  const index = new Int32Array(x.size);
  if (param.rank === 0 || param.size === 1) return index;
  const xStrides = stridesOf(x.shape);
  const pStrides = stridesOf(param.shape);
  for (let e = 0; e < x.size; e++) {
    if (blockSize <= 0) {
      index[e] = Math.floor(e / xStrides[axis]) % x.shape[axis];
      continue;
    }
    let rest = e;
    let p = 0;
    for (let d = 0; d < x.rank; d++) {
      const c = Math.floor(rest / xStrides[d]);
      rest -= c * xStrides[d];
      p += (d === axis ? Math.floor(c / blockSize) : c) * pStrides[d];
    }
    index[e] = p;
  }
  return index;
}

/** numpy dtype promotion for the float division x / scale (f16 with bf16 widens to f32). */
export function promoteFloat(a: DType, b: DType): DType {
  if (a === b) return a;
  if (a === 'f64' || b === 'f64') return 'f64';
  return isFloat(a) && isFloat(b) ? 'f32' : 'f64';
}
