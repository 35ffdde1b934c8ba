import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import type { Attribute, Node, TensorType } from '../ir/graph.js';
import type { DType } from '../ir/dtype.js';
import { Tensor } from '../ir/tensor.js';
import { Attrs } from '../ir/ops/attrs.js';
import { SymbolSource } from '../ir/dims.js';
import { LlmccError } from '../ir/errors.js';
import type { OpDef, OutputInfo } from '../ir/ops/types.js';
import { lookupOp } from '../ir/ops/registry.js';
import ort from 'onnxruntime-node';
import { floatAttr, singleNodeModel, type AttrValue as ModelAttr } from './helpers/onnx-builder.js';

type AttrValue = number | number[] | { float: number };

function node(op: string, inputCount: number, attributes: Record<string, AttrValue>): Node {
  const attrs = new Map<string, Attribute>();
  for (const [name, value] of Object.entries(attributes)) {
    if (Array.isArray(value)) attrs.set(name, { kind: 'ints', value });
    else if (typeof value === 'number') attrs.set(name, { kind: 'int', value });
    else attrs.set(name, { kind: 'float', value: value.float });
  }
  return {
    name: `test_${op}`, domain: '', op,
    inputs: Array.from({ length: inputCount }, (_, i) => `in${i}`),
    outputs: ['out0', 'out1', 'out2', 'out3'],
    attributes: attrs,
  };
}

function def(op: string): OpDef {
  const found = lookupOp('', op);
  if (!found) throw new Error(`op ${op} is not registered`);
  return found;
}

function infer(op: string, inputs: (TensorType | undefined)[], attributes: Record<string, AttrValue> = {}, opset = 23): OutputInfo[] {
  const n = node(op, inputs.length, attributes);
  return def(op).infer({
    node: n, opset, attrs: new Attrs(n), inputs,
    constant: () => undefined, shapeValue: () => undefined,
    symbols: new SymbolSource(), inferSubgraph: () => [],
  });
}

/** Evaluates an op and checks that its inferred types agree with what it computed. */
function run(op: string, inputs: (Tensor | undefined)[], attributes: Record<string, AttrValue> = {}, opset = 23): Tensor[] {
  const n = node(op, inputs.length, attributes);
  const outputs = def(op).evaluate({
    node: n, opset, attrs: new Attrs(n), inputs, runSubgraph: () => [],
  });
  const inferred = infer(op, inputs.map((t) => (t ? { dtype: t.dtype, shape: [...t.shape] } : undefined)), attributes, opset);
  outputs.forEach((t, i) => {
    expect(inferred[i].type.dtype).toBe(t.dtype);
    expect(inferred[i].type.shape).toEqual([...t.shape]);
  });
  return outputs;
}

const t = (dtype: DType, shape: number[], values: number[]): Tensor => Tensor.fromNumbers(dtype, shape, values);
const f32 = (shape: number[], values: number[]): Tensor => t('f32', shape, values);
const values = (x: Tensor): number[] => x.toArray();
const seq = (n: number, scale = 1, shift = 0): number[] => Array.from({ length: n }, (_, i) => (i + shift) * scale);

function expectClose(actual: number[], expected: number[], tol = 1e-5): void {
  expect(actual.length).toBe(expected.length);
  actual.forEach((a, i) => {
    if (Number.isNaN(expected[i])) expect(a).toBeNaN();
    else expect(Math.abs(a - expected[i])).toBeLessThanOrEqual(tol * (1 + Math.abs(expected[i])));
  });
}

