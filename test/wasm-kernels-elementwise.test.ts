/**
 * The W1 wasm kernels (elementwise, activations, reductions, softmax, normalizations): each
 * case builds its node's kernel, all kernels go into ONE module, and every case runs in Node
 * and is compared with the reference op's `evaluate` on the same inputs.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import type { Kernel } from '../codegen/kernel.js';
import { WasmHarness } from '../codegen/wasm/harness.js';
import { isFloat, type DType } from '../ir/dtype.js';
import type { Attribute, Node, TensorType } from '../ir/graph.js';
import { Attrs } from '../ir/ops/attrs.js';
import { lookupOp } from '../ir/ops/registry.js';
import { Tensor } from '../ir/tensor.js';
import type { KernelBuildContext, WasmKernelDef } from '../targets/wasm/kernel-def.js';
import { lookupWasmKernel } from '../targets/wasm/kernels/index.js';

interface Case {
  label: string;
  domain?: string;
  op: string;
  inputs: (Tensor | undefined)[];
  attrs?: Record<string, Attribute>;
  opset?: number;
  /** Inputs the kernel may see as compile-time constants. */
  constants?: number[];
  outputs?: number;
}

interface Prepared {
  c: Case;
  node: Node;
  def: WasmKernelDef;
  expected: Tensor[];
}

let seed = 12345;
function random(): number {
  seed = (seed * 1103515245 + 12345) & 0x7fffffff;
  return seed / 0x7fffffff;
}
const size = (shape: number[]): number => shape.reduce((a, b) => a * b, 1);
function randF(shape: number[], scale = 3, dtype: DType = 'f32'): Tensor {
  return Tensor.fromNumbers(dtype, shape, Array.from({ length: size(shape) }, () => (random() * 2 - 1) * scale));
}
function randI(shape: number[], lo: number, hi: number, dtype: DType = 'i32'): Tensor {
  return Tensor.fromNumbers(dtype, shape, Array.from({ length: size(shape) }, () => lo + Math.floor(random() * (hi - lo + 1))));
}
function randB(shape: number[]): Tensor {
  return Tensor.fromNumbers('bool', shape, Array.from({ length: size(shape) }, () => (random() < 0.5 ? 1 : 0)));
}
const EDGES = [0, -0, 1, -1, NaN, Infinity, -Infinity, 1e30, -1e30, 1e-30, 88, -88, 0.5, -0.5, 20, -20];
const edgeF = (): Tensor => Tensor.fromNumbers('f32', [EDGES.length], EDGES);
const int = (value: number): Attribute => ({ kind: 'int', value });
const float = (value: number): Attribute => ({ kind: 'float', value });
const ints = (value: number[]): Attribute => ({ kind: 'ints', value });
const str = (value: string): Attribute => ({ kind: 'string', value });

