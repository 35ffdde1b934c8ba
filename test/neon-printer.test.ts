/**
 * The C printer (codegen/c): hand-built kernels covering every Expr kind and vector type, and
 * the real LutMatMul fast-path kernel, printed to C, built and run for real — under qemu
 * (`-cpu max` with +dotprod and `-cpu cortex-a53` without) and on the host through SIMDe —
 * and compared with the same kernels built for WASM and run in Node (the kernel form's
 * reference semantics).
 */
import { beforeAll, describe, expect, it } from 'vitest';
import {
  KernelBuilder, abs, add, addSat, and, bitcast, cast, ceil, constant, cos, div, eq, erf, exp, extract, floor, ge, gt,
  le, log, lookup16, lt, max, min, mul, ne, nearest, neg, not, or, pairwiseAdd, reduce, rem, select, shl, shr, sigmoid,
  sin, splat, sqrt, sub, tanh, trunc, widen, xor, dotI16, dotI8, shuffle, type Expr,
} from '../codegen/builder.js';
import type { Kernel, ScalarType, VectorType } from '../codegen/kernel.js';
import { WasmHarness } from '../codegen/wasm/harness.js';
import { printKernels } from '../codegen/c/printer.js';
import { runCKernels, type KernelCall } from '../targets/neon/kernel-runner.js';
import type { NeonMode } from '../targets/neon/toolchain.js';
import { buildLutMatMul } from '../targets/wasm/kernels/lut/LutMatMul.js';
import type { KernelBuildContext } from '../targets/wasm/kernel-def.js';
import { node, rng } from './helpers/lut-graph.js';

const N = 37; // two vector strips of 16 bytes and a scalar tail for every lane width
const random = rng(99);

function bytesOf(values: ArrayLike<number>, elem: ScalarType): Uint8Array {
  const n = values.length;
  switch (elem) {
    case 'f32': return new Uint8Array(Float32Array.from(values).buffer);
    case 'i32': return new Uint8Array(Int32Array.from(values).buffer);
    case 'u32': return new Uint8Array(Uint32Array.from(values).buffer);
    case 'i16': return new Uint8Array(Int16Array.from(values).buffer);
    case 'u16': case 'f16': return new Uint8Array(Uint16Array.from(values).buffer);
    case 'i8': return new Uint8Array(Int8Array.from(values).buffer);
    case 'u8': return Uint8Array.from(values);
  }
  throw new Error(`bytes of ${elem} x${n}`);
}

const F_EDGES = [0, -0, 1, -1, NaN, Infinity, -Infinity, 1e30, -1e30, 1e-30, 88, -88, 0.5, -0.5, 2.5, -2.5, 20, -20, 3e9, -3e9];
const fData = (): number[] => Array.from({ length: N }, (_, i) => (i < F_EDGES.length ? F_EDGES[i] : (random() * 2 - 1) * 8));
const iData = (lo: number, hi: number): number[] => Array.from({ length: N }, () => lo + Math.floor(random() * (hi - lo + 1)));

/** out[i] = f(a[i], b[i]) with a vector body over `vec` and (when given) a scalar tail. */
function elementwise(
  name: string, elem: ScalarType, outElem: ScalarType, vec: VectorType,
  vectorOp: (a: Expr, b: Expr) => Expr, scalarOp?: (a: Expr, b: Expr) => Expr,
): Kernel {
  const k = new KernelBuilder(name);
  const a = k.buffer('a', elem);
  const b = k.buffer('b', elem);
  const out = k.buffer('out', outElem, 'write');
  const n = k.scalar('n');
  const lanes = { f32x4: 4, i32x4: 4, i16x8: 8, i8x16: 16, u8x16: 16 }[vec];
  const vend = k.let('vend', sub(n, rem(n, lanes)));
  k.loop('i', 0, vend, (i) => out.storeVec(i, vectorOp(a.loadVec(i, vec), b.loadVec(i, vec))), { step: lanes });
  if (scalarOp) k.loop('t', vend, n, (i) => out.store(i, scalarOp(a.load(i), b.load(i))));
  return k.build();
}