describe('MatMul', () => {
  it('multiplies 2-D matrices', () => {
    const [y] = run('MatMul', [f32([2, 3], [1, 2, 3, 4, 5, 6]), f32([3, 2], [7, 8, 9, 10, 11, 12])]);
    expect(values(y)).toEqual([58, 64, 139, 154]);
  });

  it('promotes 1-D operands and drops the promoted dims', () => {
    expect(run('MatMul', [f32([3], [1, 2, 3]), f32([3], [4, 5, 6])])[0].shape).toEqual([]);
    const [y] = run('MatMul', [f32([3], [1, 2, 3]), f32([2, 3, 2], seq(12))]);
    expect(y.shape).toEqual([2, 2]);
    expect(values(y)).toEqual([16, 22, 52, 58]);
    expect(run('MatMul', [f32([2, 1, 2, 3], seq(12)), f32([3], [1, 1, 1])])[0].shape).toEqual([2, 1, 2]);
  });

  it('broadcasts batch dims', () => {
    const [y] = run('MatMul', [f32([2, 1, 1, 2], [1, 2, 3, 4]), f32([3, 2, 1], [1, 1, 2, 2, 3, 3])]);
    expect(y.shape).toEqual([2, 3, 1, 1]);
    expect(values(y)).toEqual([3, 6, 9, 7, 14, 21]);
  });

  it('wraps integer results like the dtype', () => {
    const [y] = run('MatMul', [t('i8', [1, 2], [100, 100]), t('i8', [2, 1], [1, 1])]);
    expect(y.dtype).toBe('i8');
    expect(values(y)).toEqual([-56]);
    expect(values(run('MatMul', [t('i64', [1, 2], [2 ** 40, 3]), t('i64', [2, 1], [4, 5])])[0])).toEqual([2 ** 42 + 15]);
  });

  it('rounds f16 results once from the exact sum', () => {
    // 2048 + 1 + 1 is 2050 exactly; f16 step-by-step accumulation would give 2048.
    const [y] = run('MatMul', [t('f16', [1, 3], [2048, 1, 1]), t('f16', [3, 1], [1, 1, 1])]);
    expect(values(y)).toEqual([2050]);
  });

  it('keeps symbolic dims symbolic', () => {
    const [out] = infer('MatMul', [{ dtype: 'f32', shape: ['batch', 'seq', 64] }, { dtype: 'f32', shape: [64, 128] }]);
    expect(out.type.shape).toEqual(['batch', 'seq', 128]);
    expect(infer('MatMul', [{ dtype: 'f32', shape: undefined }, { dtype: 'f32', shape: [2, 2] }])[0].type.shape).toBeUndefined();
  });

  it('rejects mismatched inner dims with an LlmccError naming the node', () => {
    expect(() => run('MatMul', [f32([2, 3], seq(6)), f32([2, 2], seq(4))])).toThrow(LlmccError);
    expect(() => infer('MatMul', [{ dtype: 'f32', shape: [2, 3] }, { dtype: 'f32', shape: [4, 2] }])).toThrow(/test_MatMul/);
  });

  it('agrees with a naive batched product (property)', () => {
    fc.assert(fc.property(
      fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 4 }), fc.integer({ min: 1, max: 4 }), fc.integer({ min: 1, max: 4 }),
      (batch, m, k, n) => {
        const a = f32([batch, m, k], seq(batch * m * k, 0.5, -3));
        const b = f32([k, n], seq(k * n, 0.25, -2));
        const [y] = run('MatMul', [a, b]);
        const av = values(a);
        const bv = values(b);
        const expected: number[] = [];
        for (let z = 0; z < batch; z++) {
          for (let i = 0; i < m; i++) {
            for (let j = 0; j < n; j++) {
              let s = 0;
              for (let p = 0; p < k; p++) s += av[(z * m + i) * k + p] * bv[p * n + j];
              expected.push(s);
            }
          }
        }
        expectClose(values(y), expected);
      },
    ), { numRuns: 30 });
  });
});

describe('Gemm', () => {
  const a = f32([2, 3], [1, 2, 3, 4, 5, 6]);
  const bT = f32([2, 3], [1, 0, 1, 0, 1, 0]);

  it('applies transposes, alpha, beta and a broadcast C', () => {
    const [y] = run('Gemm', [a, bT, f32([2], [10, 20])], { transB: 1, alpha: { float: 2 }, beta: { float: 0.5 } });
    expect(values(y)).toEqual([2 * 4 + 5, 2 * 2 + 10, 2 * 10 + 5, 2 * 5 + 10]);
    const [z] = run('Gemm', [f32([3, 2], [1, 4, 2, 5, 3, 6]), bT], { transA: 1, transB: 1 });
    expect(values(z)).toEqual([4, 2, 10, 5]);
  });

  it('treats C as optional and rejects a C that does not broadcast', () => {
    expect(values(run('Gemm', [a, bT], { transB: 1 })[0])).toEqual([4, 2, 10, 5]);
    expect(() => run('Gemm', [a, bT, f32([3], [1, 2, 3])], { transB: 1 })).toThrow(LlmccError);
  });
});

