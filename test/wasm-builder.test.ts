/**
 * The wasm module builder and the math library: every kernel-form construct is built into one
 * module, run in Node, and compared with a JS model (f64 math rounded to f32 for the
 * transcendentals, ir/float.ts for the f16 conversions).
 */
import { beforeAll, describe, expect, it } from 'vitest';
import {
  KernelBuilder, addSat, bitcast, cast, div, dotI16, dotI8, i32, lookup16, pairwiseAdd, rem, shr, shuffle, unary, widen,
  max, min, select, lt, reduce, type Expr,
} from '../codegen/builder.js';
import type { Kernel, UnaryOp } from '../codegen/kernel.js';
import { WasmHarness } from '../codegen/wasm/harness.js';
import { f16BitsToNumber, numberToF16Bits } from '../ir/float.js';

const MATH_OPS: UnaryOp[] = ['exp', 'log', 'tanh', 'erf', 'sin', 'cos', 'sigmoid'];

function erfRef(x: number): number {
  const a = Math.abs(x);
  let s: number;
  if (a < 3) {
    let term = a;
    let sum = a;
    for (let n = 1; n < 200; n++) {
      term *= (-a * a) / n;
      sum += term / (2 * n + 1);
    }
    s = (sum * 2) / Math.sqrt(Math.PI);
  } else {
    let f = 0;
    for (let n = 60; n >= 1; n--) f = n / 2 / (a + f);
    s = 1 - Math.exp(-a * a) / Math.sqrt(Math.PI) / (a + f);
  }
  return x < 0 ? -s : s;
}

const REFERENCE: Record<string, (x: number) => number> = {
  exp: Math.exp, log: Math.log, tanh: Math.tanh, sin: Math.sin, cos: Math.cos, erf: erfRef,
  sigmoid: (x) => (x >= 0 ? 1 / (1 + Math.exp(-x)) : Math.exp(x) / (1 + Math.exp(x))),
};

/** A map kernel y[i] = f(x[i]) over f32, scalar or f32x4 with a scalar tail. */
function mapKernel(name: string, elemIn: 'f32' | 'i32' | 'u32' | 'f16' | 'u8', elemOut: 'f32' | 'i32' | 'u32' | 'f16' | 'u8', vector: boolean, f: (x: Expr) => Expr): Kernel {
  const k = new KernelBuilder(name);
  const x = k.buffer('x', elemIn);
  const y = k.buffer('y', elemOut, 'write');
  const n = k.scalar('n');
  if (vector) k.stripLoop('i', 0, n, 4, (i) => y.storeVec(i, f(x.loadVec(i, 'f32x4'))), (i) => y.store(i, f(x.load(i))));
  else k.loop('i', 0, n, (i) => y.store(i, f(x.load(i))));
  return k.build();
}

/** A kernel on two 16-byte vectors a, b → 16 bytes out, for the SIMD constructs. */
function vecKernel(name: string, f: (a: (t: 'i8x16' | 'u8x16' | 'i16x8' | 'i32x4') => Expr, b: (t: 'i8x16' | 'u8x16' | 'i16x8' | 'i32x4') => Expr) => Expr): Kernel {
  const k = new KernelBuilder(name);
  const a = k.buffer('a', 'u8');
  const b = k.buffer('b', 'u8');
  const y = k.buffer('y', 'u8', 'write');
  y.storeVec(0, f((t) => a.loadVec(0, t as 'i8x16'), (t) => b.loadVec(0, t as 'i8x16')));
  return k.build();
}

let h: WasmHarness;