interface PrinterCase {
  kernel: Kernel;
  args: (Uint8Array | number)[];
  /** Which args to compare after the run, with their element type. */
  outputs: { index: number; elem: ScalarType }[];
}

const CASES: PrinterCase[] = [];
function addCase(kernel: Kernel, inputs: { values: number[]; elem: ScalarType }[], outElem: ScalarType, scalars: number[] = [N]): void {
  const outBytes = bytesOf(new Array(N).fill(0), outElem);
  CASES.push({
    kernel,
    args: [...inputs.map((x) => bytesOf(x.values, x.elem)), outBytes, ...scalars],
    outputs: [{ index: inputs.length, elem: outElem }],
  });
}

// f32: binary, unary and transcendental ops, vector and scalar.
const F_BINARY: [string, (a: Expr, b: Expr) => Expr][] = [
  ['add', add], ['sub', sub], ['mul', mul], ['div', div], ['min', min], ['max', max],
];
for (const [name, op] of F_BINARY) addCase(elementwise(`f_${name}`, 'f32', 'f32', 'f32x4', op, op), [{ values: fData(), elem: 'f32' }, { values: fData().reverse(), elem: 'f32' }], 'f32');
const F_UNARY: [string, (a: Expr) => Expr][] = [
  ['neg', neg], ['abs', abs], ['sqrt', sqrt], ['floor', floor], ['ceil', ceil], ['trunc', trunc], ['nearest', nearest],
  ['exp', exp], ['log', log], ['tanh', tanh], ['erf', erf], ['sin', sin], ['cos', cos], ['sigmoid', sigmoid],
];
for (const [name, op] of F_UNARY) addCase(elementwise(`f_${name}`, 'f32', 'f32', 'f32x4', (a) => op(a), (a) => op(a)), [{ values: fData(), elem: 'f32' }, { values: fData(), elem: 'f32' }], 'f32');
// Comparisons give masks (vectors) and 0/1 (scalars); select picks with them.
const F_COMPARE: [string, (a: Expr, b: Expr) => Expr][] = [['eq', eq], ['ne', ne], ['lt', lt], ['le', le], ['gt', gt], ['ge', ge]];
for (const [name, op] of F_COMPARE) {
  addCase(elementwise(`f_sel_${name}`, 'f32', 'f32', 'f32x4', (a, b) => select(op(a, b), a, b), (a, b) => select(op(a, b), a, b)),
    [{ values: fData(), elem: 'f32' }, { values: fData().reverse(), elem: 'f32' }], 'f32');
}
// float ↔ int conversions saturate (NaN → 0); bit casts.
addCase(elementwise('f_to_i', 'f32', 'i32', 'f32x4', (a) => cast(a, 'i32x4'), (a) => cast(a, 'i32')), [{ values: fData(), elem: 'f32' }, { values: fData(), elem: 'f32' }], 'i32');
addCase(elementwise('f_bits', 'f32', 'i32', 'f32x4', (a) => xor(bitcast(a, 'i32x4'), constant('i32x4', -0x80000000)), (a) => xor(bitcast(a, 'i32'), -0x80000000)), [{ values: fData(), elem: 'f32' }, { values: fData(), elem: 'f32' }], 'i32');
addCase(elementwise('i_to_f', 'i32', 'f32', 'i32x4', (a, b) => mul(cast(a, 'f32x4'), cast(b, 'f32x4')), (a, b) => mul(cast(a, 'f32'), cast(b, 'f32'))), [{ values: iData(-1e6, 1e6), elem: 'i32' }, { values: iData(-9, 9), elem: 'i32' }], 'f32');