const CASES: Case[] = [];
const UNARY = ['Abs', 'Neg', 'Reciprocal', 'Sqrt', 'Exp', 'Log', 'Erf', 'Ceil', 'Floor', 'Round', 'Sin', 'Cos', 'Tanh', 'Sigmoid', 'Relu', 'Softplus', 'Sign'];
for (const op of UNARY) {
  CASES.push({ label: `${op} random`, op, inputs: [randF([3, 7], 4)] });
  CASES.push({ label: `${op} edges`, op, inputs: [edgeF()] });
}
CASES.push({ label: 'Abs int', op: 'Abs', inputs: [randI([9], -50, 50)] });
CASES.push({ label: 'Neg int8', op: 'Neg', inputs: [Tensor.fromNumbers('i8', [4], [-128, -1, 0, 127])] });
CASES.push({ label: 'Relu int', op: 'Relu', inputs: [randI([9], -50, 50)] });
CASES.push({ label: 'Not', op: 'Not', inputs: [randB([2, 5])] });
const BROADCASTS: [number[], number[]][] = [
  [[2, 3, 4], [2, 3, 4]], [[2, 3, 4], [4]], [[2, 1, 4], [3, 1]], [[5], []], [[], [6]], [[1, 2, 1, 3, 1, 2], [2, 1, 3, 2, 2]], [[3, 1], [1, 5]], [[0, 3], [3]],
];
for (const op of ['Add', 'Sub', 'Mul', 'Div']) {
  for (const [a, b] of BROADCASTS) CASES.push({ label: `${op} [${a}] [${b}]`, op, inputs: [randF(a), randF(b)] });
  CASES.push({ label: `${op} int`, op, inputs: [randI([4, 5], -100, 100), randI([5], -3, 3)] });
  CASES.push({ label: `${op} int16 wrap`, op, inputs: [randI([6], -32768, 32767, 'i16'), randI([6], -200, 200, 'i16')] });
  CASES.push({ label: `${op} uint8 wrap`, op, inputs: [randI([6], 0, 255, 'u8'), randI([6], 0, 255, 'u8')] });
}
CASES.push({ label: 'Div int by zero and INT_MIN/-1', op: 'Div', inputs: [Tensor.fromNumbers('i32', [3], [5, -(2 ** 31), 7]), Tensor.fromNumbers('i32', [3], [0, -1, -2])] });
for (const op of ['Equal', 'Less', 'LessOrEqual', 'Greater', 'GreaterOrEqual']) {
  CASES.push({ label: `${op} f32 bcast`, op, inputs: [randI([3, 4], -2, 2, 'f32'), randI([4], -2, 2, 'f32')] });
  CASES.push({ label: `${op} int`, op, inputs: [randI([3, 4], -2, 2), randI([3, 1], -2, 2)] });
}
CASES.push({ label: 'Equal NaN', op: 'Equal', inputs: [edgeF(), edgeF()] });
for (const op of ['And', 'Or', 'Xor']) CASES.push({ label: op, op, inputs: [randB([2, 3, 4]), randB([3, 1])] });
for (const op of ['Sum', 'Mean', 'Min', 'Max']) {
  CASES.push({ label: `${op} 3 inputs`, op, inputs: [randF([2, 3, 4]), randF([4]), randF([3, 1])] });
  CASES.push({ label: `${op} 1 input`, op, inputs: [randF([5])] });
}
CASES.push({ label: 'Max int', op: 'Max', inputs: [randI([6], -9, 9), randI([6], -9, 9)] });
CASES.push({ label: 'Max NaN', op: 'Max', inputs: [edgeF(), randF([EDGES.length])] });
CASES.push({ label: 'Where', op: 'Where', inputs: [randB([3, 1]), randF([3, 4]), randF([4])] });
CASES.push({ label: 'Where int', op: 'Where', inputs: [randB([4]), randI([2, 4], -5, 5), randI([1], -5, 5)] });
const CASTS: [DType, DType][] = [['f32', 'i32'], ['f32', 'i64'], ['f32', 'bool'], ['f32', 'f16'], ['f32', 'bf16'], ['i32', 'f32'], ['i64', 'f32'], ['bool', 'f32'], ['i32', 'i8'], ['i32', 'u8'], ['i32', 'i16'], ['f32', 'u8'], ['u8', 'i32']];
for (const [from, to] of CASTS) {
  const input = isFloat(from) ? Tensor.fromNumbers(from, [12], [0, -0, 1.5, -1.5, 2.5, 300.7, -300.7, 65519, 1e-6, 70000, 0.1, 3.14159]) : from === 'bool' ? randB([12]) : randI([12], from === 'u8' ? 0 : -1000, 1000, from);
  CASES.push({ label: `Cast ${from}→${to}`, op: 'Cast', inputs: [input], attrs: { to: int(({ f32: 1, u8: 2, i8: 3, i16: 5, i32: 6, i64: 7, bool: 9, f16: 10, bf16: 16 } as Record<string, number>)[to]) } });
}
CASES.push({ label: 'Clip inputs', op: 'Clip', inputs: [edgeF(), Tensor.scalar('f32', -1), Tensor.scalar('f32', 2)], opset: 13 });
CASES.push({ label: 'Clip min only', op: 'Clip', inputs: [randF([10]), Tensor.scalar('f32', 0)], opset: 13 });
CASES.push({ label: 'Clip attrs', op: 'Clip', inputs: [randF([10])], attrs: { min: float(-0.5), max: float(0.5) }, opset: 6 });
CASES.push({ label: 'Clip int', op: 'Clip', inputs: [randI([10], -20, 20), Tensor.scalar('i32', -3), Tensor.scalar('i32', 4)], opset: 13 });
CASES.push({ label: 'Gelu', op: 'Gelu', inputs: [randF([4, 9], 6)], opset: 20 });
CASES.push({ label: 'Gelu tanh', op: 'Gelu', inputs: [randF([4, 9], 6)], attrs: { approximate: str('tanh') }, opset: 20 });
CASES.push({ label: 'Gelu edges', op: 'Gelu', inputs: [edgeF()], opset: 20 });
CASES.push({ label: 'FastGelu bias', domain: 'com.microsoft', op: 'FastGelu', inputs: [randF([2, 3, 8]), randF([8])] });
CASES.push({ label: 'FastGelu', domain: 'com.microsoft', op: 'FastGelu', inputs: [randF([5, 3])] });
CASES.push({ label: 'Swish', op: 'Swish', inputs: [randF([11], 5)], attrs: { alpha: float(1.5) }, opset: 24 });
CASES.push({ label: 'Pow runtime', op: 'Pow', inputs: [randF([3, 4], 3), randI([4], -3, 3, 'f32')] });
CASES.push({ label: 'Pow fractional', op: 'Pow', inputs: [Tensor.fromNumbers('f32', [5], [0.5, 2, 3, 0, 1.5]), Tensor.fromNumbers('f32', [5], [0.3, 1.7, -2.2, 0, 2.5])] });
CASES.push({ label: 'Pow const 2', op: 'Pow', inputs: [randF([7]), Tensor.scalar('f32', 2)], constants: [1] });
CASES.push({ label: 'Pow const 0.5', op: 'Pow', inputs: [randF([7]), Tensor.scalar('f32', 0.5)], constants: [1] });
CASES.push({ label: 'Pow int', op: 'Pow', inputs: [randI([6], -4, 4), randI([6], 0, 5)] });
CASES.push({ label: 'Pow int by float', op: 'Pow', inputs: [randI([6], 0, 9), Tensor.fromNumbers('f32', [6], [0.5, 2, 1.5, 3, 0, 1])] });
const REDUCES = ['ReduceSum', 'ReduceMean', 'ReduceMax', 'ReduceMin', 'ReduceProd', 'ReduceSumSquare', 'ReduceL1', 'ReduceL2', 'ReduceLogSum', 'ReduceLogSumExp'];
for (const op of REDUCES) {
  const x = op === 'ReduceLogSum' ? Tensor.fromNumbers('f32', [2, 3, 9], Array.from({ length: 54 }, () => random() * 2 + 0.1)) : randF([2, 3, 9], 2);
  for (const [axes, keep] of [[[2], 1], [[1], 0], [[0, 2], 1], [[-1, 0], 0], [[], 1]] as [number[], number][]) {
    CASES.push({ label: `${op} axes [${axes}] keepdims ${keep}`, op, inputs: [x, Tensor.fromNumbers('i64', [axes.length], axes)], attrs: { keepdims: int(keep) }, opset: 18, constants: [1] });
  }
  CASES.push({ label: `${op} attr axes`, op, inputs: [x], attrs: { axes: ints([1, 2]) }, opset: 11 });
}
CASES.push({ label: 'ReduceSum noop', op: 'ReduceSum', inputs: [randF([3, 4]), Tensor.fromNumbers('i64', [0], [])], attrs: { noop_with_empty_axes: int(1) }, opset: 13, constants: [1] });
CASES.push({ label: 'ReduceMax int', op: 'ReduceMax', inputs: [randI([3, 5], -9, 9)], attrs: { axes: ints([1]) }, opset: 13 });
for (const op of ['Softmax', 'LogSoftmax']) {
  CASES.push({ label: `${op} last axis`, op, inputs: [randF([3, 4, 11], 5)], opset: 13 });
  CASES.push({ label: `${op} axis 1 (13)`, op, inputs: [randF([3, 4, 5], 5)], attrs: { axis: int(1) }, opset: 13 });
  CASES.push({ label: `${op} axis 1 (11, coerced 2-D)`, op, inputs: [randF([3, 4, 5], 5)], attrs: { axis: int(1) }, opset: 11 });
  CASES.push({ label: `${op} large`, op, inputs: [Tensor.fromNumbers('f32', [1, 5], [1000, 1001, 1002, 999, -1000])], opset: 13 });
}
CASES.push({ label: 'LayerNormalization', op: 'LayerNormalization', inputs: [randF([2, 3, 10]), randF([10]), randF([10])], opset: 17, outputs: 3 });
CASES.push({ label: 'LayerNormalization axis 1', op: 'LayerNormalization', inputs: [randF([2, 3, 5]), randF([3, 5]), randF([3, 5])], attrs: { axis: int(1), epsilon: float(1e-3) }, opset: 17, outputs: 3 });
CASES.push({ label: 'LayerNormalization no bias', op: 'LayerNormalization', inputs: [randF([4, 7]), randF([7])], opset: 17, outputs: 1 });
CASES.push({ label: 'RMSNormalization', op: 'RMSNormalization', inputs: [randF([2, 3, 12]), randF([12])], opset: 23 });
CASES.push({ label: 'SimplifiedLayerNormalization', op: 'SimplifiedLayerNormalization', inputs: [randF([3, 9]), randF([9])], opset: 1, outputs: 2 });
CASES.push({ label: 'ms SimplifiedLayerNormalization', domain: 'com.microsoft', op: 'SimplifiedLayerNormalization', inputs: [randF([3, 16]), randF([16])], outputs: 1 });
CASES.push({ label: 'SkipLayerNormalization', domain: 'com.microsoft', op: 'SkipLayerNormalization', inputs: [randF([2, 3, 8]), randF([2, 3, 8]), randF([8]), randF([8]), randF([8])], outputs: 4, attrs: { epsilon: float(1e-5) } });
CASES.push({ label: 'SkipLayerNormalization bcast skip', domain: 'com.microsoft', op: 'SkipLayerNormalization', inputs: [randF([2, 3, 6]), randF([3, 6]), randF([6])], outputs: 1 });
CASES.push({ label: 'SkipSimplifiedLayerNormalization', domain: 'com.microsoft', op: 'SkipSimplifiedLayerNormalization', inputs: [randF([2, 2, 10]), randF([2, 2, 10]), randF([10]), randF([10])], outputs: 4 });

