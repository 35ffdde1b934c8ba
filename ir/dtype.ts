/**
 * Element types of the IR. Names are short and stable: they appear in the text IR.
 *
 * In-memory storage used by the reference interpreter (see `TensorData`):
 * - f32 / f64 / integer types up to 32 bits: their natural typed array;
 * - f16, bf16, the float8 and float4 types: a Float32Array whose values are exactly
 *   representable in the narrow type (every write rounds), so arithmetic is plain f32/f64;
 * - i64 / u64: a Float64Array of integers. Exact up to 2^53, which covers every
 *   shape, index and value an LLM graph carries; larger magnitudes lose low bits;
 * - bool: Uint8Array of 0/1; the packed 4- and 2-bit integers: unpacked, one per element;
 * - string: string[].
 */
export const DTYPES = [
  'f32', 'f16', 'bf16', 'f64',
  'f8e4m3fn', 'f8e4m3fnuz', 'f8e5m2', 'f8e5m2fnuz', 'f8e8m0', 'f4e2m1',
  'i8', 'i16', 'i32', 'i64', 'u8', 'u16', 'u32', 'u64',
  'i4', 'u4', 'i2', 'u2', 'bool', 'string',
] as const;

export type DType = (typeof DTYPES)[number];

export function isDType(name: string): name is DType {
  return (DTYPES as readonly string[]).includes(name);
}

/** ONNX TensorProto.DataType numbers. */
const ONNX_CODES: Record<DType, number> = {
  f32: 1, u8: 2, i8: 3, u16: 4, i16: 5, i32: 6, i64: 7, string: 8, bool: 9, f16: 10, f64: 11,
  u32: 12, u64: 13, bf16: 16, f8e4m3fn: 17, f8e4m3fnuz: 18, f8e5m2: 19, f8e5m2fnuz: 20,
  u4: 21, i4: 22, f4e2m1: 23, f8e8m0: 24, u2: 25, i2: 26,
};
const FROM_ONNX = new Map<number, DType>(Object.entries(ONNX_CODES).map(([k, v]) => [v, k as DType]));

export function dtypeToOnnx(dtype: DType): number {
  return ONNX_CODES[dtype];
}

/** The IR dtype for an ONNX data type code, or undefined (complex types, unknown codes). */
export function dtypeFromOnnx(code: number): DType | undefined {
  return FROM_ONNX.get(code);
}

export function isFloat(d: DType): boolean {
  return d === 'f32' || d === 'f16' || d === 'bf16' || d === 'f64' || d.startsWith('f8') || d === 'f4e2m1';
}

export function isInteger(d: DType): boolean {
  return /^[iu]\d+$/.test(d);
}

export function isSigned(d: DType): boolean {
  return d.startsWith('i') || isFloat(d);
}

/** Bits per element in ONNX's packed serialization (bool and string: 8 and 0). */
export function bitWidth(d: DType): number {
  switch (d) {
    case 'f64': case 'i64': case 'u64': return 64;
    case 'f32': case 'i32': case 'u32': return 32;
    case 'f16': case 'bf16': case 'i16': case 'u16': return 16;
    case 'i4': case 'u4': case 'f4e2m1': return 4;
    case 'i2': case 'u2': return 2;
    case 'string': return 0;
    default: return 8;
  }
}

/** Inclusive integer range of an integer dtype (bool: 0..1). */
export function integerRange(d: DType): [number, number] {
  if (d === 'bool') return [0, 1];
  const bits = bitWidth(d);
  if (d.startsWith('u')) return [0, 2 ** bits - 1];
  return [-(2 ** (bits - 1)), 2 ** (bits - 1) - 1];
}