beforeAll(() => {
  const kernels: Kernel[] = [];
  for (const op of MATH_OPS) {
    kernels.push(mapKernel(`${op}_s`, 'f32', 'f32', false, (x) => unary(op, x)));
    kernels.push(mapKernel(`${op}_v`, 'f32', 'f32', true, (x) => unary(op, x)));
  }
  kernels.push(mapKernel('f16_in', 'f16', 'f32', false, (x) => x));
  kernels.push(mapKernel('f16_in_v', 'f16', 'f32', true, (x) => x));
  kernels.push(mapKernel('f16_out', 'f32', 'f16', false, (x) => x));
  kernels.push(mapKernel('f16_round', 'f32', 'f32', false, (x) => cast(cast(x, 'f16'), 'f32')));
  kernels.push(mapKernel('trunc_sat', 'f32', 'i32', false, (x) => cast(x, 'i32')));
  kernels.push(mapKernel('to_u8', 'i32', 'u8', false, (x) => x));
  kernels.push(mapKernel('i32_div7', 'i32', 'i32', false, (x) => div(x, 7)));
  kernels.push(mapKernel('i32_rem7', 'i32', 'i32', false, (x) => rem(x, 7)));
  kernels.push(mapKernel('i32_shr', 'i32', 'i32', false, (x) => shr(x, 3)));
  kernels.push(mapKernel('u32_shr', 'u32', 'u32', false, (x) => shr(x, 3)));
  kernels.push(mapKernel('u32_div7', 'u32', 'u32', false, (x) => div(x, 7)));
  kernels.push(mapKernel('i32_minmax', 'i32', 'i32', false, (x) => max(min(x, 100), -100)));
  kernels.push(mapKernel('relu_sel', 'f32', 'f32', true, (x) => select(lt(x, 0), 0, x)));
  kernels.push(mapKernel('bits', 'f32', 'i32', false, (x) => bitcast(x, 'i32')));
  kernels.push(vecKernel('swizzle', (a, b) => lookup16(a('i8x16'), b('i8x16'))));
  kernels.push(vecKernel('widen_lo_s', (a) => widen('low', true, a('i8x16'))));
  kernels.push(vecKernel('widen_hi_u', (a) => widen('high', false, a('u8x16'))));
  kernels.push(vecKernel('pairwise_s', (a) => pairwiseAdd(true, a('i8x16'))));
  // A u8 buffer loaded as i16x8 would widen 8 bytes; reinterpret a full 16-byte load instead.
  kernels.push(vecKernel('dot', (a, b) => dotI16(bitcast(a('i8x16'), 'i16x8'), bitcast(b('i8x16'), 'i16x8'))));
  // vdotq_s32 semantics, accumulating onto a (read as i32x4).
  kernels.push(vecKernel('dot_i8', (a, b) => dotI8(bitcast(a('i8x16'), 'i32x4'), a('i8x16'), b('i8x16'))));
  kernels.push(vecKernel('shuffle', (a, b) => shuffle(a('i8x16'), b('i8x16'), [0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23])));
  kernels.push(vecKernel('add_sat_s', (a, b) => addSat(a('i8x16'), b('i8x16'))));
  {
    const k = new KernelBuilder('hsum');
    const x = k.buffer('x', 'f32');
    const y = k.buffer('y', 'f32', 'write');
    y.store(0, reduce('add', x.loadVec(0, 'f32x4')));
    y.store(1, reduce('max', x.loadVec(0, 'f32x4')));
    y.store(2, reduce('min', x.loadVec(0, 'f32x4')));
    kernels.push(k.build());
  }
  {
    // Nested loops with steps, ifs and a mutable accumulator.
    const k = new KernelBuilder('tri_sum');
    const y = k.buffer('y', 'i32', 'write');
    const n = k.scalar('n');
    const acc = k.mut('acc', i32(0));
    k.loop('i', 0, n, (i) => {
      k.loop('j', 0, i, (j) => k.if(lt(j, 5), () => k.set(acc, { kind: 'binary', op: 'add', a: acc, b: j, type: 'i32' })), { step: 2 });
    });
    y.store(0, acc);
    kernels.push(k.build());
  }
  h = new WasmHarness(kernels);
});

function runMap(name: string, input: ArrayLike<number>, kind: 'f32' | 'i32' | 'u16' | 'u32' = 'f32', outKind: 'f32' | 'i32' | 'u16' | 'u8' = 'f32'): number[] {
  h.reset();
  const px = kind === 'f32' ? h.writeF32(input) : kind === 'u16' ? h.writeU16(input) : h.writeI32(input);
  const py = h.alloc(input.length * 4);
  h.call(name, px, py, input.length);
  const view = outKind === 'f32' ? h.f32(py, input.length) : outKind === 'u16' ? h.u16(py, input.length) : outKind === 'u8' ? h.u8(py, input.length) : h.i32(py, input.length);
  return Array.from(view);
}

function mathInputs(): Float32Array {
  const values: number[] = [];
  for (let i = 0; i <= 4000; i++) values.push(((i - 2000) / 2000) * 30);
  for (let i = 0; i < 600; i++) values.push(Math.exp((i - 300) / 10));
  values.push(0, -0, 1e-30, -1e-30, 1e-40, 88.5, 89, 100, -87, -104, -110, Infinity, -Infinity, NaN, 1, -1, 0.625, 0.9999, 1.0001, 3.9, 10);
  return Float32Array.from(values);
}