const prepared: Prepared[] = [];
let harness: WasmHarness;

function evaluate(c: Case, node: Node): Tensor[] {
  const def = lookupOp(c.domain ?? '', c.op);
  if (!def) throw new Error(`no reference op ${c.op}`);
  return def.evaluate({ node, opset: c.opset ?? 13, attrs: new Attrs(node), inputs: c.inputs, runSubgraph: () => [] });
}

beforeAll(() => {
  const kernels: Kernel[] = [];
  CASES.forEach((c, index) => {
    const outputCount = c.outputs ?? 1;
    const node: Node = {
      name: `n${index}`, domain: c.domain ?? '', op: c.op,
      inputs: c.inputs.map((t, i) => (t ? `x${i}` : '')),
      outputs: Array.from({ length: outputCount }, (_, i) => `y${i}`),
      attributes: new Map(Object.entries(c.attrs ?? {})),
    };
    const expected = evaluate(c, node).slice(0, outputCount);
    const def = lookupWasmKernel(node.domain, node.op);
    if (!def) throw new Error(`no wasm kernel for ${c.op}`);
    const typeOf = (t: Tensor | undefined): TensorType | undefined => (t ? { dtype: t.dtype, shape: [...t.shape] } : undefined);
    const ctx: KernelBuildContext = {
      node,
      inputs: c.inputs.map(typeOf),
      outputs: expected.map((t) => typeOf(t)!),
      constant: (i) => (c.constants?.includes(i) ? c.inputs[i] : undefined),
      name: `k${index}`,
      opset: c.opset ?? 13,
    };
    const reason = def.check(ctx);
    if (reason) throw new Error(`${c.label}: check refused: ${reason}`);
    kernels.push(def.build(ctx));
    prepared.push({ c, node, def, expected });
  });
  harness = new WasmHarness(kernels);
});

