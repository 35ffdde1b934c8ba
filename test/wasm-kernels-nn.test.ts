import { existsSync, readdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { buildWasmModule } from '../codegen/wasm/module.js';
import { inferTypes } from '../ir/infer.js';
import { loadModel } from '../src/onnx/load.js';
import { WasmHarness } from '../codegen/wasm/harness.js';
import type { Kernel } from '../codegen/kernel.js';
import type { DType } from '../ir/dtype.js';
import type { Node, TensorType } from '../ir/graph.js';
import { Tensor } from '../ir/tensor.js';
import type { KernelBuildContext, WasmKernelDef } from '../targets/wasm/kernel-def.js';
import { lookupWasmKernel } from '../targets/wasm/kernels/index.js';
import { arenaElem } from '../targets/wasm/kernels/nn-util.js';
import { model, node, rng, run, randomTensor, type AttrValue } from './helpers/lut-graph.js';

/**
 * Every W4 kernel (matmul, attention, rotary, gather, data movement) built into ONE module,
 * run in Node on random inputs across its feature matrix, and compared with the reference
 * interpreter's op.
 */

interface Case {
  label: string;
  node: Node;
  def: WasmKernelDef;
  inputs: (Tensor | undefined)[];
  /** Inputs visible to the kernel builder as compile-time constants. */
  constants: Set<number>;
  expected: Tensor[];
  kernel: Kernel;
  opsets: Map<string, number>;
}

const cases: Case[] = [];
let caseCounter = 0;

function addCase(
  label: string, op: string, domain: string, inputs: (Tensor | undefined)[], attrs: Record<string, AttrValue> = {},
  options: { constants?: number[]; outputs?: number; opset?: number; omitOutputs?: number[] } = {},
): void {
  const inputNames = inputs.map((t, i) => (t ? `x${i}` : ''));
  const outputCount = options.outputs ?? 1;
  const outputNames = Array.from({ length: outputCount }, (_, i) => (options.omitOutputs?.includes(i) ? '' : `y${i}`));
  const n = node(op, inputNames, outputNames, attrs, domain, `n${caseCounter}`);
  const opsets = new Map([['', options.opset ?? 24], ['com.microsoft', 1]]);
  const m = model({
    inputs: inputs.flatMap((t, i) => (t ? [{ name: `x${i}`, dtype: t.dtype, shape: t.shape }] : [])),
    outputs: outputNames.filter((o) => o).map((o) => ({ name: o, dtype: 'f32' as DType })),
    nodes: [n],
  });
  m.opsets = opsets;
  // Leave the output types undeclared: the interpreter then takes what the op produces.
  m.graph.outputs = m.graph.outputs.map((o) => ({ name: o.name, type: undefined as unknown as TensorType }));
  const feeds: Record<string, Tensor> = {};
  inputs.forEach((t, i) => { if (t) feeds[`x${i}`] = t; });
  const result = run(m, feeds);
  const expected = outputNames.map((o) => (o ? result.get(o)! : Tensor.zeros('f32', [0])));
  const def = lookupWasmKernel(domain, op);
  if (!def) throw new Error(`no wasm kernel for ${domain}.${op}`);
  const constants = new Set(options.constants ?? []);
  const ctx: KernelBuildContext = {
    node: n,
    inputs: inputs.map((t): TensorType | undefined => (t ? { dtype: t.dtype, shape: [...t.shape] } : undefined)),
    outputs: expected.map((t) => ({ dtype: t.dtype, shape: [...t.shape] })),
    constant: (i) => (constants.has(i) ? inputs[i] : undefined),
    name: `k${caseCounter++}_${op}`,
  };
  const reason = def.check(ctx);
  if (reason) throw new Error(`${label}: check refused: ${reason}`);
  cases.push({ label, node: n, def, inputs, constants, expected, kernel: def.build(ctx), opsets });
}

function write(h: WasmHarness, t: Tensor): number {
  const elem = arenaElem(t.dtype);
  const values = t.numbers();
  if (elem === 'f32') return h.writeF32(values);
  if (elem === 'u8') return h.writeU8(values);
  return h.writeI32(values);
}

function read(h: WasmHarness, offset: number, like: Tensor): number[] {
  const elem = arenaElem(like.dtype);
  if (elem === 'f32') return [...h.f32(offset, like.size)];
  if (elem === 'u8') return [...h.u8(offset, like.size)];
  return [...h.i32(offset, like.size)];
}

function close(actual: number[], expected: ArrayLike<number>, rtol: number, atol: number): string | undefined {
  if (actual.length !== expected.length) return `length ${actual.length} != ${expected.length}`;
  for (let i = 0; i < actual.length; i++) {
    const a = actual[i], e = expected[i];
    if (Number.isNaN(e) ? !Number.isNaN(a) : !(a === e || Math.abs(a - e) <= atol + rtol * Math.abs(e))) {
      return `element ${i}: got ${a}, expected ${e}`;
    }
  }
  return undefined;
}

let harness: WasmHarness | undefined;
function runCase(c: Case): string | undefined {
  const h = harness!;
  h.reset();
  const present = c.inputs.filter((t): t is Tensor => !!t);
  const inputOffsets = present.map((t) => write(h, t));
  const outputs = c.expected.filter((_, i) => c.node.outputs[i]);
  const outputOffsets = outputs.map((t) => {
    const offset = h.alloc(Math.max(1, t.size) * 4);
    // Poison outputs so unwritten elements show.
    h.f32(offset, t.size).fill(Number.NaN);
    return offset;
  });
  const shapes = {
    inputs: c.inputs.map((t) => (t ? [...t.shape] : undefined)),
    outputs: c.expected.map((t) => [...t.shape]),
  };
  const buffers = [...inputOffsets, ...outputOffsets];
  if (c.def.scratchBytes) buffers.push(h.alloc(c.def.scratchBytes(c.node, shapes)));
  h.call(c.kernel.name, ...buffers, ...c.def.args(c.node, shapes));
  let o = 0;
  for (const [i, t] of c.expected.entries()) {
    if (!c.node.outputs[i]) continue;
    const got = read(h, outputOffsets[o++], t);
    const problem = close(got, t.numbers(), 1e-5, 1e-5);
    if (problem) return `output ${i}: ${problem}`;
  }
  return undefined;
}

const random = rng(42);
const f32 = (shape: number[], scale = 4): Tensor => randomTensor('f32', shape, random, scale);
const ints = (dtype: DType, shape: number[], values: number[]): Tensor => Tensor.fromNumbers(dtype, shape, values);
const intsAttr = (value: number[]): AttrValue => ({ kind: 'ints', value });

// ---- data movement
addCase('transpose 2-D', 'Transpose', '', [f32([5, 7])], { perm: intsAttr([1, 0]) });
addCase('transpose 4-D', 'Transpose', '', [f32([2, 3, 4, 5])], { perm: intsAttr([0, 2, 1, 3]) });
addCase('transpose default', 'Transpose', '', [f32([2, 3, 4])]);
addCase('transpose bool', 'Transpose', '', [ints('bool', [2, 3], [1, 0, 1, 1, 0, 0])], { perm: intsAttr([1, 0]) });
addCase('concat axis 2', 'Concat', '', [f32([2, 3, 1, 4]), f32([2, 3, 5, 4])], { axis: 2 });
addCase('concat axis -1 int64', 'Concat', '', [ints('i64', [2, 2], [1, 2, 3, 4]), ints('i64', [2, 1], [5, 6]), ints('i64', [2, 3], [7, 8, 9, 10, 11, 12])], { axis: -1 });
addCase('split attr', 'Split', '', [f32([4, 6])], { axis: 1, split: intsAttr([2, 4]) }, { outputs: 2, opset: 11 });
addCase('split input', 'Split', '', [f32([6, 3]), ints('i64', [3], [1, 2, 3])], { axis: 0 }, { outputs: 3, constants: [1] });
addCase('split num_outputs', 'Split', '', [f32([2, 7])], { axis: 1, num_outputs: 3 }, { outputs: 3, opset: 18 });
addCase('expand', 'Expand', '', [f32([3, 1]), ints('i64', [3], [2, 3, 4])], {}, { constants: [1] });
addCase('expand same rank', 'Expand', '', [f32([1, 1, 3, 3]), ints('i64', [4], [2, 1, 3, 3])]);
addCase('tile', 'Tile', '', [f32([2, 3]), ints('i64', [2], [2, 3])]);
addCase('tile 4-D', 'Tile', '', [f32([2, 1, 2, 3]), ints('i64', [4], [1, 1, 2, 1])]);
addCase('slice basic', 'Slice', '', [f32([5, 6]), ints('i64', [2], [1, 0]), ints('i64', [2], [4, 5])], {}, { constants: [1, 2] });
addCase('slice runtime starts', 'Slice', '', [f32([5, 6]), ints('i64', [2], [1, -4]), ints('i64', [2], [4, 100])], {});
addCase('slice steps', 'Slice', '', [f32([5, 6, 3]), ints('i64', [2], [-1, 0]), ints('i64', [2], [-6, 9]), ints('i64', [2], [0, 1]), ints('i64', [2], [-2, 2])], {}, { constants: [1, 2, 3, 4] });
addCase('slice clamp', 'Slice', '', [f32([4, 5]), ints('i64', [1], [10]), ints('i64', [1], [-100]), ints('i64', [1], [1]), ints('i64', [1], [-1])], {}, { constants: [3, 4] });
addCase('slice int64 max', 'Slice', '', [f32([4, 5]), ints('i64', [1], [2]), ints('i64', [1], [2 ** 62]), ints('i64', [1], [-1])], {}, { constants: [1, 2, 3] });
addCase('slice runtime axes and steps', 'Slice', '', [f32([5, 6, 3]), ints('i64', [2], [-1, 0]), ints('i64', [2], [-6, 9]), ints('i64', [2], [0, -2]), ints('i64', [2], [-2, 2])]);
addCase('slice opset 1', 'Slice', '', [f32([4, 5])], { starts: intsAttr([1, -3]), ends: intsAttr([3, 1000]), axes: intsAttr([0, 1]) }, { opset: 9 });
addCase('pad constant', 'Pad', '', [f32([2, 3]), ints('i64', [4], [1, 0, 2, 2]), Tensor.fromNumbers('f32', [], [1.5])], {}, { constants: [1], opset: 13 });
addCase('pad runtime pads', 'Pad', '', [f32([2, 3, 2]), ints('i64', [6], [0, 1, 0, 1, 2, 1])], {}, { opset: 13 });
addCase('pad negative', 'Pad', '', [f32([3, 4]), ints('i64', [4], [-1, 1, 0, -2])], {}, { constants: [1], opset: 13 });
addCase('pad axes', 'Pad', '', [f32([3, 4]), ints('i64', [2], [2, 1]), undefined, ints('i64', [1], [-1])], {}, { constants: [1, 3], opset: 18 });
addCase('pad opset 2', 'Pad', '', [f32([2, 2])], { pads: intsAttr([1, 1, 0, 1]), value: 2.5 }, { opset: 2 });
addCase('trilu upper', 'Trilu', '', [f32([2, 4, 5])]);
addCase('trilu lower k', 'Trilu', '', [f32([4, 5]), ints('i64', [], [-1])], { upper: 0 });
addCase('gather embedding', 'Gather', '', [f32([10, 4]), ints('i64', [2, 3], [0, 9, -1, 3, 5, -10])]);
addCase('gather axis 1', 'Gather', '', [f32([3, 5, 2]), ints('i32', [2], [4, -2])], { axis: 1 });
addCase('gather scalar index', 'Gather', '', [f32([3, 5]), ints('i64', [], [2])], { axis: 0 });
addCase('tensorscatter linear', 'TensorScatter', '', [f32([2, 3, 6, 4]), f32([2, 3, 2, 4]), ints('i64', [2], [1, 4])]);
addCase('tensorscatter circular axis 1', 'TensorScatter', '', [f32([2, 5, 4]), f32([2, 3, 4]), ints('i64', [2], [3, 4])], { axis: 1, mode: 'circular' });
addCase('tensorscatter no indices', 'TensorScatter', '', [f32([2, 5, 4]), f32([2, 2, 4])], { axis: 1 });

// ---- matmul / gemm
for (const [a, b] of [[[1, 16], [16, 24]], [[7, 9], [9, 13]], [[2, 3, 5, 6], [6, 11]], [[6], [6, 5]], [[4, 6], [6]], [[2, 1, 3, 8], [3, 8, 9]], [[9, 33], [33, 40]]] as number[][][]) {
  addCase(`matmul ${JSON.stringify(a)}x${JSON.stringify(b)}`, 'MatMul', '', [f32(a), f32(b)]);
}
addCase('gemm plain', 'Gemm', '', [f32([3, 4]), f32([4, 5])]);
addCase('gemm trans + C row', 'Gemm', '', [f32([4, 3]), f32([5, 4]), f32([5])], { transA: 1, transB: 1, alpha: 0.5, beta: { kind: 'float', value: 2 } });
addCase('gemm C column', 'Gemm', '', [f32([3, 4]), f32([4, 5]), f32([3, 1])], { beta: { kind: 'float', value: -1 } });

// ---- ai.onnx Attention
{
  const B = 2, H = 4, KV = 2, L = 3, T = 5, D = 8;
  addCase('attention 4-D GQA', 'Attention', '', [f32([B, H, L, D], 2), f32([B, KV, T, D], 2), f32([B, KV, T, D])]);
  addCase('attention 3-D + causal + past', 'Attention', '',
    [f32([B, L, H * D], 2), f32([B, L, KV * D], 2), f32([B, L, KV * 6]), undefined, f32([B, KV, 2, D]), f32([B, KV, 2, 6])],
    { q_num_heads: H, kv_num_heads: KV, is_causal: 1 }, { outputs: 3 });
  addCase('attention bool mask short + softcap + scale', 'Attention', '',
    [f32([B, H, L, D], 4), f32([B, H, T, D], 4), f32([B, H, T, D]), Tensor.fromNumbers('bool', [L, T - 1], Array.from({ length: L * (T - 1) }, (_, i) => (i % 3 ? 1 : 0)))],
    { softcap: 2.5, scale: 0.3 });
  addCase('attention float mask 4-D + qk mode 0', 'Attention', '',
    [f32([B, H, L, D]), f32([B, KV, T, D]), f32([B, KV, T, D]), f32([B, 1, L, T])],
    { qk_matmul_output_mode: 0 }, { outputs: 4, omitOutputs: [1, 2] });
  for (const mode of [1, 2, 3]) {
    addCase(`attention qk mode ${mode} causal`, 'Attention', '',
      [f32([1, 2, 4, D]), f32([1, 2, 4, D]), f32([1, 2, 4, D]), f32([1, 2, 4, 4])],
      { qk_matmul_output_mode: mode, is_causal: 1 }, { outputs: 4 });
  }
  addCase('attention fully masked rows', 'Attention', '',
    [f32([1, 2, 2, D]), f32([1, 2, 3, D]), f32([1, 2, 3, D]), Tensor.fromNumbers('bool', [2, 3], [0, 0, 0, 1, 0, 1])]);
  addCase('attention nonpad (opset 24, external cache)', 'Attention', '',
    [f32([2, 3, 16]), f32([2, 6, 8]), f32([2, 6, 8]), f32([2, 1, 3, 6]), undefined, undefined, ints('i64', [2], [4, 6])],
    { q_num_heads: 4, kv_num_heads: 2, is_causal: 1, scale: 0.25 }, { outputs: 3 });
}

// ---- rotary
{
  const cache = (rows: number, half: number): Tensor[] => [f32([rows, half], 2), f32([rows, half], 2)];
  const [c8, s8] = cache(10, 4);
  addCase('rotary 4-D position ids', 'RotaryEmbedding', '', [f32([2, 3, 4, 8]), c8, s8, ints('i64', [2, 4], [0, 1, 2, 3, 5, 6, 7, 9])], {}, { opset: 23 });
  addCase('rotary 3-D interleaved', 'RotaryEmbedding', '', [f32([2, 4, 24]), c8, s8, ints('i64', [2, 4], [1, 1, 2, 3, 0, 6, 7, 8])], { num_heads: 3, interleaved: 1 }, { opset: 23 });
  const [c2, s2] = cache(10, 2);
  addCase('rotary partial dim', 'RotaryEmbedding', '', [f32([1, 2, 3, 8]), c2, s2, ints('i64', [1, 3], [4, 5, 6])], { rotary_embedding_dim: 4 }, { opset: 23 });
  addCase('rotary 3-D caches, no ids', 'RotaryEmbedding', '', [f32([2, 3, 16]), f32([2, 3, 4]), f32([2, 3, 4])], { num_heads: 2 }, { opset: 23 });
  addCase('ms rotary ids (B,S)', 'RotaryEmbedding', 'com.microsoft', [f32([2, 3, 16]), ints('i64', [2, 3], [0, 1, 2, 4, 5, 6]), c8, s8]);
  addCase('ms rotary one position', 'RotaryEmbedding', 'com.microsoft', [f32([2, 3, 16]), ints('i64', [1], [5]), c8, s8], { interleaved: 1 });
  addCase('ms rotary 4-D', 'RotaryEmbedding', 'com.microsoft', [f32([1, 2, 3, 8]), ints('i64', [1, 3], [7, 8, 9]), c8, s8]);
  addCase('ms rotary partial', 'RotaryEmbedding', 'com.microsoft', [f32([1, 3, 16]), ints('i64', [1, 3], [7, 8, 9]), c2, s2], { num_heads: 2, rotary_embedding_dim: 4 });
}

// ---- com.microsoft Attention / MultiHeadAttention
{
  const B = 2, S = 3, N = 2, H = 4, P = 2, In = 5;
  const mask2 = ints('i32', [B, P + S], [1, 1, 1, 1, 1, 0, 1, 1, 1, 0]);
  addCase('ms attention plain', 'Attention', 'com.microsoft', [f32([B, S, In]), f32([In, 3 * N * H]), f32([3 * N * H])], { num_heads: N });
  addCase('ms attention gpt2 (past, unidirectional, 2-D mask, lowest filter)', 'Attention', 'com.microsoft',
    [f32([B, S, In]), f32([In, 3 * N * H]), f32([3 * N * H]), mask2, f32([2, B, N, P, H])],
    { num_heads: N, unidirectional: 1, mask_filter_value: { kind: 'float', value: -3.4028234663852886e38 } }, { outputs: 2 });
  addCase('ms attention decode step', 'Attention', 'com.microsoft',
    [f32([B, 1, In]), f32([In, 3 * N * H]), f32([3 * N * H]), ints('i32', [B, P + 1], [1, 1, 1, 0, 1, 1]), f32([2, B, N, P, H])],
    { num_heads: N, unidirectional: 1 }, { outputs: 2 });
  addCase('ms attention 1-D mask', 'Attention', 'com.microsoft', [f32([B, S, In]), f32([In, 3 * N * H]), undefined, ints('i32', [B], [2, 3])], { num_heads: N });
  addCase('ms attention 1-D start/end mask', 'Attention', 'com.microsoft', [f32([B, S, In]), f32([In, 3 * N * H]), undefined, ints('i32', [2 * B], [3, 2, 1, 0])], { num_heads: N });
  addCase('ms attention 3-D mask + bias + scale', 'Attention', 'com.microsoft',
    [f32([B, S, In]), f32([In, 3 * N * H]), undefined, ints('i32', [B, S, S], [1, 0, 1, 1, 1, 0, 0, 1, 1, 1, 1, 1, 0, 0, 1, 1, 0, 1]), undefined, f32([1, N, S, S])],
    { num_heads: N, scale: 0.7 });
  addCase('ms attention qkv_hidden_sizes', 'Attention', 'com.microsoft', [f32([B, S, In]), f32([In, 8 + 8 + 12]), f32([28])], { num_heads: N, qkv_hidden_sizes: intsAttr([8, 8, 12]) });
  addCase('mha 3-D kv, bias, past, attention_bias', 'MultiHeadAttention', 'com.microsoft',
    [f32([B, S, N * H]), f32([B, S, N * H]), f32([B, S, N * H]), f32([3 * N * H]), undefined, f32([B, 1, S, P + S]), f32([B, N, P, H]), f32([B, N, P, H])],
    { num_heads: N, scale: 0.25 }, { outputs: 3 });
  addCase('mha llama-like (no bias, past, attn bias)', 'MultiHeadAttention', 'com.microsoft',
    [f32([1, 1, 16]), f32([1, 1, 16]), f32([1, 1, 16]), undefined, undefined, f32([1, 1, 1, 4]), f32([1, 1, 3, 16]), f32([1, 1, 3, 16])],
    { num_heads: 1, scale: 0.25 }, { outputs: 3 });
  addCase('mha 4-D kv + padding mask', 'MultiHeadAttention', 'com.microsoft',
    [f32([B, S, N * H]), f32([B, N, 5, H]), f32([B, N, 5, 6]), f32([2 * N * H + N * 6]), ints('i32', [B, 5], [1, 1, 0, 1, 1, 1, 1, 1, 1, 0])],
    { num_heads: N });
  addCase('mha unidirectional, 1-D mask, present only key', 'MultiHeadAttention', 'com.microsoft',
    [f32([B, S, N * H]), f32([B, S, N * H]), f32([B, S, N * H]), undefined, ints('i32', [B], [3, 2]), undefined, f32([B, N, P, H]), f32([B, N, P, H])],
    { num_heads: N, unidirectional: 1 }, { outputs: 3, omitOutputs: [2] });
}

// ---- com.microsoft GroupQueryAttention
{
  const N = 4, KV = 2, H = 8;
  const gqa = (label: string, b: number, s: number, past: number, seqlens: number[], total: number, attrs: Record<string, AttrValue> = {}, extra: { packed?: boolean; rotary?: boolean; bias?: boolean; sink?: boolean } = {}): void => {
    const q = extra.packed ? f32([b, s, (N + 2 * KV) * H]) : f32([b, s, N * H]);
    const inputs: (Tensor | undefined)[] = [q, extra.packed ? undefined : f32([b, s, KV * H]), extra.packed ? undefined : f32([b, s, KV * H]),
      past >= 0 ? f32([b, KV, past, H]) : undefined, past >= 0 ? f32([b, KV, past, H]) : undefined,
      ints('i32', [b], seqlens), ints('i32', [], [total])];
    if (extra.rotary) inputs.push(f32([16, H / 2], 2), f32([16, H / 2], 2)); else inputs.push(undefined, undefined);
    inputs.push(undefined);
    const presentLen = Math.max(total, Math.max(past, 0));
    inputs.push(extra.bias ? f32([b, 1, s, presentLen]) : undefined);
    inputs.push(extra.sink ? f32([N]) : undefined);
    while (inputs.length && !inputs[inputs.length - 1]) inputs.pop();
    addCase(`gqa ${label}`, 'GroupQueryAttention', 'com.microsoft', inputs, { num_heads: N, kv_num_heads: KV, ...attrs }, { outputs: 3 });
  };
  gqa('first prompt', 2, 4, 0, [3, 2], 4);
  gqa('first prompt, no past input', 1, 3, -1, [2], 3);
  gqa('decode', 2, 1, 5, [5, 3], 6);
  gqa('decode with larger past buffer', 2, 1, 8, [5, 3], 6);
  gqa('subsequent prompt', 1, 3, 4, [6], 7);
  gqa('packed + rotary first prompt', 2, 3, 0, [2, 1], 3, { do_rotary: 1 }, { packed: true, rotary: true });
  gqa('rotary interleaved decode', 2, 1, 4, [4, 2], 5, { do_rotary: 1, rotary_interleaved: 1 }, { rotary: true });
  gqa('local window + softcap + scale', 1, 5, 0, [4], 5, { local_window_size: 2, softcap: 1.5, scale: 0.4 });
  gqa('attention bias + smooth softmax', 1, 2, 3, [4], 5, { smooth_softmax: 1 }, { bias: true });
  gqa('head sink', 1, 2, 2, [3], 4, {}, { sink: true });
}

// ---- com.microsoft EmbedLayerNormalization
addCase('embed layernorm gpt2-like', 'EmbedLayerNormalization', 'com.microsoft',
  [ints('i32', [2, 3], [1, 9, 4, 0, 2, 2]), undefined, f32([10, 8]), f32([6, 8]), undefined, f32([8]), f32([8]), undefined, ints('i32', [2, 3], [0, 1, 2, 3, 4, 5])],
  { epsilon: 1e-5 }, { outputs: 3 });
addCase('embed layernorm segments + mask + default positions', 'EmbedLayerNormalization', 'com.microsoft',
  [ints('i32', [2, 3], [1, 9, 4, 0, 2, 2]), ints('i32', [2, 3], [0, 1, 1, 1, 0, 0]), f32([10, 8]), f32([6, 8]), f32([2, 8]), f32([8]), f32([8]), ints('i32', [2, 3], [1, 1, 0, 1, 0, 0])],
  {}, { outputs: 3 });
addCase('embed layernorm broadcast positions, out only', 'EmbedLayerNormalization', 'com.microsoft',
  [ints('i32', [2, 3], [1, 9, 4, 0, 2, 2]), undefined, f32([10, 8]), f32([6, 8]), undefined, f32([8]), f32([8]), undefined, ints('i32', [1, 3], [2, 3, 4])],
  { epsilon: 1e-5 });

describe('wasm nn kernels (one module)', () => {
  it('builds every kernel into one module', () => {
    harness = new WasmHarness(cases.map((c) => c.kernel));
    expect(harness).toBeDefined();
  });
  for (const c of cases) {
    it(`${c.node.domain || 'ai.onnx'}.${c.node.op}: ${c.label}`, () => {
      expect(runCase(c)).toBeUndefined();
    });
  }
});

// ---- every op instance of the shared models that a W4 kernel covers passes `check` and builds
const MODEL_DIR = new URL('../../shared/models/', import.meta.url);
const W4_OPS = new Set([
  ':MatMul', ':Gemm', ':Gather', ':Transpose', ':Concat', ':Slice', ':Split', ':Expand', ':Tile', ':Pad', ':Trilu',
  ':TensorScatter', ':Attention', ':RotaryEmbedding', 'com.microsoft:Attention', 'com.microsoft:MultiHeadAttention',
  'com.microsoft:GroupQueryAttention', 'com.microsoft:RotaryEmbedding', 'com.microsoft:EmbedLayerNormalization',
]);

function modelFiles(): string[] {
  const root = fileURLToPath(MODEL_DIR);
  if (!existsSync(root)) return [];
  const found: string[] = [];
  const walk = (dir: string): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory() && !entry.name.startsWith('test_data')) walk(path);
      else if (entry.name === 'model.onnx') found.push(path);
    }
  };
  walk(root);
  return found.sort();
}