// i32: wrapping arithmetic, bit ops, shifts (counts modulo 32), comparisons.
const I_BINARY: [string, (a: Expr, b: Expr) => Expr, boolean][] = [
  ['add', add, true], ['sub', sub, true], ['mul', mul, true], ['min', min, true], ['max', max, true],
  ['and', and, true], ['or', or, true], ['xor', xor, true], ['div', div, false], ['rem', rem, false],
];
const bigInts = (): number[] => iData(-2147483648, 2147483647);
const nonZero = (): number[] => iData(-1000, 1000).map((x) => x || 7);
for (const [name, op, vector] of I_BINARY) {
  addCase(elementwise(`i_${name}`, 'i32', 'i32', 'i32x4', vector ? op : (a, b) => a.type === 'i32x4' ? add(a, b) : op(a, b), op),
    [{ values: bigInts(), elem: 'i32' }, { values: vector ? bigInts() : nonZero(), elem: 'i32' }], 'i32');
}
for (const [name, op] of F_COMPARE) {
  addCase(elementwise(`i_cmp_${name}`, 'i32', 'i32', 'i32x4', (a, b) => select(op(a, b), a, b), (a, b) => add(op(a, b), mul(select(op(a, b), a, b), 2))),
    [{ values: iData(-5, 5), elem: 'i32' }, { values: iData(-5, 5), elem: 'i32' }], 'i32');
}
for (const [name, op] of [['shl', shl], ['shr', shr]] as const) {
  const k = new KernelBuilder(`i_${name}_var`);
  const a = k.buffer('a', 'i32');
  const out = k.buffer('out', 'i32', 'write');
  const s = k.scalar('s');
  k.loop('i', 0, 32, (i) => out.storeVec(i, add(op(a.loadVec(i, 'i32x4'), s), op(a.loadVec(i, 'i32x4'), 3))), { step: 4 });
  k.loop('j', 32, N, (i) => out.store(i, add(op(a.load(i), s), op(a.load(i), 35))));
  CASES.push({ kernel: k.build(), args: [bytesOf(bigInts(), 'i32'), bytesOf(new Array(N).fill(0), 'i32'), 37], outputs: [{ index: 1, elem: 'i32' }] });
}
addCase(elementwise('i_neg_abs_not', 'i32', 'i32', 'i32x4', (a, b) => add(neg(a), xor(abs(b), not(a))), (a, b) => add(neg(a), xor(abs(b), not(a)))),
  [{ values: bigInts(), elem: 'i32' }, { values: bigInts(), elem: 'i32' }], 'i32');

// Narrow vectors: saturating adds, shifts, min/max, comparisons on i16x8 / i8x16 / u8x16.
const narrow: [VectorType, ScalarType, number, number][] = [['i16x8', 'i16', -32768, 32767], ['i8x16', 'i8', -128, 127], ['u8x16', 'u8', 0, 255]];
for (const [vec, elem, lo, hi] of narrow) {
  const ops: [string, (a: Expr, b: Expr) => Expr][] = [
    ['add', add], ['sub', sub], ['add_sat', addSat], ['min', min], ['max', max], ['xor', xor],
    ['shl', (a) => shl(a, 3)], ['shr', (a) => shr(a, 2)], ['lt_sel', (a, b) => select(lt(a, b), a, b)], ['ne_sel', (a, b) => select(ne(a, b), b, a)],
    ['neg', (a) => neg(a)], ['abs', (a) => abs(a)],
  ];
  if (vec === 'i16x8') ops.push(['mul', mul]);
  for (const [name, op] of ops) {
    addCase(elementwise(`${vec}_${name}`, elem, elem, vec, op, (a, b) => (name === 'add_sat' || name.includes('sel') || name === 'shr' || name === 'shl' || name === 'neg' || name === 'abs' ? a : op(a, b))),
      [{ values: iData(lo, hi), elem }, { values: iData(lo, hi), elem }], elem);
  }
}

