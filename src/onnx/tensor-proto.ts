/**
 * TensorProto <-> Tensor. Decoding accepts every storage form ONNX allows: raw_data
 * (little-endian, sub-byte types packed low bits first), the typed repeated fields, and
 * external data. Encoding always writes raw_data (strings: string_data).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { type DType, bitWidth, dtypeFromOnnx, dtypeToOnnx } from '../../ir/dtype.js';
import { LlmccError } from '../../ir/errors.js';
import {
  bf16BitsToNumber, decodeMiniFloat, encodeMiniFloat, f16BitsToNumber, numberToBf16Bits, numberToF16Bits,
  type MiniFloat,
} from '../../ir/float.js';
import { type NumericData, Tensor, convertNumber, sizeOf } from '../../ir/tensor.js';
import { type ExternalDataRef, type ExternalFileCache, readExternalData, resolveExternalData } from './external-data.js';
import { type Int64Like, type TensorProto, decodeUtf8, int64ToNumber, int64ToSize, onnx } from './proto.js';
import { validateWireFormat } from './wire.js';

const EXTERNAL = 1; // TensorProto.DataLocation.EXTERNAL

/** Names a tensor for messages: `tensor "w"` plus the file when known. */
export function describeTensor(name: string | null | undefined, file?: string): string {
  const t = `tensor "${name ?? ''}"`;
  return file ? `${t} in ${file}` : t;
}

/** The IR dtype of a TensorProto; complex and unknown types are refused. */
export function tensorProtoDtype(proto: TensorProto, where: string): DType {
  const code = proto.dataType ?? 0;
  const dtype = dtypeFromOnnx(code);
  if (!dtype) {
    const known: Record<number, string> = { 0: 'UNDEFINED', 14: 'COMPLEX64', 15: 'COMPLEX128' };
    throw new LlmccError(`unsupported tensor data type ${known[code] ?? code}`, where);
  }
  return dtype;
}

export function tensorProtoShape(proto: TensorProto, where: string): number[] {
  return (proto.dims ?? []).map((d) => {
    const n = int64ToSize(d as Int64Like);
    if (n === undefined) throw new LlmccError(`tensor has invalid dimension ${int64ToNumber(d as Int64Like)}`, where);
    return n;
  });
}

/** Bytes of `count` elements in raw_data form (sub-byte types packed); strings have none. */
export function rawByteLength(dtype: DType, count: number): number {
  if (dtype === 'string') return 0;
  return Math.ceil((count * bitWidth(dtype)) / 8);
}

// ---------------------------------------------------------------------------------------
// Decoding

let f16Table: Float32Array | undefined;
/** All 65536 half values, so decoding large f16 weights is one lookup per element. */
function f16Values(): Float32Array {
  if (!f16Table) {
    f16Table = new Float32Array(65536);
    for (let h = 0; h < 65536; h++) f16Table[h] = f16BitsToNumber(h);
  }
  return f16Table;
}

const miniTables = new Map<MiniFloat, Float32Array>();
function miniValues(type: MiniFloat): Float32Array {
  let table = miniTables.get(type);
  if (!table) {
    const codes = type === 'f4e2m1' ? 16 : 256;
    table = new Float32Array(codes);
    for (let c = 0; c < codes; c++) table[c] = decodeMiniFloat(type, c);
    miniTables.set(type, table);
  }
  return table;
}

function isMiniFloat(d: DType): d is MiniFloat {
  return d.startsWith('f8') || d === 'f4e2m1';
}

/** Element values from packed bytes of a sub-byte type (low bits first). */
function unpackSubByte(dtype: DType, bytes: ArrayLike<number>, count: number, out: NumericData): void {
  const bits = bitWidth(dtype);
  const perByte = 8 / bits;
  const mask = (1 << bits) - 1;
  const signed = dtype === 'i4' || dtype === 'i2';
  const half = 1 << (bits - 1);
  const floats = dtype === 'f4e2m1' ? miniValues('f4e2m1') : undefined;
  for (let i = 0; i < count; i++) {
    const code = (bytes[Math.floor(i / perByte)] >> ((i % perByte) * bits)) & mask;
    out[i] = floats ? floats[code] : signed && code >= half ? code - (1 << bits) : code;
  }
}