describe('shared models: W4 op instances pass check', () => {
  const files = modelFiles();
  it.skipIf(files.length === 0)('finds the shared models', () => expect(files.length).toBeGreaterThan(0));
  for (const file of files) {
    it(relative(fileURLToPath(MODEL_DIR), file), async () => {
      const m = await loadModel(file);
      inferTypes(m.graph, m.opsets);
      const typeOf = (name: string): TensorType | undefined => {
        const w = m.graph.initializers.get(name);
        if (w) return { dtype: w.dtype, shape: w.shape };
        return m.graph.valueInfo.get(name) ?? m.graph.inputs.find((i) => i.name === name)?.type;
      };
      // Compile-time constants: initializers and Constant nodes (what the compiler folds).
      const constants = new Map<string, Tensor>();
      for (const n of m.graph.nodes) {
        const value = n.attributes.get('value');
        if (n.op === 'Constant' && value?.kind === 'tensor') constants.set(n.outputs[0], value.value);
      }
      const refused: string[] = [];
      const kernels: Kernel[] = [];
      for (const n of m.graph.nodes) {
        if (!W4_OPS.has(`${n.domain}:${n.op}`)) continue;
        const def = lookupWasmKernel(n.domain, n.op)!;
        const ctx: KernelBuildContext = {
          node: n,
          inputs: n.inputs.map((name) => (name ? typeOf(name) : undefined)),
          outputs: n.outputs.map((name) => typeOf(name) ?? { dtype: 'f32', shape: undefined }),
          constant: (i) => constants.get(n.inputs[i]) ?? m.graph.initializers.get(n.inputs[i])?.load(),
          name: `m${kernels.length}_${n.op}`,
        };
        const reason = def.check(ctx);
        if (reason) refused.push(`${n.domain}.${n.op} ${n.name}: ${reason}`);
        else kernels.push(def.build(ctx));
      }
      expect(refused).toEqual([]);
      // The kernels validate as one module.
      if (kernels.length > 0) expect(buildWasmModule(kernels, { optimize: false }).length).toBeGreaterThan(0);
    });
  }
});