// The low-bit vector ops: lookup16, widen, pairwise add (incl. the dotprod pattern), dot_i16, shuffle, reductions.
{
  const k = new KernelBuilder('lowbit_ops');
  const table = k.buffer('table', 'i8');
  const idx = k.buffer('idx', 'u8');
  const out = k.buffer('out', 'i32', 'write');
  const tab = k.let('tab', table.loadVec(0, 'i8x16'));
  const ix = k.let('ix', idx.loadVec(0, 'u8x16'));
  const hit = k.let('hit', lookup16(tab, ix, 'i8x16'));
  const uhit = k.let('uhit', lookup16(bitcast(tab, 'u8x16'), ix, 'u8x16'));
  out.storeVec(0, widen('low', true, widen('low', true, hit)));
  out.storeVec(4, widen('high', true, widen('high', true, hit)));
  out.storeVec(8, add(constant('i32x4', 7), widen('low', false, widen('high', false, uhit))));
  out.storeVec(12, pairwiseAdd(true, pairwiseAdd(true, hit)));
  out.storeVec(16, add(constant('i32x4', 1000), pairwiseAdd(false, pairwiseAdd(false, uhit))));
  out.storeVec(20, pairwiseAdd(false, pairwiseAdd(true, hit)));
  out.storeVec(24, dotI16(widen('low', true, hit), widen('high', true, hit)));
  const shuffled = k.let('sh', shuffle(hit, neg(hit), [0, 17, 2, 19, 4, 21, 6, 23, 31, 30, 29, 28, 15, 14, 13, 12]));
  out.storeVec(28, widen('low', true, widen('low', true, shuffled)));
  out.store(32, reduce('add', hit));
  out.store(33, reduce('max', uhit));
  out.store(34, reduce('min', widen('low', true, hit)));
  out.store(35, add(extract(uhit, 5), extract(widen('high', true, hit), 7)));
  out.store(36, reduce('add', cast(widen('low', true, widen('low', true, hit)), 'f32x4')) as Expr);
  const kernel = k.build();
  const tableValues = iData(-128, 127);
  const indexValues = [0, 15, 16, 255, 3, 7, 8, 200, 1, 2, 31, 14, 9, 10, 11, 12, ...iData(0, 15)];
  // out[36] holds an f32 sum stored as i32 bits: keep it an integer through the cast.
  kernel.body[kernel.body.length - 1] = { kind: 'store', buffer: 'out', index: constant('i32', 36), value: cast(reduce('add', cast(widen('low', true, widen('low', true, hit)), 'f32x4')), 'i32') };
  CASES.push({ kernel, args: [bytesOf(tableValues.slice(0, 16), 'i8'), bytesOf(indexValues.slice(0, 16), 'u8'), bytesOf(new Array(N).fill(0), 'i32')], outputs: [{ index: 2, elem: 'i32' }] });
}

// dot_i8 (vdotq_s32 semantics) over 8 vector pairs, accumulated: random bytes and the −128/127 extremes.
{
  const pairs = 8;
  const k = new KernelBuilder('dot_i8_acc');
  const a = k.buffer('a', 'i8');
  const b = k.buffer('b', 'i8');
  const out = k.buffer('out', 'i32', 'write');
  const acc = k.mut('acc', constant('i32x4', -7));
  k.loop('v', 0, pairs, (v) => {
    k.set(acc, dotI8(acc, a.loadVec(mul(v, 16), 'i8x16'), b.loadVec(mul(v, 16), 'i8x16')));
    out.storeVec(mul(v, 4), dotI8(constant('i32x4', 0), a.loadVec(mul(v, 16), 'i8x16'), b.loadVec(mul(v, 16), 'i8x16')));
  });
  out.storeVec(pairs * 4, acc);
  // The by-element form (SDOT v.4s, a.16b, b.4b[lane]): b's i32 lane broadcast.
  for (let lane = 0; lane < 4; lane++) {
    const quad = bitcast(splat(extract(bitcast(b.loadVec(16, 'i8x16'), 'i32x4'), lane), 'i32x4'), 'i8x16');
    out.storeVec((pairs + 1 + lane) * 4, dotI8(constant('i32x4', lane), a.loadVec(0, 'i8x16'), quad));
  }
  const extremes = (x: number): number[] => Array.from({ length: 16 }, (_, i) => (i % 3 === 0 ? x : -128));
  const av = [...extremes(-128), ...extremes(127), ...Array.from({ length: 16 * (pairs - 2) }, () => Math.floor(random() * 256) - 128)];
  const bv = [...extremes(-128), ...extremes(-128), ...Array.from({ length: 16 * (pairs - 2) }, () => Math.floor(random() * 256) - 128)];
  CASES.push({
    kernel: k.build(),
    args: [bytesOf(av, 'i8'), bytesOf(bv, 'i8'), bytesOf(new Array(4 * (pairs + 5)).fill(0), 'i32')],
    outputs: [{ index: 2, elem: 'i32' }],
  });
}

