/**
 * The HB wasm kernels (ArgMax, ArgMin, CumSum): each case builds its node's kernel, all go into
 * one module, and every case runs in Node and is compared with the reference op's `evaluate`.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import type { Kernel } from '../codegen/kernel.js';
import { WasmHarness } from '../codegen/wasm/harness.js';
import { isFloat } from '../ir/dtype.js';
import type { Attribute, Node, TensorType } from '../ir/graph.js';
import { Attrs } from '../ir/ops/attrs.js';
import { lookupOp } from '../ir/ops/registry.js';
import { Tensor } from '../ir/tensor.js';
import type { KernelBuildContext, WasmKernelDef } from '../targets/wasm/kernel-def.js';
import { lookupWasmKernel } from '../targets/wasm/kernels/index.js';

interface Case {
  label: string;
  op: string;
  inputs: Tensor[];
  attrs?: Record<string, Attribute>;
  opset?: number;
  constants?: number[];
}

let seed = 4242;
function random(): number {
  seed = (seed * 1103515245 + 12345) & 0x7fffffff;
  return seed / 0x7fffffff;
}
const size = (shape: number[]): number => shape.reduce((a, b) => a * b, 1);
const randF = (shape: number[]): Tensor => Tensor.fromNumbers('f32', shape, Array.from({ length: size(shape) }, () => random() * 6 - 3));
/** Few distinct values, so ties are common. */
const randTies = (shape: number[], dtype: 'f32' | 'i32' = 'f32'): Tensor =>
  Tensor.fromNumbers(dtype, shape, Array.from({ length: size(shape) }, () => Math.floor(random() * 3) - 1));
const int = (value: number): Attribute => ({ kind: 'int', value });

const CASES: Case[] = [];
for (const op of ['ArgMax', 'ArgMin']) {
  for (const axis of [0, 1, 2, -1]) {
    for (const keepdims of [0, 1]) {
      for (const last of [0, 1]) {
        const attrs = { axis: int(axis), keepdims: int(keepdims), select_last_index: int(last) };
        CASES.push({ label: `${op} f32 axis ${axis} keepdims ${keepdims} last ${last}`, op, inputs: [randF([3, 4, 5])], attrs });
        CASES.push({ label: `${op} ties axis ${axis} keepdims ${keepdims} last ${last}`, op, inputs: [randTies([3, 4, 5])], attrs });
      }
    }
  }
  for (const last of [0, 1]) {
    const attrs = { axis: int(1), select_last_index: int(last) };
    CASES.push({ label: `${op} i32 ties last ${last}`, op, inputs: [randTies([2, 6, 3], 'i32')], attrs });
    const nan = Tensor.fromNumbers('f32', [2, 5], [1, NaN, 3, NaN, -1, -Infinity, 2, Infinity, 2, -Infinity]);
    CASES.push({ label: `${op} NaN and infinities last ${last}`, op, inputs: [nan], attrs });
  }
  CASES.push({ label: `${op} default axis (0)`, op, inputs: [randF([4, 3])] });
  CASES.push({ label: `${op} rank 1 no keepdims`, op, inputs: [randF([7])], attrs: { keepdims: int(0) } });
  CASES.push({ label: `${op} opset 11 ignores select_last_index`, op, inputs: [randTies([5, 4])], attrs: { select_last_index: int(1) }, opset: 11 });
}
for (const axis of [0, 1, 2, -1, -3]) {
  for (const exclusive of [0, 1]) {
    for (const reverse of [0, 1]) {
      const attrs = { exclusive: int(exclusive), reverse: int(reverse) };
      const axisTensor = Tensor.fromNumbers('i64', [], [axis]);
      CASES.push({ label: `CumSum f32 axis ${axis} exclusive ${exclusive} reverse ${reverse}`, op: 'CumSum', inputs: [randF([2, 3, 4]), axisTensor], attrs, constants: [1] });
    }
  }
}
CASES.push({ label: 'CumSum i32 rank 1', op: 'CumSum', inputs: [randTies([9], 'i32'), Tensor.fromNumbers('i32', [1], [0])] });
CASES.push({ label: 'CumSum i32 axis fed at run time', op: 'CumSum', inputs: [randTies([3, 5], 'i32'), Tensor.fromNumbers('i64', [], [1])], attrs: { reverse: int(1), exclusive: int(1) } });

interface Prepared {
  node: Node;
  def: WasmKernelDef;
  expected: Tensor;
}
const prepared: Prepared[] = [];
let harness: WasmHarness;

