import type { DType } from '../../dtype.js';
import { dtypeFromOnnx, isInteger } from '../../dtype.js';
import { decodeMiniFloat, roundToMiniFloat, type MiniFloat } from '../../float.js';
import { Tensor, convertNumber } from '../../tensor.js';
import type { OpContextBase } from '../types.js';

/**
 * Element conversion shared by Cast and CastLike: every dtype pair, including strings,
 * the float8/float4 formats (with `saturate`), float8e8m0 (with `round_mode`) and the
 * unpacked 4- and 2-bit integers (which wrap, like every integer target).
 */
export type RoundMode = 'up' | 'down' | 'nearest';

export interface CastOptions {
  saturate: boolean;
  roundMode: RoundMode;
}

const FLOAT8: ReadonlySet<DType> = new Set(['f8e4m3fn', 'f8e4m3fnuz', 'f8e5m2', 'f8e5m2fnuz']);

/** Reads Cast/CastLike's saturate and round_mode attributes. */
export function castOptions(ctx: OpContextBase): CastOptions {
  const saturate = ctx.attrs.int('saturate', 1);
  if (saturate !== 0 && saturate !== 1) throw ctx.attrs.error(`saturate must be 0 or 1, got ${saturate}`);
  const roundMode = ctx.attrs.string('round_mode', 'up');
  if (roundMode !== 'up' && roundMode !== 'down' && roundMode !== 'nearest') {
    throw ctx.attrs.error(`unsupported round_mode '${roundMode}' (expected up, down or nearest)`);
  }
  return { saturate: saturate === 1, roundMode };
}

/** TensorProto.DataType names, for Cast-1's string-valued `to`. */
const ONNX_TYPE_NAMES: Record<string, number> = {
  FLOAT: 1, UINT8: 2, INT8: 3, UINT16: 4, INT16: 5, INT32: 6, INT64: 7, STRING: 8, BOOL: 9,
  FLOAT16: 10, DOUBLE: 11, UINT32: 12, UINT64: 13, BFLOAT16: 16,
};

/** Cast's target dtype from its `to` attribute (an int code; a type name before opset 6). */
export function castTarget(ctx: OpContextBase): DType {
  const attr = ctx.node.attributes.get('to');
  if (!attr) throw ctx.attrs.error("missing required attribute 'to'");
  const code = attr.kind === 'string' ? ONNX_TYPE_NAMES[attr.value.toUpperCase()] : ctx.attrs.int('to');
  const dtype = code === undefined ? undefined : dtypeFromOnnx(code);
  if (!dtype) throw ctx.attrs.error(`unsupported target type ${attr.kind === 'string' ? attr.value : code} for Cast`);
  return dtype;
}

const f32Scratch = new Float32Array(1);
const u32Scratch = new Uint32Array(f32Scratch.buffer);

/**
 * To float8e8m0 (a bare power-of-two exponent, unsigned, code 0xFF = NaN) from the f32
 * bits of |x|: `up` rounds any mantissa up to the next power of two, `down` drops it,
 * `nearest` rounds at 1.5 * 2^e with ties up. Overflow saturates to 2^127 or gives NaN.
 */
export function roundToE8m0(x: number, options: CastOptions): number {
  if (Number.isNaN(x)) return NaN;
  const a = Math.abs(x);
  if (a === Infinity) return options.saturate ? 2 ** 127 : NaN;
  f32Scratch[0] = a;
  const bits = u32Scratch[0];
  let exponent = (bits >>> 23) & 0xff;
  const mantissa = bits & 0x7fffff;
  if (options.roundMode === 'up' && mantissa !== 0) exponent += 1;
  else if (options.roundMode === 'nearest' && mantissa >= 0x400000) exponent += 1;
  if (exponent >= 0xff) return options.saturate ? 2 ** 127 : NaN;
  return decodeMiniFloat('f8e8m0', exponent);
}

/** One number to the target numeric dtype. */
function numberTo(dtype: DType, x: number, options: CastOptions): number {
  if (dtype === 'bool') return x !== 0 ? 1 : 0; // NaN is truthy, as in numpy
  if (FLOAT8.has(dtype)) return roundToMiniFloat(dtype as MiniFloat, x, options.saturate);
  if (dtype === 'f8e8m0') return roundToE8m0(x, options);
  return convertNumber(dtype, x);
}