/** Decodes little-endian raw bytes (raw_data or an external file) into a tensor. */
export function decodeRawData(dtype: DType, shape: number[], bytes: Uint8Array, where: string): Tensor {
  if (dtype === 'string') throw new LlmccError('string tensors cannot use raw_data', where);
  const count = sizeOf(shape);
  const needed = rawByteLength(dtype, count);
  if (bytes.length !== needed) {
    throw new LlmccError(
      `tensor data has ${bytes.length} bytes but ${dtype}[${shape.join(',')}] needs ${needed}`, where);
  }
  const result = Tensor.zeros(dtype, shape);
  const out = result.data as NumericData;
  // A copy gives an aligned buffer for the typed-array views below. (Not `bytes.slice()`:
  // on a Node Buffer that is a view into the whole file.)
  const aligned = new Uint8Array(bytes).buffer;
  switch (dtype) {
    case 'f32': out.set(new Float32Array(aligned)); break;
    case 'f64': out.set(new Float64Array(aligned)); break;
    case 'i8': out.set(new Int8Array(aligned)); break;
    case 'u8': out.set(new Uint8Array(aligned)); break;
    case 'i16': out.set(new Int16Array(aligned)); break;
    case 'u16': out.set(new Uint16Array(aligned)); break;
    case 'i32': out.set(new Int32Array(aligned)); break;
    case 'u32': out.set(new Uint32Array(aligned)); break;
    case 'bool': for (let i = 0; i < count; i++) out[i] = bytes[i] !== 0 ? 1 : 0; break;
    case 'i64': {
      const v = new BigInt64Array(aligned);
      for (let i = 0; i < count; i++) out[i] = Number(v[i]);
      break;
    }
    case 'u64': {
      const v = new BigUint64Array(aligned);
      for (let i = 0; i < count; i++) out[i] = Number(v[i]);
      break;
    }
    case 'f16': {
      const v = new Uint16Array(aligned);
      const table = f16Values();
      for (let i = 0; i < count; i++) out[i] = table[v[i]];
      break;
    }
    case 'bf16': {
      const v = new Uint16Array(aligned);
      for (let i = 0; i < count; i++) out[i] = bf16BitsToNumber(v[i]);
      break;
    }
    case 'i4': case 'u4': case 'i2': case 'u2': case 'f4e2m1':
      unpackSubByte(dtype, bytes, count, out);
      break;
    default: {
      if (!isMiniFloat(dtype)) throw new LlmccError(`cannot decode ${dtype} raw data`, where);
      const table = miniValues(dtype);
      for (let i = 0; i < count; i++) out[i] = table[bytes[i]];
    }
  }
  return result;
}

/** Which typed field holds a dtype's values, and how many entries `count` elements take. */
function typedField(dtype: DType): 'floatData' | 'int32Data' | 'int64Data' | 'uint64Data' | 'doubleData' | 'stringData' {
  switch (dtype) {
    case 'f32': return 'floatData';
    case 'f64': return 'doubleData';
    case 'i64': return 'int64Data';
    case 'u32': case 'u64': return 'uint64Data';
    case 'string': return 'stringData';
    default: return 'int32Data';
  }
}

function typedEntryCount(dtype: DType, count: number): number {
  // int32_data holds sub-byte types packed, one byte's worth per entry.
  const bits = bitWidth(dtype);
  return bits < 8 && dtype !== 'string' ? Math.ceil((count * bits) / 8) : count;
}

/** Entries present in the dtype's typed field. */
function typedLength(proto: TensorProto, dtype: DType): number {
  return (proto[typedField(dtype)] ?? []).length;
}