describe('mathlib through the wasm builder', () => {
  for (const op of MATH_OPS) {
    for (const form of ['s', 'v'] as const) {
      it(`${op} (${form === 's' ? 'f32' : 'f32x4'}) is within a few ulps of the f64 reference`, () => {
        const xs = mathInputs();
        const out = runMap(`${op}_${form}`, xs);
        for (let i = 0; i < xs.length; i++) {
          const expected = Math.fround(REFERENCE[op](xs[i]));
          const actual = out[i];
          if (actual === expected) continue;
          if (Number.isNaN(expected)) {
            expect(actual, `${op}(${xs[i]})`).toBeNaN();
            continue;
          }
          if (op === 'sin' || op === 'cos') {
            // The three-part π/2 reduction is documented accurate for |x| up to about 1e4.
            if (Math.abs(xs[i]) > 1e4) continue;
            expect(Math.abs(actual - expected), `${op}(${xs[i]})`).toBeLessThan(2e-7);
            continue;
          }
          const tolerance = 4e-7 * Math.abs(expected) + 1e-38;
          expect(Math.abs(actual - expected), `${op}(${xs[i]}) = ${actual}, expected ${expected}`).toBeLessThanOrEqual(tolerance);
        }
      });
    }
  }
});

describe('f16 conversions', () => {
  it('decodes every half exactly (scalar and vector loads)', () => {
    const all = Array.from({ length: 65536 }, (_, i) => i);
    for (const name of ['f16_in', 'f16_in_v']) {
      const out = runMap(name, all, 'u16');
      for (let i = 0; i < all.length; i++) {
        const e = f16BitsToNumber(i);
        if (Number.isNaN(e)) expect(out[i]).toBeNaN();
        else expect(Object.is(out[i], e) || out[i] === e, `half 0x${i.toString(16)}`).toBe(true);
      }
    }
  });

  it('encodes f32 to the nearest half (ties to even, overflow to inf, NaN stays NaN)', () => {
    const xs: number[] = [0, -0, 1, -1, 65504, 65519.99, 65520, 1e6, -1e6, 6e-8, 3e-8, 2.98e-8, 1e-10, Infinity, -Infinity, NaN];
    for (let i = 0; i < 5000; i++) xs.push(Math.fround((Math.random() - 0.5) * 2 ** ((i % 40) - 26)));
    // Exact ties between neighbouring halves.
    for (let h = 1; h < 2000; h += 7) xs.push(Math.fround((f16BitsToNumber(h) + f16BitsToNumber(h + 1)) / 2));
    const f = Float32Array.from(xs);
    const bits = runMap('f16_out', f, 'f32', 'u16');
    const rounded = runMap('f16_round', f);
    for (let i = 0; i < f.length; i++) {
      const expected = numberToF16Bits(f[i]);
      if (Number.isNaN(f[i])) {
        expect(Number.isNaN(f16BitsToNumber(bits[i]))).toBe(true);
        expect(rounded[i]).toBeNaN();
        continue;
      }
      expect(bits[i], `f16(${f[i]})`).toBe(expected);
      expect(rounded[i]).toBe(f16BitsToNumber(expected));
    }
  });
});

describe('scalar integer and conversion semantics', () => {
  const ints = [0, 1, -1, 7, -7, 8, -8, 100, -100, 2 ** 31 - 1, -(2 ** 31), 123456789, -987654321];
  it('divides, takes remainders and shifts with the signedness of the type', () => {
    expect(runMap('i32_div7', ints, 'i32', 'i32')).toEqual(ints.map((x) => Math.trunc(x / 7) | 0));
    expect(runMap('i32_rem7', ints, 'i32', 'i32')).toEqual(ints.map((x) => (x % 7) | 0));
    expect(runMap('i32_shr', ints, 'i32', 'i32')).toEqual(ints.map((x) => x >> 3));
    expect(runMap('u32_shr', ints, 'u32', 'i32')).toEqual(ints.map((x) => (x >>> 3) | 0));
    expect(runMap('u32_div7', ints, 'u32', 'i32')).toEqual(ints.map((x) => Math.floor((x >>> 0) / 7) | 0));
    expect(runMap('i32_minmax', ints, 'i32', 'i32')).toEqual(ints.map((x) => Math.max(Math.min(x, 100), -100)));
  });

  it('truncates floats toward zero with saturation, and stores bytes wrapped', () => {
    const fs = [0.5, -0.5, 1.9, -1.9, 3e9, -3e9, NaN, Infinity, -Infinity];
    expect(runMap('trunc_sat', fs, 'f32', 'i32')).toEqual([0, 0, 1, -1, 2 ** 31 - 1, -(2 ** 31), 0, 2 ** 31 - 1, -(2 ** 31)]);
    expect(runMap('to_u8', [0, 255, 256, -1, 300], 'i32', 'u8')).toEqual([0, 255, 0, 255, 44]);
    expect(runMap('bits', [1, -2], 'f32', 'i32')).toEqual([0x3f800000, -1073741824]);
  });

  it('selects lane-wise with comparison masks', () => {
    const xs = [-1, 2, -0.5, NaN, 3, -4, 5];
    const out = runMap('relu_sel', xs);
    expect(out.slice(0, 3)).toEqual([0, 2, 0]);
    expect(out[3]).toBeNaN();
    expect(out.slice(4)).toEqual([3, 0, 5]);
  });

  it('runs nested loops with steps, ifs and mutable locals', () => {
    h.reset();
    const py = h.alloc(4);
    h.call('tri_sum', py, 10);
    let expected = 0;
    for (let i = 0; i < 10; i++) for (let j = 0; j < i; j += 2) if (j < 5) expected += j;
    expect(h.i32(py, 1)[0]).toBe(expected);
  });
});

