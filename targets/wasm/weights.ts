/**
 * Weight bytes in a bundle's weights.bin: little-endian, one encoding per dtype so f16/bf16
 * stay half size on disk (converted to f32 when placed in the arena). Narrow floats (f8, f4)
 * are stored as f32 values, sub-byte integers one per byte. Browser-safe.
 */
import type { DType } from '../../ir/dtype.js';
import { isFloat } from '../../ir/dtype.js';
import { bf16BitsToNumber, f16BitsToNumber, numberToBf16Bits, numberToF16Bits } from '../../ir/float.js';
import { LlmccError } from '../../ir/errors.js';
import { Tensor } from '../../ir/tensor.js';
import type { WeightEncoding } from './program.js';

export function weightEncoding(dtype: DType): WeightEncoding {
  switch (dtype) {
    case 'f32': case 'f64': case 'f16': case 'bf16': case 'i8': case 'u8': case 'i16': case 'u16':
    case 'i32': case 'u32': case 'i64': case 'u64':
      return dtype;
    case 'bool': case 'u4': case 'u2': return 'u8';
    case 'i4': case 'i2': return 'i8';
    case 'string': throw new LlmccError('string weights cannot be compiled for wasm');
    default:
      if (isFloat(dtype)) return 'f32';
      throw new LlmccError(`weights of dtype ${dtype} cannot be compiled for wasm`);
  }
}

const BYTES: Record<WeightEncoding, number> = {
  f32: 4, f64: 8, f16: 2, bf16: 2, i8: 1, u8: 1, i16: 2, u16: 2, i32: 4, u32: 4, i64: 8, u64: 8,
};

export function encodedBytes(encoding: WeightEncoding, count: number): number {
  return BYTES[encoding] * count;
}

/**
 * int64 values live as doubles: INT64_MAX (a common Slice end) reads as 2^63, which would wrap
 * to INT64_MIN when stored; saturate instead, as the ONNX importer's encoder does.
 */
function clampBig(x: number, lo: bigint, hi: bigint): bigint {
  if (!Number.isFinite(x)) return 0n;
  const b = BigInt(Math.trunc(x));
  return b < lo ? lo : b > hi ? hi : b;
}

export function encodeWeight(tensor: Tensor, encoding: WeightEncoding): Uint8Array {
  const out = new Uint8Array(encodedBytes(encoding, tensor.size));
  encodeWeightInto(tensor, encoding, out);
  return out;
}

/**
 * Encodes into `out`, exactly the weight's encoded size; `out.byteOffset` must be aligned to
 * the element size (bundle weight offsets are 16-byte aligned).
 */
export function encodeWeightInto(tensor: Tensor, encoding: WeightEncoding, out: Uint8Array): void {
  const values = tensor.numbers();
  const n = values.length;
  if (out.byteLength !== encodedBytes(encoding, n)) {
    throw new LlmccError(`weight ${tensor.dtype}[${tensor.shape.join(',')}] needs ${encodedBytes(encoding, n)} bytes, given ${out.byteLength}`);
  }
  const buf = out.buffer;
  const at = out.byteOffset;
  switch (encoding) {
    case 'f32': new Float32Array(buf, at, n).set(values); break;
    case 'f64': new Float64Array(buf, at, n).set(values); break;
    case 'i8': new Int8Array(buf, at, n).set(values); break;
    case 'u8': out.set(values); break;
    case 'i16': new Int16Array(buf, at, n).set(values); break;
    case 'u16': new Uint16Array(buf, at, n).set(values); break;
    case 'i32': new Int32Array(buf, at, n).set(values); break;
    case 'u32': new Uint32Array(buf, at, n).set(values); break;
    case 'i64': { const v = new BigInt64Array(buf, at, n); for (let i = 0; i < n; i++) v[i] = clampBig(values[i], -(2n ** 63n), 2n ** 63n - 1n); break; }
    case 'u64': { const v = new BigUint64Array(buf, at, n); for (let i = 0; i < n; i++) v[i] = clampBig(values[i], 0n, 2n ** 64n - 1n); break; }
    case 'f16': { const v = new Uint16Array(buf, at, n); for (let i = 0; i < n; i++) v[i] = numberToF16Bits(values[i]); break; }
    case 'bf16': { const v = new Uint16Array(buf, at, n); for (let i = 0; i < n; i++) v[i] = numberToBf16Bits(values[i]); break; }
  }
}

/** Decodes `bytes` (exactly the weight's range) into a tensor of the weight's IR dtype. */
export function decodeWeight(dtype: DType, shape: readonly number[], encoding: WeightEncoding, bytes: Uint8Array): Tensor {
  let count = 1;
  for (const d of shape) count *= d;
  if (bytes.byteLength !== encodedBytes(encoding, count)) {
    throw new LlmccError(`weight data has ${bytes.byteLength} bytes but ${dtype}[${shape.join(',')}] needs ${encodedBytes(encoding, count)}`);
  }
  // Copy to an aligned buffer for the typed-array views.
  const buf = new Uint8Array(bytes).buffer;
  let values: ArrayLike<number>;
  switch (encoding) {
    case 'f32': values = new Float32Array(buf); break;
    case 'f64': values = new Float64Array(buf); break;
    case 'i8': values = new Int8Array(buf); break;
    case 'u8': values = new Uint8Array(buf); break;
    case 'i16': values = new Int16Array(buf); break;
    case 'u16': values = new Uint16Array(buf); break;
    case 'i32': values = new Int32Array(buf); break;
    case 'u32': values = new Uint32Array(buf); break;
    case 'i64': values = Array.from(new BigInt64Array(buf), Number); break;
    case 'u64': values = Array.from(new BigUint64Array(buf), Number); break;
    case 'f16': values = Array.from(new Uint16Array(buf), f16BitsToNumber); break;
    case 'bf16': values = Array.from(new Uint16Array(buf), bf16BitsToNumber); break;
  }
  return Tensor.fromNumbers(dtype, shape, values);
}
