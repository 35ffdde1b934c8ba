import { createHash } from 'node:crypto';
import { type DType, bitWidth, isFloat } from '../dtype.js';
import { LlmccError } from '../errors.js';
import {
  bf16BitsToNumber, decodeMiniFloat, encodeMiniFloat, f16BitsToNumber, numberToBf16Bits, numberToF16Bits,
  type MiniFloat,
} from '../float.js';
import { Tensor, sizeOf } from '../tensor.js';

/**
 * Tensor <-> ONNX raw_data bytes (little-endian; 4- and 2-bit elements packed low bits
 * first). The text IR writes weights and tensor attributes in this form, and reads
 * external weight files with it.
 */
export function serializedByteLength(dtype: DType, shape: readonly number[]): number {
  return Math.ceil((sizeOf(shape) * bitWidth(dtype)) / 8);
}

export function encodeTensorBytes(tensor: Tensor): Uint8Array {
  const { dtype } = tensor;
  if (dtype === 'string') throw new LlmccError('string tensors have no raw byte form');
  const values = tensor.numbers();
  const n = values.length;
  const bits = bitWidth(dtype);
  const out = new Uint8Array(Math.ceil((n * bits) / 8));
  const view = new DataView(out.buffer);
  if (bits < 8) {
    const mask = (1 << bits) - 1;
    const perByte = 8 / bits;
    for (let i = 0; i < n; i++) {
      const code = dtype === 'f4e2m1' ? encodeMiniFloat('f4e2m1', values[i]) : values[i] & mask;
      out[Math.floor(i / perByte)] |= (code & mask) << ((i % perByte) * bits);
    }
    return out;
  }
  for (let i = 0; i < n; i++) {
    const v = values[i];
    switch (dtype) {
      case 'f32': view.setFloat32(i * 4, v, true); break;
      case 'f64': view.setFloat64(i * 8, v, true); break;
      case 'f16': view.setUint16(i * 2, numberToF16Bits(v), true); break;
      case 'bf16': view.setUint16(i * 2, numberToBf16Bits(v), true); break;
      case 'i8': view.setInt8(i, v); break;
      case 'u8': case 'bool': view.setUint8(i, v); break;
      case 'i16': view.setInt16(i * 2, v, true); break;
      case 'u16': view.setUint16(i * 2, v, true); break;
      case 'i32': view.setInt32(i * 4, v, true); break;
      case 'u32': view.setUint32(i * 4, v, true); break;
      // 2^63 is how INT64_MAX reads as a number: clamp rather than wrap to INT64_MIN.
      case 'i64': view.setBigInt64(i * 8, clampBig(v, -(2n ** 63n), 2n ** 63n - 1n), true); break;
      case 'u64': view.setBigUint64(i * 8, clampBig(v, 0n, 2n ** 64n - 1n), true); break;
      default: out[i] = encodeMiniFloat(dtype as MiniFloat, v); // the float8 formats
    }
  }
  return out;
}

function clampBig(value: number, lo: bigint, hi: bigint): bigint {
  const n = BigInt(Math.trunc(value));
  return n < lo ? lo : n > hi ? hi : n;
}

export function decodeTensorBytes(dtype: DType, shape: readonly number[], bytes: Uint8Array): Tensor {
  if (dtype === 'string') throw new LlmccError('string tensors have no raw byte form');
  const expected = serializedByteLength(dtype, shape);
  if (bytes.length !== expected) {
    throw new LlmccError(`${dtype}[${shape.join(',')}] needs ${expected} bytes of data, got ${bytes.length}`);
  }
  const tensor = Tensor.zeros(dtype, shape);
  const values = tensor.numbers();
  const n = values.length;
  const bits = bitWidth(dtype);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bits < 8) {
    const mask = (1 << bits) - 1;
    const perByte = 8 / bits;
    const signed = dtype === 'i4' || dtype === 'i2';
    for (let i = 0; i < n; i++) {
      const code = (bytes[Math.floor(i / perByte)] >> ((i % perByte) * bits)) & mask;
      if (dtype === 'f4e2m1') values[i] = decodeMiniFloat('f4e2m1', code);
      else values[i] = signed && code >= 1 << (bits - 1) ? code - (1 << bits) : code;
    }
    return tensor;
  }
  for (let i = 0; i < n; i++) {
    switch (dtype) {
      case 'f32': values[i] = view.getFloat32(i * 4, true); break;
      case 'f64': values[i] = view.getFloat64(i * 8, true); break;
      case 'f16': values[i] = f16BitsToNumber(view.getUint16(i * 2, true)); break;
      case 'bf16': values[i] = bf16BitsToNumber(view.getUint16(i * 2, true)); break;
      case 'i8': values[i] = view.getInt8(i); break;
      case 'u8': values[i] = view.getUint8(i); break;
      case 'bool': values[i] = view.getUint8(i) ? 1 : 0; break;
      case 'i16': values[i] = view.getInt16(i * 2, true); break;
      case 'u16': values[i] = view.getUint16(i * 2, true); break;
      case 'i32': values[i] = view.getInt32(i * 4, true); break;
      case 'u32': values[i] = view.getUint32(i * 4, true); break;
      case 'i64': values[i] = Number(view.getBigInt64(i * 8, true)); break;
      case 'u64': values[i] = Number(view.getBigUint64(i * 8, true)); break;
      default:
        if (!isFloat(dtype)) throw new LlmccError(`cannot decode ${dtype} bytes`);
        values[i] = decodeMiniFloat(dtype as MiniFloat, bytes[i]);
    }
  }
  return tensor;
}

/** A content hash of a tensor's data, for elided weights (strings hash their JSON form). */
export function tensorSha256(tensor: Tensor): string {
  const hash = createHash('sha256');
  if (tensor.dtype === 'string') hash.update(JSON.stringify(tensor.data));
  else hash.update(encodeTensorBytes(tensor));
  return hash.digest('hex');
}

export function bytesToHex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
}

/** Parses hex digits (no prefix); undefined when the text is not even-length hex. */
export function hexToBytes(hex: string): Uint8Array | undefined {
  if (hex.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(hex)) return undefined;
  return new Uint8Array(Buffer.from(hex, 'hex'));
}