/** Parses a string element: plain or scientific numbers, INF/+INF/-INF/NaN in any case. */
export function parseNumber(text: string): number {
  const s = text.trim();
  const lower = s.toLowerCase();
  if (lower === 'inf' || lower === '+inf' || lower === 'infinity' || lower === '+infinity') return Infinity;
  if (lower === '-inf' || lower === '-infinity') return -Infinity;
  if (lower === 'nan' || lower === '+nan' || lower === '-nan') return NaN;
  if (s === '') return NaN;
  const value = Number(s);
  return Number.isNaN(value) ? parseFloat(s) : value;
}

/** Shortest decimal digits that read back as `x` in `dtype`: [digits, decimal exponent]. */
function shortestDigits(x: number, dtype: DType): [string, number] {
  const maxDigits = dtype === 'f64' ? 17 : 9;
  for (let p = 1; p <= maxDigits; p++) {
    const text = x.toExponential(p - 1);
    if (p === maxDigits || convertNumber(dtype, Number(text)) === x) {
      const [mantissa, exp] = text.split('e');
      const digits = mantissa.replace('-', '').replace('.', '').replace(/0+$/, '') || '0';
      return [digits, Number(exp)];
    }
  }
  throw new Error('unreachable');
}

/**
 * Formats a float the way numpy's str() does (ONNX's reference casts with astype(str)):
 * the shortest round-tripping digits, positional for 1e-4 <= |x| < 1e16 with at least one
 * fractional digit ("1.0", "314.15926"), otherwise scientific ("1e+20", "1.5e-05").
 */
export function formatFloat(x: number, dtype: DType): string {
  if (Number.isNaN(x)) return 'nan';
  if (x === Infinity) return 'inf';
  if (x === -Infinity) return '-inf';
  const sign = x < 0 || Object.is(x, -0) ? '-' : '';
  const a = Math.abs(x);
  if (a === 0) return `${sign}0.0`;
  const [digits, exp] = shortestDigits(a, dtype);
  // numpy compares in the value's own precision: f32(1e-4) still prints positionally.
  if (a >= convertNumber(dtype, 1e-4) && a < convertNumber(dtype, 1e16)) {
    let intPart: string;
    let fracPart: string;
    if (exp >= 0) {
      const padded = digits.padEnd(exp + 1, '0');
      intPart = padded.slice(0, exp + 1);
      fracPart = padded.slice(exp + 1);
    } else {
      intPart = '0';
      fracPart = '0'.repeat(-exp - 1) + digits;
    }
    return `${sign}${intPart}.${fracPart || '0'}`;
  }
  const mantissa = digits.length > 1 ? `${digits[0]}.${digits.slice(1)}` : digits;
  const expText = String(Math.abs(exp)).padStart(2, '0');
  return `${sign}${mantissa}e${exp < 0 ? '-' : '+'}${expText}`;
}

function formatElement(dtype: DType, x: number): string {
  if (dtype === 'bool') return x ? 'True' : 'False';
  if (isInteger(dtype)) return String(x);
  return formatFloat(x, dtype);
}

/** Casts a whole tensor. */
export function castTensor(input: Tensor, to: DType, options: CastOptions): Tensor {
  const shape = [...input.shape];
  if (input.dtype === 'string') {
    const texts = input.data as string[];
    if (to === 'string') return Tensor.strings(shape, [...texts]);
    const out = Tensor.zeros(to, shape);
    const data = out.numbers();
    for (let i = 0; i < texts.length; i++) data[i] = numberTo(to, parseNumber(texts[i]), options);
    return out;
  }
  const source = input.numbers();
  if (to === 'string') {
    return Tensor.strings(shape, Array.from(source, (x) => formatElement(input.dtype, x)));
  }
  const out = Tensor.zeros(to, shape);
  const data = out.numbers();
  if (to === input.dtype) {
    data.set(source);
    return out;
  }
  for (let i = 0; i < source.length; i++) data[i] = numberTo(to, source[i], options);
  return out;
}

/** Whether a cast passes integer shape values through unchanged (int → int; shape values are small). */
export function castKeepsShapeValue(from: DType, to: DType): boolean {
  return isInteger(from) && isInteger(to);
}