describe('SIMD constructs', () => {
  const a = Uint8Array.from({ length: 16 }, (_, i) => (i * 37 + 200) & 0xff);
  const b = Uint8Array.from([0, 15, 3, 16, 255, 7, 8, 1, 2, 100, 14, 13, 12, 11, 10, 9]);
  const run = (name: string): Uint8Array => {
    h.reset();
    const pa = h.writeU8(a);
    const pb = h.writeU8(b);
    const py = h.alloc(16);
    h.call(name, pa, pb, py);
    return Uint8Array.from(h.u8(py, 16));
  };
  const sa = Int8Array.from(a);
  const sb = Int8Array.from(b);

  it('lookup16 is a 16-entry table lookup with zero for indices ≥ 16', () => {
    expect(Array.from(run('swizzle'))).toEqual(Array.from(b, (i) => (i < 16 ? a[i] : 0)));
  });
  it('widens, adds pairwise, dots and shuffles', () => {
    expect(Array.from(new Int16Array(run('widen_lo_s').buffer))).toEqual(Array.from(sa.slice(0, 8)));
    expect(Array.from(new Int16Array(run('widen_hi_u').buffer))).toEqual(Array.from(a.slice(8)));
    expect(Array.from(new Int16Array(run('pairwise_s').buffer))).toEqual(Array.from({ length: 8 }, (_, i) => sa[2 * i] + sa[2 * i + 1]));
    const ia = new Int16Array(a.buffer.slice(0));
    const ib = new Int16Array(b.buffer.slice(0));
    expect(Array.from(new Int32Array(run('dot').buffer))).toEqual(Array.from({ length: 4 }, (_, i) => ia[2 * i] * ib[2 * i] + ia[2 * i + 1] * ib[2 * i + 1]));
    expect(Array.from(run('shuffle'))).toEqual(Array.from({ length: 16 }, (_, i) => (i % 2 === 0 ? a[i / 2] : b[(i - 1) / 2])));
    expect(Array.from(new Int8Array(run('add_sat_s').buffer))).toEqual(Array.from({ length: 16 }, (_, i) => Math.max(-128, Math.min(127, sa[i] + sb[i]))));
  });
  it('dot_i8 adds each 4 adjacent byte products to an i32 lane (vdotq_s32), −128·−128 included', () => {
    const dot = (x: Uint8Array, y: Uint8Array): number[] => {
      h.reset();
      const px = h.writeU8(x);
      const py = h.writeU8(y);
      const out = h.alloc(16);
      h.call('dot_i8', px, py, out);
      return Array.from(h.i32(out, 4));
    };
    const model = (x: Uint8Array, y: Uint8Array): number[] => {
      const acc = new Int32Array(x.buffer.slice(0));
      const sx = new Int8Array(x.buffer.slice(0));
      const sy = new Int8Array(y.buffer.slice(0));
      return Array.from({ length: 4 }, (_, i) => {
        let total = acc[i];
        for (let j = 0; j < 4; j++) total += sx[4 * i + j] * sy[4 * i + j];
        return total | 0;
      });
    };
    const extremes = Uint8Array.from({ length: 16 }, (_, i) => (i < 8 ? 0x80 : i < 12 ? 0x7f : 0x81));
    const pairs: [Uint8Array, Uint8Array][] = [[a, b], [extremes, extremes], [extremes, Uint8Array.from(extremes, (v) => v ^ 0xff)], [b, a]];
    for (const [x, y] of pairs) expect(dot(x, y)).toEqual(model(x, y));
    // −128·−128 four times is 65536: a lane no i16 intermediate could hold.
    expect(dot(extremes, extremes)[1]).toEqual(new Int32Array(extremes.buffer.slice(0))[1] + 65536);
  });
  it('reduces the lanes of a vector', () => {
    h.reset();
    const px = h.writeF32([1.5, -2, 8, 0.25]);
    const py = h.alloc(12);
    h.call('hsum', px, py);
    expect(Array.from(h.f32(py, 3))).toEqual([7.75, 8, -2]);
  });
});