describe('LayerNormalization and RMSNormalization', () => {
  it('normalizes over the trailing dims and returns Mean and InvStdDev', () => {
    const x = f32([2, 2], [1, 3, 2, 6]);
    const [y, mean, inv] = run('LayerNormalization', [x, f32([2], [1, 2]), f32([2], [0, 1])], { epsilon: { float: 0 } }, 17);
    expectClose(values(y), [-1, 3, -1, 3]);
    expect(mean.shape).toEqual([2, 1]);
    expectClose(values(mean), [2, 4]);
    expectClose(values(inv), [1, 0.5]);
  });

  it('honours axis (negative too) and broadcasts Scale over the normalized dims', () => {
    const x = f32([2, 2, 2], [1, 3, 2, 6, 0, 0, 4, 4]);
    const [y, mean] = run('LayerNormalization', [x, f32([1], [1])], { axis: -2, epsilon: { float: 0 } }, 17);
    expect(mean.shape).toEqual([2, 1, 1]);
    expectClose(values(mean), [3, 2]);
    const sd = Math.sqrt((4 + 0 + 1 + 9) / 4);
    expectClose(values(y).slice(0, 4), [-2 / sd, 0, -1 / sd, 3 / sd]);
  });

  it('RMSNormalization divides by the root mean square', () => {
    const [y] = run('RMSNormalization', [f32([1, 2], [3, 4]), f32([2], [1, 2])], { epsilon: { float: 0 } });
    const rms = Math.sqrt(12.5);
    expectClose(values(y), [3 / rms, 8 / rms]);
  });

  it('rejects a scale that does not fit the normalized shape', () => {
    expect(() => run('RMSNormalization', [f32([2, 3], seq(6)), f32([2], [1, 1])])).toThrow(LlmccError);
    expect(() => run('LayerNormalization', [f32([2, 3], seq(6)), f32([3], [1, 1, 1])], { axis: 5 }, 17)).toThrow(LlmccError);
  });
});

/** Straightforward attention on 4-D inputs, for comparison. */
function naiveAttention(q: number[][][][], k: number[][][][], v: number[][][][], bias?: (b: number, h: number, i: number, j: number) => number): number[] {
  const out: number[] = [];
  const group = q[0].length / k[0].length;
  q.forEach((qb, b) => qb.forEach((qh, h) => qh.forEach((qi, i) => {
    const kh = k[b][Math.floor(h / group)];
    const vh = v[b][Math.floor(h / group)];
    const s = kh.map((kj, j) => qi.reduce((acc, x, d) => acc + x * kj[d], 0) / Math.sqrt(qi.length) + (bias ? bias(b, h, i, j) : 0));
    const m = Math.max(...s);
    const e = s.map((x) => Math.exp(x - m));
    const z = e.reduce((x, y) => x + y, 0);
    for (let d = 0; d < vh[0].length; d++) out.push(e.reduce((acc, p, j) => acc + (p / z) * vh[j][d], 0));
  })));
  return out;
}

function nest(x: Tensor): number[][][][] {
  const [b, h, s, d] = x.shape;
  const v = values(x);
  return Array.from({ length: b }, (_, bi) => Array.from({ length: h }, (_, hi) => Array.from({ length: s }, (_, si) =>
    v.slice(((bi * h + hi) * s + si) * d, ((bi * h + hi) * s + si + 1) * d))));
}

const pseudo = (n: number, seed: number): number[] => Array.from({ length: n }, (_, i) => Math.sin(i * 12.9898 + seed * 78.233) * 0.9);