beforeAll(() => {
  const kernels: Kernel[] = [];
  CASES.forEach((c, index) => {
    const node: Node = {
      name: `n${index}`, domain: '', op: c.op,
      inputs: c.inputs.map((_, i) => `x${i}`), outputs: ['y'],
      attributes: new Map(Object.entries(c.attrs ?? {})),
    };
    const opset = c.opset ?? (c.op === 'CumSum' ? 14 : 13);
    const [expected] = lookupOp('', c.op)!.evaluate({
      node, opset, attrs: new Attrs(node), inputs: c.inputs,
      runSubgraph: () => { throw new Error('no subgraphs'); },
    });
    const def = lookupWasmKernel('', c.op);
    if (!def) throw new Error(`no wasm kernel for ${c.op}`);
    const typeOf = (t: Tensor): TensorType => ({ dtype: t.dtype, shape: [...t.shape] });
    const ctx: KernelBuildContext = {
      node, inputs: c.inputs.map(typeOf), outputs: [typeOf(expected)],
      constant: (i) => (c.constants?.includes(i) ? c.inputs[i] : undefined),
      name: `k${index}`, opset,
    };
    const reason = def.check(ctx);
    if (reason) throw new Error(`${c.label}: check refused: ${reason}`);
    kernels.push(def.build(ctx));
    prepared.push({ node, def, expected });
  });
  harness = new WasmHarness(kernels);
});

describe('wasm ArgMax/ArgMin/CumSum kernels match the reference', () => {
  for (const [index, c] of CASES.entries()) {
    it(c.label, () => {
      const { node, def, expected } = prepared[index];
      harness.reset();
      // Arena storage: floats f32, integers (int64 included) i32.
      const inOffsets = c.inputs.map((t) => (isFloat(t.dtype) ? harness.writeF32(t.numbers()) : harness.writeI32(Array.from(t.numbers()))));
      const outOffset = harness.alloc(4 * expected.size);
      const args = def.args(node, { inputs: c.inputs.map((t) => [...t.shape]), outputs: [[...expected.shape]] });
      harness.call(`k${index}`, ...inOffsets, outOffset, ...args);
      const actual = isFloat(expected.dtype) ? Array.from(harness.f32(outOffset, expected.size)) : Array.from(harness.i32(outOffset, expected.size));
      const want = Array.from(expected.numbers());
      if (isFloat(expected.dtype)) {
        actual.forEach((a, i) => expect(Math.abs(a - want[i]), `[${i}]: got ${a}, expected ${want[i]}`).toBeLessThanOrEqual(1e-5 * Math.abs(want[i]) + 1e-5));
      } else {
        expect(actual).toEqual(want);
      }
    });
  }
});

describe('wasm ArgMax/ArgMin/CumSum checks', () => {
  const ctxFor = (op: string, inputs: TensorType[], attrs: Record<string, Attribute>, constant?: Tensor): KernelBuildContext => ({
    node: { name: 'n', domain: '', op, inputs: inputs.map((_, i) => `x${i}`), outputs: ['y'], attributes: new Map(Object.entries(attrs)) },
    inputs, outputs: [{ dtype: 'i64', shape: [1] }], constant: (i) => (i === 1 ? constant : undefined), name: 'k', opset: 13,
  });
  it('refuses an axis out of range, an empty axis and an unknown rank', () => {
    const def = lookupWasmKernel('', 'ArgMax')!;
    expect(def.check(ctxFor('ArgMax', [{ dtype: 'f32', shape: [2, 3] }], { axis: int(2) }))).toMatch(/out of range/);
    expect(def.check(ctxFor('ArgMax', [{ dtype: 'f32', shape: [0, 3] }], {}))).toMatch(/empty axis/);
    expect(def.check(ctxFor('ArgMax', [{ dtype: 'f32', shape: undefined }], {}))).toMatch(/rank is unknown/);
  });
  it('refuses a CumSum constant axis out of range and a non-scalar axis', () => {
    const def = lookupWasmKernel('', 'CumSum')!;
    const axisType: TensorType = { dtype: 'i64', shape: [] };
    expect(def.check(ctxFor('CumSum', [{ dtype: 'f32', shape: [2, 3] }, axisType], {}, Tensor.fromNumbers('i64', [], [-3])))).toMatch(/out of range/);
    expect(def.check(ctxFor('CumSum', [{ dtype: 'f32', shape: [2, 3] }, { dtype: 'i64', shape: [2] }], {}))).toMatch(/scalar/);
    expect(def.check(ctxFor('CumSum', [{ dtype: 'f32', shape: [2, 3] }, axisType], {}))).toBeUndefined();
  });
});