// Narrow loads and stores: widening loads, f16 storage, loops with ifs.
{
  const k = new KernelBuilder('narrow_mem');
  const b8 = k.buffer('b8', 'i8');
  const u8 = k.buffer('u8', 'u8');
  const h = k.buffer('h', 'f16');
  const s16 = k.buffer('s16', 'i16');
  const out = k.buffer('out', 'i32', 'write');
  const hf = k.buffer('hf', 'f16', 'write');
  const n8 = k.buffer('n8', 'i8', 'write');
  out.storeVec(0, widen('low', true, b8.loadVec(0, 'i16x8')));
  out.storeVec(4, add(u8.loadVec(0, 'i32x4'), b8.loadVec(4, 'i32x4')));
  out.storeVec(8, s16.loadVec(2, 'i32x4'));
  out.storeVec(12, cast(mul(h.loadVec(0, 'f32x4'), 4), 'i32x4'));
  hf.storeVec(0, mul(h.loadVec(4, 'f32x4'), 3));
  const acc = k.mut('acc', 0);
  k.loop('i', 0, 8, (i) => {
    k.if(lt(b8.load(i), 0), () => k.set(acc, add(acc, b8.load(i))), () => k.set(acc, sub(acc, u8.load(i))));
    hf.store(add(i, 4), mul(h.load(i), -0.75));
    n8.store(i, mul(s16.load(i), 3));
  });
  out.store(16, acc);
  out.store(17, cast(cast(h.load(1), 'f16'), 'i32'));
  out.store(18, cast(cast(f32(1234.5678), 'i32'), 'u8'));
  const kernel = k.build();
  const halfBits = [0x3c00, 0xbc00, 0x7bff, 0x0001, 0x3555, 0xc900, 0x7c00, 0x8000, 0x4248, 0x2e66, 0xfbff, 0x0400];
  CASES.push({
    kernel,
    args: [
      bytesOf(iData(-128, 127).slice(0, 16), 'i8'), bytesOf(iData(0, 255).slice(0, 16), 'u8'), bytesOf(halfBits, 'u16'),
      bytesOf(iData(-32768, 32767).slice(0, 8), 'i16'), bytesOf(new Array(20).fill(0), 'i32'), bytesOf(new Array(12).fill(0), 'u16'),
      bytesOf(new Array(16).fill(0), 'i8'),
    ],
    outputs: [{ index: 4, elem: 'i32' }, { index: 5, elem: 'u16' }, { index: 6, elem: 'i8' }],
  });
}
function f32(v: number): Expr {
  return constant('f32', v);
}