describe('Attention', () => {
  const q = f32([1, 2, 3, 4], pseudo(24, 1));
  const k = f32([1, 2, 5, 4], pseudo(40, 2));
  const v = f32([1, 2, 5, 3], pseudo(30, 3));

  it('computes softmax(QK^T / sqrt(d)) V and reports present K/V and shapes', () => {
    const [y, presentKey, presentValue, qk] = run('Attention', [q, k, v]);
    expectClose(values(y), naiveAttention(nest(q), nest(k), nest(v)));
    expect(values(presentKey)).toEqual(values(k));
    expect(values(presentValue)).toEqual(values(v));
    expect(qk.shape).toEqual([1, 2, 3, 5]);
  });

  it('masks causally, bottom-right aligned after a past cache', () => {
    const pastKey = f32([1, 2, 2, 4], pseudo(16, 4));
    const pastValue = f32([1, 2, 2, 3], pseudo(12, 5));
    const kNew = f32([1, 2, 3, 4], pseudo(24, 6));
    const vNew = f32([1, 2, 3, 3], pseudo(18, 7));
    const [y, presentKey] = run('Attention', [q, kNew, vNew, undefined, pastKey, pastValue], { is_causal: 1 });
    expect(presentKey.shape).toEqual([1, 2, 5, 4]);
    const fullV = run('Attention', [q, kNew, vNew, undefined, pastKey, pastValue])[2];
    const expected = naiveAttention(nest(q), nest(presentKey), nest(fullV), (_b, _h, i, j) => (j > i + 2 ? -Infinity : 0));
    expectClose(values(y), expected);
  });

  it('pads a short bool mask with false and adds float masks', () => {
    const mask = t('bool', [3, 3], [1, 0, 1, 1, 1, 1, 0, 0, 1]);
    const [y] = run('Attention', [q, k, v, mask]);
    const allowed = values(mask);
    const expected = naiveAttention(nest(q), nest(k), nest(v), (_b, _h, i, j) => (j < 3 && allowed[i * 3 + j] ? 0 : -Infinity));
    expectClose(values(y), expected);
    const additive = f32([2, 3, 5], pseudo(30, 8));
    const add = values(additive);
    const [z] = run('Attention', [q, k, v, additive]);
    expectClose(values(z), naiveAttention(nest(q), nest(k), nest(v), (_b, h, i, j) => add[(h * 3 + i) * 5 + j]));
  });

  it('gives zeros, not NaN, for a fully masked row', () => {
    const mask = t('bool', [3, 5], [0, 0, 0, 0, 0, ...new Array<number>(10).fill(1)]);
    const [y, , , probs] = run('Attention', [q, k, v, mask], { qk_matmul_output_mode: 3 });
    const yv = values(y);
    expect(yv.slice(0, 3)).toEqual([0, 0, 0]);
    expect(yv.every(Number.isFinite)).toBe(true);
    expect(values(probs).slice(0, 5)).toEqual([0, 0, 0, 0, 0]);
  });

  it('shares KV heads across query-head groups (GQA) and matches the 3-D layout', () => {
    const q4 = f32([1, 4, 2, 2], pseudo(16, 9));
    const k4 = f32([1, 2, 3, 2], pseudo(12, 10));
    const v4 = f32([1, 2, 3, 2], pseudo(12, 11));
    const [y4] = run('Attention', [q4, k4, v4]);
    expectClose(values(y4), naiveAttention(nest(q4), nest(k4), nest(v4)));
    // Same data in [batch, seq, heads*size] form.
    const to3d = (x: Tensor): Tensor => {
      const [b, h, s, d] = x.shape;
      const src = values(x);
      const out = new Array<number>(src.length);
      for (let hi = 0; hi < h; hi++) for (let si = 0; si < s; si++) for (let di = 0; di < d; di++) {
        out[(si * h + hi) * d + di] = src[(hi * s + si) * d + di];
      }
      return f32([b, s, h * d], out);
    };
    const [y3] = run('Attention', [to3d(q4), to3d(k4), to3d(v4)], { q_num_heads: 4, kv_num_heads: 2 });
    expectClose(values(y3), values(to3d(y4)));
  });

  it('applies softcap before the mask and honours nonpad_kv_seqlen (opset 24)', () => {
    const [capped] = run('Attention', [q, k, v], { softcap: { float: 0.1 }, scale: { float: 1 } });
    expect(values(capped).every(Number.isFinite)).toBe(true);
    const [y] = run('Attention', [q, k, v, undefined, undefined, undefined, t('i64', [1], [3])], {}, 24);
    expectClose(values(y), naiveAttention(nest(q), nest(k), nest(v), (_b, _h, _i, j) => (j >= 3 ? -Infinity : 0)));
    expect(() => run('Attention', [q, k, v, undefined, undefined, undefined, t('i64', [1], [3])], {}, 23)).toThrow(LlmccError);
  });

  it('infers symbolic shapes, including the past + new total length', () => {
    const outs = infer('Attention', [
      { dtype: 'f16', shape: ['batch', 'seq', 64] }, { dtype: 'f16', shape: ['batch', 'seq', 32] },
      { dtype: 'f16', shape: ['batch', 'seq', 32] }, undefined,
      { dtype: 'f16', shape: ['batch', 2, 'past', 16] }, { dtype: 'f16', shape: ['batch', 2, 'past', 16] },
    ], { q_num_heads: 4, kv_num_heads: 2 });
    expect(outs[0].type.shape).toEqual(['batch', 'seq', 64]);
    expect(outs[1].type.shape).toEqual(['batch', 2, 'past+seq', 16]);
    expect(outs[3].type.shape).toEqual(['batch', 4, 'seq', 'past+seq']);
  });

  it('rejects bad head counts and modes', () => {
    expect(() => run('Attention', [f32([1, 2, 6], seq(12)), f32([1, 2, 6], seq(12)), f32([1, 2, 6], seq(12))])).toThrow(LlmccError);
    expect(() => run('Attention', [q, k, v], { qk_matmul_output_mode: 7 })).toThrow(LlmccError);
  });
});

