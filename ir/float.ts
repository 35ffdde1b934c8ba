/**
 * Narrow floating-point formats: bit-level encode/decode and rounding to each format.
 * f16 and bf16 round to nearest even; the 8- and 4-bit formats use a table of their
 * finite values (they have at most 256), so one nearest-even search serves them all.
 */
const f32Scratch = new Float32Array(1);
const u32Scratch = new Uint32Array(f32Scratch.buffer);

export function f16BitsToNumber(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 0x1f) return frac ? NaN : sign * Infinity;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

/** Round-to-nearest-even conversion of a number to IEEE half bits. */
export function numberToF16Bits(value: number): number {
  f32Scratch[0] = value;
  const x = u32Scratch[0];
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  if (exp === 0xff) return sign | 0x7c00 | ((x & 0x7fffff) ? 0x200 : 0);
  // Re-round from the f64 value to avoid double rounding through f32.
  const a = Math.abs(value);
  if (a >= 65520) return sign | 0x7c00;
  if (a < 2 ** -14) {
    // Subnormal half: quantum 2^-24, ties to even (1024 lands on the smallest normal).
    const q = a * 2 ** 24;
    let fl = Math.floor(q);
    const rem = q - fl;
    if (rem > 0.5 || (rem === 0.5 && fl % 2 === 1)) fl += 1;
    return sign | fl;
  }
  const e = Math.floor(Math.log2(a));
  let ee = e;
  let scaled = a / 2 ** ee;
  if (scaled >= 2) { ee += 1; scaled /= 2; }
  if (scaled < 1) { ee -= 1; scaled *= 2; }
  const q = (scaled - 1) * 1024;
  let fl = Math.floor(q);
  const rem = q - fl;
  if (rem > 0.5 || (rem === 0.5 && fl % 2 === 1)) fl += 1;
  if (fl === 1024) { fl = 0; ee += 1; }
  if (ee > 15) return sign | 0x7c00;
  return sign | ((ee + 15) << 10) | fl;
}

export function roundToF16(value: number): number {
  return f16BitsToNumber(numberToF16Bits(value));
}

export function bf16BitsToNumber(b: number): number {
  u32Scratch[0] = (b & 0xffff) << 16;
  return f32Scratch[0];
}

/** Round-to-nearest-even conversion to bfloat16 bits (NaN stays NaN). */
export function numberToBf16Bits(value: number): number {
  f32Scratch[0] = value;
  const x = u32Scratch[0];
  if ((x & 0x7fffffff) > 0x7f800000) return ((x >>> 16) | 0x40) & 0xffff;
  const rounded = x + 0x7fff + ((x >>> 16) & 1);
  return (rounded >>> 16) & 0xffff;
}

export function roundToBf16(value: number): number {
  return bf16BitsToNumber(numberToBf16Bits(value));
}

export type MiniFloat = 'f8e4m3fn' | 'f8e4m3fnuz' | 'f8e5m2' | 'f8e5m2fnuz' | 'f8e8m0' | 'f4e2m1';

interface MiniFloatSpec {
  bits: number;
  expBits: number;
  manBits: number;
  bias: number;
  /** How the top codes are spent: IEEE-like inf/NaN, only NaN at all-ones, or NaN at -0 (fnuz). */
  special: 'ieee' | 'fn' | 'fnuz' | 'none' | 'e8m0';
}

const SPECS: Record<MiniFloat, MiniFloatSpec> = {
  f8e4m3fn: { bits: 8, expBits: 4, manBits: 3, bias: 7, special: 'fn' },
  f8e4m3fnuz: { bits: 8, expBits: 4, manBits: 3, bias: 8, special: 'fnuz' },
  f8e5m2: { bits: 8, expBits: 5, manBits: 2, bias: 15, special: 'ieee' },
  f8e5m2fnuz: { bits: 8, expBits: 5, manBits: 2, bias: 16, special: 'fnuz' },
  f8e8m0: { bits: 8, expBits: 8, manBits: 0, bias: 127, special: 'e8m0' },
  f4e2m1: { bits: 4, expBits: 2, manBits: 1, bias: 1, special: 'none' },
};

export function decodeMiniFloat(type: MiniFloat, code: number): number {
  const s = SPECS[type];
  if (s.special === 'e8m0') return code === 0xff ? NaN : 2 ** (code - 127);
  const signBit = 1 << (s.bits - 1);
  const sign = code & signBit ? -1 : 1;
  const exp = (code >> s.manBits) & ((1 << s.expBits) - 1);
  const man = code & ((1 << s.manBits) - 1);
  const expMax = (1 << s.expBits) - 1;
  if (s.special === 'fnuz' && code === signBit) return NaN;
  if (s.special === 'fn' && exp === expMax && man === (1 << s.manBits) - 1) return NaN;
  if (s.special === 'ieee' && exp === expMax) return man ? NaN : sign * Infinity;
  const value = exp === 0 ? man * 2 ** (1 - s.bias - s.manBits) : (1 + man / (1 << s.manBits)) * 2 ** (exp - s.bias);
  return sign * value;
}

/** Positive finite values by code, ascending (codes 0..n-1 of the positive half are monotone). */
const positiveTables = new Map<MiniFloat, number[]>();
function positives(type: MiniFloat): number[] {
  let table = positiveTables.get(type);
  if (!table) {
    const s = SPECS[type];
    const half = s.special === 'e8m0' ? 1 << s.bits : 1 << (s.bits - 1);
    table = [];
    for (let c = 0; c < half; c++) {
      const v = decodeMiniFloat(type, c);
      if (!Number.isFinite(v)) break;
      table.push(v);
    }
    positiveTables.set(type, table);
  }
  return table;
}

/**
 * Encode to the narrow format, round to nearest even. Values beyond the largest finite
 * value saturate to it when `saturate`, else become inf (e5m2) or NaN (formats without inf).
 */
export function encodeMiniFloat(type: MiniFloat, value: number, saturate = true): number {
  const s = SPECS[type];
  const table = positives(type);
  const signBit = s.special === 'e8m0' ? 0 : 1 << (s.bits - 1);
  // f4e2m1 has no NaN; ml_dtypes (the ONNX reference) maps NaN to its -0 code.
  const nanCode = s.special === 'fnuz' || s.special === 'none' ? signBit : s.special === 'e8m0' ? 0xff : 0x7f;
  if (Number.isNaN(value)) return nanCode;
  const negative = value < 0 && s.special !== 'e8m0';
  const a = Math.abs(value);
  const max = table[table.length - 1];
  const withSign = (code: number): number => (negative && !(s.special === 'fnuz' && code === 0) ? code | signBit : code);
  if (a === Infinity || a > max) {
    const spacing = max - table[table.length - 2];
    const overflows = a === Infinity || a >= max + spacing / 2;
    if (!overflows || saturate) return withSign(table.length - 1);
    if (s.special === 'ieee') return withSign(0x7c);
    if (s.special === 'none') return withSign(table.length - 1);
    return s.special === 'fn' ? withSign(0x7f) : nanCode;
  }
  let lo = 0;
  let hi = table.length - 1;
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (table[mid] <= a) lo = mid; else hi = mid;
  }
  if (a <= table[lo]) return withSign(lo);
  const dLo = a - table[lo];
  const dHi = table[hi] - a;
  const code = dLo < dHi ? lo : dHi < dLo ? hi : lo % 2 === 0 ? lo : hi;
  return withSign(code);
}

export function roundToMiniFloat(type: MiniFloat, value: number, saturate = true): number {
  return decodeMiniFloat(type, encodeMiniFloat(type, value, saturate));
}