// The real LutMatMul fast-path kernel (T-MAC lookups, int16 accumulation) on random data: the
// default (shift accumulation, one index per byte) and widen accumulation on two indices per byte.
for (const [name, perByte, accumulate] of [['lut_mm', 1, undefined], ['lut_mm_packed', 2, 'widen']] as const) {
  const bits = 2;
  const K = 64;
  const Nrows = 32;
  const groupSize = 32;
  const M = 2;
  const lutNode = node('LutMatMul', ['tables', 'table_scales', 'act_sums', 'planes', 'scales', 'offsets'], ['y'],
    { bits, g: 4, group_size: groupSize, K, N: Nrows, rows_per_tile: 16, indices_per_byte: perByte });
  const ctx = { node: lutNode, inputs: [{ dtype: 'i8', shape: [M, K / 4, 8] }], outputs: [], constant: () => undefined, name } as unknown as KernelBuildContext;
  const kernel = buildLutMatMul(ctx, { accumulate });
  const blocks = K / groupSize;
  const rand = (count: number, f: () => number): number[] => Array.from({ length: count }, f);
  CASES.push({
    kernel,
    args: [
      bytesOf(rand(M * (K / 4) * 8, () => Math.floor(random() * 255) - 127), 'i8'),
      bytesOf(rand(M * blocks, () => random() * 0.1), 'f32'),
      bytesOf(rand(M * blocks, () => random() * 4 - 2), 'f32'),
      bytesOf(rand(bits * Nrows * (K / 4 / perByte), () => Math.floor(random() * 16 ** perByte)), 'u8'),
      bytesOf(rand(Nrows * blocks, () => random()), 'f32'),
      bytesOf(rand(Nrows * blocks, () => random() - 0.5), 'f32'),
      bytesOf(new Array(M * Nrows).fill(0), 'f32'),
      bytesOf(new Array(M * (K / 4) * 16).fill(0), 'i8'),
      M,
    ],
    outputs: [{ index: 6, elem: 'f32' }],
  });
}

/** Runs every case in Node through the WASM builder: the expected buffers. */
function runWasm(): Uint8Array[][] {
  const harness = new WasmHarness(CASES.map((c) => c.kernel), { optimize: false });
  return CASES.map((c) => {
    harness.reset();
    const offsets = c.args.map((a) => (a instanceof Uint8Array ? harness.writeU8(a) : a));
    harness.call(c.kernel.name, ...offsets);
    return c.outputs.map(({ index }) => new Uint8Array(harness.u8(offsets[index], (c.args[index] as Uint8Array).byteLength)));
  });
}

function decode(bytes: Uint8Array, elem: ScalarType): number[] {
  const buf = new Uint8Array(bytes).buffer;
  switch (elem) {
    case 'f32': return Array.from(new Float32Array(buf));
    case 'i32': return Array.from(new Int32Array(buf));
    case 'u16': return Array.from(new Uint16Array(buf));
    case 'i8': return Array.from(new Int8Array(buf));
    case 'i16': return Array.from(new Int16Array(buf));
    default: return Array.from(bytes);
  }
}

let expected: Uint8Array[][];
beforeAll(() => {
  expected = runWasm();
});