describe('RotaryEmbedding', () => {
  it('rotates halves or interleaved pairs by the cached angles', () => {
    const x = f32([1, 1, 1, 4], [1, 2, 3, 4]);
    const angle = [Math.PI / 2, 0];
    const cos = f32([1, 2], angle.map(Math.cos));
    const sin = f32([1, 2], angle.map(Math.sin));
    const ids = t('i64', [1, 1], [0]);
    // Pairs (x0, x2) rotated by 90°, (x1, x3) by 0°.
    expectClose(values(run('RotaryEmbedding', [x, cos, sin, ids])[0]), [-3, 2, 1, 4]);
    // Pairs (x0, x1) rotated by 90°, (x2, x3) by 0°.
    expectClose(values(run('RotaryEmbedding', [x, cos, sin, ids], { interleaved: 1 })[0]), [-2, 1, 3, 4]);
  });

  it('rotates only rotary_embedding_dim and takes per-batch caches without position_ids', () => {
    const x = f32([1, 1, 4], [1, 2, 3, 4]);
    const cos = f32([1, 1, 1], [0]);
    const sin = f32([1, 1, 1], [1]);
    expectClose(values(run('RotaryEmbedding', [x, cos, sin], { num_heads: 1, rotary_embedding_dim: 2 })[0]), [-2, 1, 3, 4]);
    expect(() => run('RotaryEmbedding', [x, cos, sin])).toThrow(LlmccError);
  });
});

