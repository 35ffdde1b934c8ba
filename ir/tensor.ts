import { type DType, integerRange, isFloat } from './dtype.js';
import { roundToBf16, roundToF16, roundToMiniFloat, type MiniFloat } from './float.js';
import { LlmccError } from './errors.js';

/** Element storage; see dtype.ts for which array each dtype uses. */
export type NumericData =
  | Float32Array | Float64Array
  | Int8Array | Uint8Array | Int16Array | Uint16Array | Int32Array | Uint32Array;
export type TensorData = NumericData | string[];

export function sizeOf(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/**
 * The most elements one tensor may have: the reference interpreter holds every value in
 * memory, so a (hostile or broken) shape beyond this is refused instead of exhausting it.
 * 2^28 elements (1 GiB of f32) still holds the embedding table of a 1B-parameter model.
 */
export const MAX_TENSOR_ELEMENTS = 2 ** 28;

/** Throws LlmccError unless `shape` is a shape a tensor can be allocated with. */
export function checkAllocatable(dtype: DType | undefined, shape: readonly number[]): void {
  if (shape.some((d) => !Number.isSafeInteger(d) || d < 0)) {
    throw new LlmccError(`invalid tensor shape [${shape.join(',')}]: dimensions must be non-negative integers`);
  }
  const size = sizeOf(shape);
  if (size > MAX_TENSOR_ELEMENTS) {
    throw new LlmccError(
      `${dtype ?? 'tensor '}[${shape.join(',')}] has ${size} elements, more than the ${MAX_TENSOR_ELEMENTS} one tensor may hold`);
  }
}

function allocate(dtype: DType, size: number): TensorData {
  switch (dtype) {
    case 'f64': case 'i64': case 'u64': return new Float64Array(size);
    case 'i8': case 'i4': case 'i2': return new Int8Array(size);
    case 'u8': case 'u4': case 'u2': case 'bool': return new Uint8Array(size);
    case 'i16': return new Int16Array(size);
    case 'u16': return new Uint16Array(size);
    case 'i32': return new Int32Array(size);
    case 'u32': return new Uint32Array(size);
    case 'string': return new Array<string>(size).fill('');
    default: return new Float32Array(size); // f32 and the narrow floats
  }
}

/**
 * Converts a number to what `dtype` holds: narrow floats round to nearest even,
 * integers truncate toward zero then wrap (two's complement), bool is x != 0.
 */
export function convertNumber(dtype: DType, x: number): number {
  switch (dtype) {
    case 'f32': return Math.fround(x);
    case 'f64': return x;
    case 'f16': return roundToF16(x);
    case 'bf16': return roundToBf16(x);
    case 'bool': return x !== 0 && !Number.isNaN(x) ? 1 : 0;
    case 'i64': case 'u64': {
      if (!Number.isFinite(x)) return 0;
      const t = Math.trunc(x);
      return dtype === 'u64' && t < 0 ? t + 2 ** 64 : t;
    }
    case 'string': throw new LlmccError('cannot convert a number to a string tensor element');
    default: {
      if (isFloat(dtype)) return roundToMiniFloat(dtype as MiniFloat, x);
      if (!Number.isFinite(x)) return 0;
      const [lo, hi] = integerRange(dtype);
      const span = hi - lo + 1;
      const t = Math.trunc(x);
      return ((((t - lo) % span) + span) % span) + lo;
    }
  }
}

/** A dense tensor held in memory: the value type of the reference interpreter. */
export class Tensor {
  readonly dtype: DType;
  readonly shape: readonly number[];
  readonly data: TensorData;

  constructor(dtype: DType, shape: readonly number[], data: TensorData) {
    if (data.length !== sizeOf(shape)) {
      throw new LlmccError(`tensor data has ${data.length} elements but shape [${shape.join(',')}] needs ${sizeOf(shape)}`);
    }
    this.dtype = dtype;
    this.shape = shape;
    this.data = data;
  }

  static zeros(dtype: DType, shape: readonly number[]): Tensor {
    checkAllocatable(dtype, shape);
    return new Tensor(dtype, [...shape], allocate(dtype, sizeOf(shape)));
  }

  /** Builds a tensor from plain numbers, converting each as the dtype requires. */
  static fromNumbers(dtype: DType, shape: readonly number[], values: ArrayLike<number>): Tensor {
    const t = Tensor.zeros(dtype, shape);
    const out = t.data as NumericData;
    // Typed arrays of the exact kind already round/wrap correctly on assignment.
    const direct = dtype === 'f32' || dtype === 'f64' || dtype === 'i8' || dtype === 'u8' || dtype === 'i16' ||
      dtype === 'u16' || dtype === 'i32' || dtype === 'u32';
    if (direct && ArrayBuffer.isView(values) && values.constructor === out.constructor && values.length === out.length) {
      // The same typed-array kind: already this dtype's values (a copy, e.g. out of a wasm arena).
      (out as Float32Array).set(values as unknown as Float32Array);
    } else if (direct && values.length === out.length) {
      for (let i = 0; i < out.length; i++) {
        const v = values[i];
        out[i] = Number.isFinite(v) || isFloat(dtype) ? v : 0;
      }
    } else {
      for (let i = 0; i < out.length; i++) out[i] = convertNumber(dtype, values[i]);
    }
    return t;
  }

  static scalar(dtype: DType, value: number): Tensor {
    return Tensor.fromNumbers(dtype, [], [value]);
  }

  static strings(shape: readonly number[], values: string[]): Tensor {
    return new Tensor('string', [...shape], values);
  }

  get size(): number {
    return this.data.length;
  }

  get rank(): number {
    return this.shape.length;
  }

  /** Numeric view of the elements; throws for string tensors. */
  numbers(): NumericData {
    if (Array.isArray(this.data)) throw new LlmccError('expected a numeric tensor, got string');
    return this.data;
  }

  /** Element i as a number (string tensors throw). */
  get(i: number): number {
    return this.numbers()[i];
  }

  /** The elements as a plain number array, e.g. for shape and axes inputs. */
  toArray(): number[] {
    return Array.from(this.numbers());
  }

  /** Same data, different shape (sizes must agree). */
  reshape(shape: readonly number[]): Tensor {
    return new Tensor(this.dtype, [...shape], this.data);
  }
}