describe('C printer', () => {
  it('prints C99 without GNU extensions and namespaces kernels', () => {
    const printed = printKernels(CASES.slice(0, 3).map((c) => c.kernel), { prefix: 'c7_' });
    expect(printed.functions[0]).toMatch(/^static void c7_f_add\(const float \*v_a, const float \*v_b, float \*v_out, int32_t v_n\)/);
    expect(printed.functions.join('')).not.toMatch(/\(\{|__typeof__|__attribute__/);
    expect(printKernels([CASES.find((c) => c.kernel.name === 'f_exp')!.kernel]).helpers).toMatch(/static inline float32x4_t llmcc_exp_f32x4/);
  });

  it('uses vdotq for the sum-of-4-bytes pattern, vqtbl1q for lookup16, vaddw for widening accumulation', () => {
    const text = printKernels([CASES.find((c) => c.kernel.name === 'lowbit_ops')!.kernel]).functions[0];
    expect(text).toMatch(/llmcc_sum4_s8\(vdupq_n_s32\(0\)/);
    expect(text).toMatch(/llmcc_sum4_u8\(vdupq_n_s32\(1000\)/);
    expect(text).toMatch(/vqtbl1q_s8\(/);
    expect(text).toMatch(/vaddw_u16\(/);
    // The T-MAC accumulation of the LutMatMul fast path: int16 adds and shift-right-accumulate
    // (default), or widening adds.
    const lut = printKernels([CASES.find((c) => c.kernel.name === 'lut_mm')!.kernel]).functions[0];
    expect(lut).toMatch(/vsraq_n_u16\(.*, 8\)/);
    const widened = printKernels([CASES.find((c) => c.kernel.name === 'lut_mm_packed')!.kernel]).functions[0];
    expect(widened).toMatch(/vaddw_[su]8\(/);
    expect(widened).toMatch(/vaddw_high_[su]8\(/);
    const dot = printKernels([CASES.find((c) => c.kernel.name === 'dot_i8_acc')!.kernel]).functions[0];
    expect(dot).toMatch(/llmcc_dot_s8\(/);
    expect(dot).toMatch(/llmcc_dot_lane_s8\(.*, 3\)/);
  });

  it('dot_i8 matches vdotq_s32 lane for lane (JS model, −128 extremes)', () => {
    const c = CASES.find((x) => x.kernel.name === 'dot_i8_acc')!;
    const sa = new Int8Array((c.args[0] as Uint8Array).slice().buffer);
    const sb = new Int8Array((c.args[1] as Uint8Array).slice().buffer);
    const lanes = sa.length / 4;
    const want: number[] = [];
    for (let lane = 0; lane < lanes; lane++) {
      let t = 0;
      for (let j = 0; j < 4; j++) t += sa[4 * lane + j] * sb[4 * lane + j];
      want.push(t);
    }
    want.push(...[0, 1, 2, 3].map((i) => want.filter((_, lane) => lane % 4 === i).reduce((x, y) => x + y, -7)));
    for (let quad = 0; quad < 4; quad++) {
      for (let lane = 0; lane < 4; lane++) {
        let t = quad;
        for (let j = 0; j < 4; j++) t += sa[4 * lane + j] * sb[16 + 4 * quad + j];
        want.push(t);
      }
    }
    expect(decode(expected[CASES.indexOf(c)][0], 'i32')).toEqual(want);
    // −128·−128 four times: 65536, beyond any i16 intermediate.
    expect(want[1]).toBe(65536);
  });

  // qemu-max builds with +dotprod (the vdotq path), qemu-a53 without; SIMDe's vdotq and the sanitizer build unless LLMCC_NEON_QUICK=1.
  const modes: { mode: NeonMode; defines?: string[] }[] = [{ mode: 'qemu-max' }, { mode: 'qemu-a53' }, { mode: 'host' }];
  if (process.env.LLMCC_NEON_QUICK !== '1') modes.push({ mode: 'host', defines: ['LLMCC_FORCE_DOTPROD'] }, { mode: 'host-sanitize' });
  for (const { mode, defines } of modes) {
    it(`matches the WASM build on every case (${mode}${defines ? ` ${defines.join(' ')}` : ''})`, async () => {
      const calls: KernelCall[] = CASES.map((c) => ({ kernel: c.kernel, args: c.args }));
      const results = await runCKernels(calls, mode, { defines });
      CASES.forEach((c, i) => {
        c.outputs.forEach(({ index, elem }, j) => {
          const got = decode(results[i][index]!, elem);
          const want = decode(expected[i][j], elem);
          // NaN payloads may differ between engines: compare NaN as NaN.
          expect(got.map((x) => (Number.isNaN(x) ? 'NaN' : x)), `${c.kernel.name} output ${index}`).toEqual(want.map((x) => (Number.isNaN(x) ? 'NaN' : x)));
        });
      });
    }, 120_000);
  }
});