describe('quantization', () => {
  it('QuantizeLinear rounds half to even, adds the zero point and saturates', () => {
    const x = f32([6], [0.5, 1.5, 2.5, -0.5, 1000, -1000]);
    expect(values(run('QuantizeLinear', [x, f32([], [1]), t('u8', [], [10])])[0])).toEqual([10, 12, 12, 10, 255, 0]);
    expect(values(run('QuantizeLinear', [x, f32([], [1])], { output_dtype: 22 })[0])).toEqual([0, 2, 2, 0, 7, -8]);
    expect(run('QuantizeLinear', [x, f32([], [1])], { output_dtype: 26 })[0].dtype).toBe('i2');
  });

  it('QuantizeLinear supports per-axis and blocked scales', () => {
    const x = f32([2, 4], [1, 2, 3, 4, 5, 6, 7, 8]);
    const [perAxis] = run('QuantizeLinear', [x, f32([2], [1, 2]), t('i8', [2], [0, 1])], { axis: 0 });
    expect(values(perAxis)).toEqual([1, 2, 3, 4, 3, 4, 5, 5]);
    const [blocked] = run('QuantizeLinear', [x, f32([2, 2], [1, 2, 4, 8]), t('i8', [2, 2], [0, 0, 0, 0])], { axis: 1, block_size: 2 });
    expect(values(blocked)).toEqual([1, 2, 2, 2, 1, 2, 1, 1]);
    expect(() => run('QuantizeLinear', [x, f32([3, 2], seq(6, 1, 1))], { axis: 1, block_size: 2 })).toThrow(LlmccError);
  });

  it('QuantizeLinear to float8 saturates unless saturate=0', () => {
    const x = f32([2], [1e6, 0.3]);
    expect(values(run('QuantizeLinear', [x, f32([], [1])], { output_dtype: 17 })[0])).toEqual([448, 0.3125]);
    expect(values(run('QuantizeLinear', [x, f32([], [1])], { output_dtype: 17, saturate: 0 })[0])[0]).toBeNaN();
    expect(values(run('QuantizeLinear', [x, f32([], [1])], { output_dtype: 19, saturate: 0 })[0])[0]).toBe(Infinity);
  });

  it('DequantizeLinear subtracts the zero point and scales, blocked too', () => {
    const x = t('u8', [2, 2], [10, 20, 30, 40]);
    expect(values(run('DequantizeLinear', [x, f32([], [0.5]), t('u8', [], [10])])[0])).toEqual([0, 5, 10, 15]);
    const [blocked] = run('DequantizeLinear', [x, f32([1, 2], [1, 2]), t('u8', [1, 2], [0, 10])], { axis: 0, block_size: 2 });
    expect(values(blocked)).toEqual([10, 20, 30, 60]);
    const [half] = run('DequantizeLinear', [t('i4', [2], [-8, 7]), t('f16', [], [0.5])]);
    expect(half.dtype).toBe('f16');
    expect(values(half)).toEqual([-4, 3.5]);
  });

  it('DynamicQuantizeLinear matches the spec example', () => {
    const [y, scale, zeroPoint] = run('DynamicQuantizeLinear', [f32([6], [0, 2, -3, -2.5, 1.34, 0.5])], {}, 11);
    expect(values(y)).toEqual([153, 255, 0, 26, 221, 179]);
    expect(values(scale)[0]).toBeCloseTo(0.0196078, 6);
    expect(values(zeroPoint)).toEqual([153]);
  });

  it('MatMulInteger and QLinearMatMul subtract zero points exactly', () => {
    const a = t('u8', [2, 2], [11, 12, 13, 14]);
    const b = t('u8', [2, 2], [1, 2, 3, 4]);
    const [y] = run('MatMulInteger', [a, b, t('u8', [], [10])], {}, 10);
    expect(y.dtype).toBe('i32');
    expect(values(y)).toEqual([7, 10, 15, 22]);
    const [perColumn] = run('MatMulInteger', [a, b, t('u8', [2], [10, 11]), t('u8', [2], [1, 2])], {}, 10);
    // Rows of A minus [10, 11], columns of B minus [1, 2].
    expect(values(perColumn)).toEqual([4, 4, 6, 6]);
    const [q] = run('QLinearMatMul', [a, f32([], [1]), t('u8', [], [10]), b, f32([], [1]), t('u8', [], [0]),
      f32([], [2]), t('u8', [], [100])], {}, 21);
    expect(values(q)).toEqual([104, 105, 108, 111]);
  });
});

describe('SwiGLU', () => {
  it('computes A * sigmoid(alpha * A) * B', () => {
    const [y] = run('SwiGLU', [f32([2], [1, -2]), f32([2], [3, 4])], { alpha: { float: 2 } }, 28);
    expectClose(values(y), [3 / (1 + Math.exp(-2)), (-2 / (1 + Math.exp(4))) * 4]);
    expect(() => run('SwiGLU', [f32([2], [1, 2]), f32([1], [1])], {}, 28)).toThrow(LlmccError);
  });
});

// ---------------------------------------------------------------------------------------
// Differential checks against onnxruntime's CPU kernels (ai.onnx domain).

function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = a;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

function toOrt(x: Tensor): ort.Tensor {
  const dims = [...x.shape];
  const src = x.numbers();
  if (x.dtype === 'f32') return new ort.Tensor('float32', Float32Array.from(src), dims);
  if (x.dtype === 'i64') return new ort.Tensor('int64', BigInt64Array.from(Array.from(src, (v) => BigInt(v))), dims);
  if (x.dtype === 'bool') return new ort.Tensor('bool', Uint8Array.from(src), dims);
  throw new Error(`no ORT mapping for ${x.dtype}`);
}