/** Arena storage: floats f32, bool/u8/i8 one byte, other integers i32. */
function write(t: Tensor): number {
  const values = t.numbers();
  if (isFloat(t.dtype)) return harness.writeF32(values);
  if (t.dtype === 'bool' || t.dtype === 'u8' || t.dtype === 'i8') return harness.writeU8(Array.from(values, (v) => v & 0xff));
  return harness.writeI32(Array.from(values));
}
function read(dtype: DType, offset: number, count: number): number[] {
  if (isFloat(dtype)) return Array.from(harness.f32(offset, count));
  if (dtype === 'bool' || dtype === 'u8') return Array.from(harness.u8(offset, count));
  if (dtype === 'i8') return Array.from(harness.u8(offset, count), (v) => (v << 24) >> 24);
  if (dtype === 'u32') return Array.from(harness.i32(offset, count), (v) => v >>> 0);
  return Array.from(harness.i32(offset, count));
}
function bytesOf(dtype: DType, count: number): number {
  return (dtype === 'bool' || dtype === 'u8' || dtype === 'i8' ? 1 : 4) * count;
}

describe('wasm elementwise, reduction and normalization kernels match the reference', () => {
  it('built every case into one module', () => {
    expect(prepared.length).toBe(CASES.length);
  });
  for (const [index, c] of CASES.entries()) {
    it(c.label, () => {
      const { node, def, expected } = prepared[index];
      harness.reset();
      const inOffsets = c.inputs.flatMap((t) => (t ? [write(t)] : []));
      const outOffsets = expected.map((t) => harness.alloc(bytesOf(t.dtype, t.size)));
      const args = def.args(node, { inputs: c.inputs.map((t) => (t ? [...t.shape] : undefined)), outputs: expected.map((t) => [...t.shape]) });
      harness.call(`k${index}`, ...inOffsets, ...outOffsets, ...args);
      expected.forEach((e, o) => {
        const actual = read(e.dtype, outOffsets[o], e.size);
        const want = e.numbers();
        for (let i = 0; i < e.size; i++) {
          const a = actual[i];
          const w = want[i];
          const where = `${c.label} output ${o}[${i}]: got ${a}, expected ${w}`;
          if (Number.isNaN(w)) {
            expect(Number.isNaN(a), where).toBe(true);
          } else if ((c.op === 'Sin' || c.op === 'Cos') && Math.abs(c.inputs[0]!.numbers()[i]) >= 1e5) {
            expect(Math.abs(a), where).toBeLessThanOrEqual(1);
          } else if (isFloat(e.dtype) && Number.isFinite(w)) {
            expect(Math.abs(a - w), where).toBeLessThanOrEqual(2e-5 * Math.abs(w) + 2e-6);
          } else if (!(c.op === 'Sin' || c.op === 'Cos') || Math.abs(c.inputs[0]!.numbers()[i]) < 1e5) {
            // Sin/Cos are accurate for |x| up to about 1e4 (see codegen/mathlib.ts).
            expect(a === w, where).toBe(true);
          }
        }
      });
    });
  }
});