function decodeTypedData(proto: TensorProto, dtype: DType, shape: number[], where: string): Tensor {
  const count = sizeOf(shape);
  const field = typedField(dtype);
  const entries = typedEntryCount(dtype, count);
  const present = typedLength(proto, dtype);
  if (present !== entries) {
    const unit = entries !== count ? ' (packed)' : '';
    throw new LlmccError(
      `tensor has ${present} values in ${snake(field)} but ${dtype}[${shape.join(',')}] needs ${entries}${unit}`, where);
  }
  if (dtype === 'string') {
    return Tensor.strings(shape, (proto.stringData ?? []).map(decodeUtf8));
  }
  const result = Tensor.zeros(dtype, shape);
  const out = result.data as NumericData;
  switch (field) {
    case 'floatData': out.set(proto.floatData ?? []); break;
    case 'doubleData': out.set(proto.doubleData ?? []); break;
    case 'int64Data': {
      const v = proto.int64Data ?? [];
      for (let i = 0; i < count; i++) out[i] = int64ToNumber(v[i] as Int64Like);
      break;
    }
    case 'uint64Data': {
      const v = proto.uint64Data ?? [];
      for (let i = 0; i < count; i++) {
        const x = v[i] as Int64Like;
        // protobufjs marks uint64 Longs unsigned; plain numbers are already non-negative.
        out[i] = dtype === 'u32' ? int64ToNumber(x) >>> 0 : int64ToNumber(x);
      }
      break;
    }
    default: {
      const v = proto.int32Data ?? [];
      if (bitWidth(dtype) < 8) {
        unpackSubByte(dtype, v.map((x) => x & 0xff), count, out);
      } else if (dtype === 'f16') {
        const table = f16Values();
        for (let i = 0; i < count; i++) out[i] = table[v[i] & 0xffff];
      } else if (dtype === 'bf16') {
        for (let i = 0; i < count; i++) out[i] = bf16BitsToNumber(v[i] & 0xffff);
      } else if (isMiniFloat(dtype)) {
        const table = miniValues(dtype);
        for (let i = 0; i < count; i++) out[i] = table[v[i] & 0xff];
      } else {
        for (let i = 0; i < count; i++) out[i] = convertNumber(dtype, v[i]);
      }
    }
  }
  return result;
}

function snake(field: string): string {
  return field.replace(/[A-Z0-9]+/g, (m) => `_${m.toLowerCase()}`);
}

export function isExternal(proto: TensorProto): boolean {
  return proto.dataLocation === EXTERNAL;
}

/** Options for decoding: the folder external data is relative to, and how to name the tensor. */
export interface DecodeOptions {
  /** Folder of the model (or tensor) file; needed for external data. */
  baseDir?: string;
  /** Overrides the location part of messages (default: the tensor's name). */
  where?: string;
  /** Shares external-file checks across the tensors of one model. */
  cache?: ExternalFileCache;
}

/**
 * Checks a TensorProto's dtype, dims and data size without decoding the values, and
 * resolves its external data. Returns what a lazy loader needs.
 */
export function inspectTensorProto(proto: TensorProto, options: DecodeOptions = {}): {
  dtype: DType; shape: number[]; byteLength: number; external?: ExternalDataRef;
} {
  const where = options.where ?? describeTensor(proto.name);
  const dtype = tensorProtoDtype(proto, where);
  const shape = tensorProtoShape(proto, where);
  const count = sizeOf(shape);
  if (!Number.isSafeInteger(count)) throw new LlmccError(`tensor has too many elements [${shape.join(',')}]`, where);
  if (proto.segment) throw new LlmccError('segmented tensors (TensorProto.segment) are not supported', where);
  if (isExternal(proto)) {
    if (dtype === 'string') throw new LlmccError('string tensors cannot use external data', where);
    const external = resolveExternalData(proto, options.baseDir, rawByteLength(dtype, count), where, options.cache);
    return { dtype, shape, byteLength: external.length, external };
  }
  const raw = proto.rawData;
  if (raw && raw.length > 0) {
    const needed = rawByteLength(dtype, count);
    if (dtype === 'string') throw new LlmccError('string tensors cannot use raw_data', where);
    if (raw.length !== needed) {
      throw new LlmccError(`tensor has ${raw.length} bytes of raw_data but ${dtype}[${shape.join(',')}] needs ${needed}`, where);
    }
    return { dtype, shape, byteLength: needed };
  }
  const entries = typedEntryCount(dtype, count);
  const present = typedLength(proto, dtype);
  if (present !== entries) {
    if (present === 0 && count > 0) {
      throw new LlmccError(`tensor ${dtype}[${shape.join(',')}] has no data (no raw_data, ${snake(typedField(dtype))} or external data)`, where);
    }
    throw new LlmccError(
      `tensor has ${present} values in ${snake(typedField(dtype))} but ${dtype}[${shape.join(',')}] needs ${entries}`, where);
  }
  const byteLength = dtype === 'string'
    ? (proto.stringData ?? []).reduce((n, s) => n + s.length, 0)
    : rawByteLength(dtype, count);
  return { dtype, shape, byteLength };
}

/** Decodes a TensorProto in any storage form (external data read now). */
export function decodeTensorProto(proto: TensorProto, options: DecodeOptions = {}): Tensor {
  const where = options.where ?? describeTensor(proto.name);
  const info = inspectTensorProto(proto, options);
  if (info.external) return decodeRawData(info.dtype, info.shape, readExternalData(info.external, where), where);
  const raw = proto.rawData;
  if (raw && raw.length > 0) return decodeRawData(info.dtype, info.shape, raw, where);
  return decodeTypedData(proto, info.dtype, info.shape, where);
}