/** Runs one node with our evaluate and with ORT; compares every output within atol. */
async function compareWithOrt(
  op: string, opset: number, inputs: (Tensor | undefined)[], attributes: Record<string, ModelAttr>, outputCount: number, atol: number,
  label = '',
): Promise<void> {
  const irAttrs: Record<string, AttrValue> = {};
  for (const [k, v] of Object.entries(attributes)) {
    irAttrs[k] = typeof v === 'object' && 'kind' in v && v.kind === 'float' ? { float: v.value } : v as number;
  }
  const ours = run(op, inputs, irAttrs, opset).slice(0, outputCount);
  const bytes = singleNodeModel({
    op, domain: '',
    inputs: inputs.map((x, i) => (x ? { name: `in${i}`, dtype: x.dtype, shape: [...x.shape] } : '')),
    outputs: ours.map((o, i) => ({ name: `out${i}`, dtype: o.dtype })),
    attributes, opsets: { '': opset },
  });
  const session = await ort.InferenceSession.create(bytes);
  const feeds: Record<string, ort.Tensor> = {};
  inputs.forEach((x, i) => { if (x) feeds[`in${i}`] = toOrt(x); });
  const result = await session.run(feeds);
  ours.forEach((o, i) => {
    const theirs = Array.from(result[`out${i}`].data as Float32Array);
    const mine = values(o);
    expect(mine.length).toBe(theirs.length);
    const worst = Math.max(0, ...mine.map((m, j) => Math.abs(m - theirs[j])));
    expect(worst, `${op} output ${i} ${label}`).toBeLessThanOrEqual(atol);
  });
}

describe('nn ops agree with onnxruntime', () => {
  const random = rng(42);
  const rand = (shape: number[]): Tensor => f32(shape, Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => random() * 2 - 1));

  it('Attention over random GQA / causal / past / mask / softcap configurations', async () => {
    for (let round = 0; round < 40; round++) {
      const batch = 1 + Math.floor(random() * 2);
      const kvHeads = 1 + Math.floor(random() * 2);
      const qHeads = kvHeads * (1 + Math.floor(random() * 2));
      const qLen = 1 + Math.floor(random() * 3);
      const causal = random() < 0.4;
      // With causal masking and kv_len != q_len, ORT aligns the diagonal differently from the
      // spec's reference (which offsets by the past length only); keep those cases to the suite.
      const kvLen = causal ? qLen : qLen + Math.floor(random() * 2);
      const pastLen = random() < 0.5 ? 0 : 1 + Math.floor(random() * 3);
      const total = pastLen + kvLen;
      const headSize = 2 * (1 + Math.floor(random() * 2));
      const vHeadSize = 2 + Math.floor(random() * 3);
      const threeD = random() < 0.4;
      const attributes: Record<string, ModelAttr> = {};
      let q = rand([batch, qHeads, qLen, headSize]);
      let k = rand([batch, kvHeads, kvLen, headSize]);
      let v = rand([batch, kvHeads, kvLen, vHeadSize]);
      if (threeD) {
        q = q.reshape([batch, qLen, qHeads * headSize]);
        k = k.reshape([batch, kvLen, kvHeads * headSize]);
        v = v.reshape([batch, kvLen, kvHeads * vHeadSize]);
        attributes.q_num_heads = qHeads;
        attributes.kv_num_heads = kvHeads;
      }
      if (causal) attributes.is_causal = 1;
      if (random() < 0.3) attributes.scale = floatAttr(0.3);
      if (random() < 0.3) attributes.softcap = floatAttr(2);
      const mask = !causal && random() < 0.5 ? rand([qLen, total]) : undefined;
      const past = pastLen ? [rand([batch, kvHeads, pastLen, headSize]), rand([batch, kvHeads, pastLen, vHeadSize])] : [undefined, undefined];
      const label = JSON.stringify({ batch, qHeads, kvHeads, qLen, kvLen, pastLen, threeD, mask: !!mask, attributes });
      await compareWithOrt('Attention', 23, [q, k, v, mask, ...past], attributes, 3, 1e-5, label);
    }
  });

  it('RMSNormalization and RotaryEmbedding', async () => {
    await compareWithOrt('RMSNormalization', 23, [rand([2, 3, 4]), rand([3, 4])], { axis: -2 }, 1, 1e-5);
    const ids = t('i64', [2, 3], [0, 1, 2, 3, 1, 0]);
    for (const interleaved of [0, 1]) {
      await compareWithOrt('RotaryEmbedding', 23, [rand([2, 2, 3, 8]), rand([4, 2]), rand([4, 2]), ids],
        { interleaved, rotary_embedding_dim: 4 }, 1, 1e-6);
    }
  });
});