// ---------------------------------------------------------------------------------------
// Files

/** Reads a serialized TensorProto file (e.g. a backend test's `input_0.pb`). */
export function readTensorFile(file: string): { name: string; tensor: Tensor } {
  let bytes: Uint8Array;
  try {
    bytes = fs.readFileSync(file);
  } catch {
    throw new LlmccError('cannot read tensor file', file);
  }
  let proto: TensorProto;
  try {
    validateWireFormat(bytes, 'TensorProto');
    proto = onnx.TensorProto.decode(bytes);
  } catch (e) {
    if (e instanceof LlmccError) throw new LlmccError(`not a valid TensorProto file: ${e.message}`, file);
    throw new LlmccError(`not a valid TensorProto file: ${(e as Error).message}`, file);
  }
  const name = proto.name ?? '';
  const tensor = decodeTensorProto(proto, { baseDir: path.dirname(file), where: describeTensor(name, file) });
  return { name, tensor };
}

// ---------------------------------------------------------------------------------------
// Encoding

function clampBig(x: number, lo: bigint, hi: bigint): bigint {
  if (!Number.isFinite(x)) return 0n;
  const b = BigInt(Math.trunc(x));
  return b < lo ? lo : b > hi ? hi : b;
}

/** The raw_data bytes of a numeric tensor (little-endian, sub-byte types packed). */
export function encodeRawData(tensor: Tensor): Uint8Array {
  const { dtype } = tensor;
  const values = tensor.numbers();
  const count = values.length;
  const out = new Uint8Array(rawByteLength(dtype, count));
  const buffer = out.buffer;
  switch (dtype) {
    case 'f32': new Float32Array(buffer).set(values); break;
    case 'f64': new Float64Array(buffer).set(values); break;
    case 'i8': new Int8Array(buffer).set(values); break;
    case 'u8': case 'bool': out.set(values); break;
    case 'i16': new Int16Array(buffer).set(values); break;
    case 'u16': new Uint16Array(buffer).set(values); break;
    case 'i32': new Int32Array(buffer).set(values); break;
    case 'u32': new Uint32Array(buffer).set(values); break;
    case 'i64': {
      const v = new BigInt64Array(buffer);
      for (let i = 0; i < count; i++) v[i] = clampBig(values[i], -(2n ** 63n), 2n ** 63n - 1n);
      break;
    }
    case 'u64': {
      const v = new BigUint64Array(buffer);
      for (let i = 0; i < count; i++) v[i] = clampBig(values[i], 0n, 2n ** 64n - 1n);
      break;
    }
    case 'f16': {
      const v = new Uint16Array(buffer);
      for (let i = 0; i < count; i++) v[i] = numberToF16Bits(values[i]);
      break;
    }
    case 'bf16': {
      const v = new Uint16Array(buffer);
      for (let i = 0; i < count; i++) v[i] = numberToBf16Bits(values[i]);
      break;
    }
    case 'i4': case 'u4': case 'i2': case 'u2': case 'f4e2m1': {
      const bits = bitWidth(dtype);
      const perByte = 8 / bits;
      const mask = (1 << bits) - 1;
      for (let i = 0; i < count; i++) {
        const code = dtype === 'f4e2m1' ? encodeMiniFloat('f4e2m1', values[i], false) : values[i] & mask;
        out[Math.floor(i / perByte)] |= code << ((i % perByte) * bits);
      }
      break;
    }
    default: {
      if (!isMiniFloat(dtype)) throw new LlmccError(`cannot encode ${dtype} tensors`);
      for (let i = 0; i < count; i++) out[i] = encodeMiniFloat(dtype, values[i], false);
    }
  }
  return out;
}

/** A serialized TensorProto (raw_data form; strings via string_data). */
export function encodeTensorProto(tensor: Tensor, name: string): Uint8Array {
  const proto: TensorProto = { name, dims: [...tensor.shape], dataType: dtypeToOnnx(tensor.dtype) };
  if (tensor.dtype === 'string') {
    const encoder = new TextEncoder();
    proto.stringData = (tensor.data as string[]).map((s) => encoder.encode(s));
  } else {
    proto.rawData = encodeRawData(tensor);
  }
  return onnx.TensorProto.encode(proto).finish();
}

export function writeTensorFile(file: string, tensor: Tensor, name: string): void {
  fs.writeFileSync(file, encodeTensorProto(tensor, name));
}
