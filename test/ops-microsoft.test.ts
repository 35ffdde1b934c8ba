/**
 * com.microsoft contrib ops: each case builds a single-node model, runs it with
 * onnxruntime-node (the CPU kernels these ops mirror) and compares with the op's evaluate.
 */
import { describe, expect, it } from 'vitest';
import ort from 'onnxruntime-node';
import type { DType } from '../ir/dtype.js';
import type { Attribute, Node } from '../ir/graph.js';
import { Tensor } from '../ir/tensor.js';
import { f16BitsToNumber, numberToF16Bits } from '../ir/float.js';
import { Attrs } from '../ir/ops/attrs.js';
import { lookupOp } from '../ir/ops/registry.js';
import { LlmccError } from '../ir/errors.js';
import { type AttrValue, floatAttr, singleNodeModel, typeAttr } from './helpers/onnx-builder.js';

// ---------------------------------------------------------------------------------------
// Harness

/** Deterministic pseudo-random numbers (mulberry32). */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

let random = rng(1234);
const rand = (dtype: DType, shape: number[], lo = -1, hi = 1): Tensor => {
  const n = shape.reduce((a, b) => a * b, 1);
  return Tensor.fromNumbers(dtype, shape, Array.from({ length: n }, () => lo + (hi - lo) * random()));
};
const ints = (dtype: DType, shape: number[], lo: number, hi: number): Tensor => {
  const n = shape.reduce((a, b) => a * b, 1);
  return Tensor.fromNumbers(dtype, shape, Array.from({ length: n }, () => lo + Math.floor((hi - lo) * random())));
};
const values = (dtype: DType, shape: number[], v: number[]): Tensor => Tensor.fromNumbers(dtype, shape, v);

const ORT_TYPES: Partial<Record<DType, string>> = {
  f32: 'float32', f16: 'float16', i32: 'int32', i64: 'int64', u8: 'uint8', f64: 'float64', bool: 'bool',
};

function toOrt(t: Tensor): ort.Tensor {
  const type = ORT_TYPES[t.dtype];
  if (!type) throw new Error(`no ORT mapping for ${t.dtype}`);
  const src = t.numbers();
  const dims = [...t.shape];
  switch (t.dtype) {
    case 'f32': return new ort.Tensor('float32', Float32Array.from(src), dims);
    case 'f64': return new ort.Tensor('float64', Float64Array.from(src), dims);
    case 'f16': return new ort.Tensor('float16', Uint16Array.from(src, numberToF16Bits), dims);
    case 'i32': return new ort.Tensor('int32', Int32Array.from(src), dims);
    case 'i64': return new ort.Tensor('int64', BigInt64Array.from(Array.from(src, (x) => BigInt(x))), dims);
    case 'u8': return new ort.Tensor('uint8', Uint8Array.from(src), dims);
    default: return new ort.Tensor('bool', Uint8Array.from(src), dims);
  }
}

function fromOrt(t: ort.Tensor): number[] {
  if (t.type === 'float16') return Array.from(t.data as Uint16Array, f16BitsToNumber);
  if (t.type === 'int64') return Array.from(t.data as BigInt64Array, Number);
  return Array.from(t.data as ArrayLike<number>);
}

interface Case {
  op: string;
  domain?: string;
  /** Inputs in op order; undefined omits an optional input. */
  inputs: (Tensor | undefined)[];
  attributes?: Record<string, AttrValue>;
  /** Which outputs the node declares (false = ''); default: just output 0. */
  outputs?: boolean[];
  /** Input indices passed as initializers (constants) rather than feeds. */
  constants?: number[];
  opsets?: Record<string, number>;
}

function irAttribute(value: AttrValue): Attribute {
  const typed = typeAttr(value);
  if (typed.kind === 'graph') throw new Error('graph attributes are not used here');
  return typed as Attribute;
}

/** Runs the op's evaluate on the case. */
function evaluate(c: Case): Tensor[] {
  const domain = c.domain ?? 'com.microsoft';
  const def = lookupOp(domain, c.op);
  if (!def) throw new Error(`op ${domain}.${c.op} is not registered`);
  const node: Node = {
    name: `${c.op}_0`, domain, op: c.op,
    inputs: c.inputs.map((t, i) => (t ? `in${i}` : '')),
    outputs: (c.outputs ?? [true]).map((o, i) => (o ? `out${i}` : '')),
    attributes: new Map(Object.entries(c.attributes ?? {}).map(([k, v]) => [k, irAttribute(v)])),
  };
  return def.evaluate({
    node, opset: 1, attrs: new Attrs(node), inputs: c.inputs,
    runSubgraph: () => { throw new Error('no subgraphs'); },
  });
}

/** Runs the case with onnxruntime; output dtypes are taken from ours. */
async function runOrt(c: Case, ours: Tensor[]): Promise<(number[] | undefined)[]> {
  const declared = c.outputs ?? [true];
  const constants = new Set(c.constants ?? []);
  const initializers: Record<string, Tensor> = {};
  c.inputs.forEach((t, i) => { if (t && constants.has(i)) initializers[`in${i}`] = t; });
  const bytes = singleNodeModel({
    op: c.op, domain: c.domain ?? 'com.microsoft',
    inputs: c.inputs.map((t, i) => (t ? { name: `in${i}`, dtype: t.dtype, shape: [...t.shape] } : '')),
    outputs: declared.map((o, i) => (o ? { name: `out${i}`, dtype: ours[i].dtype } : '')),
    attributes: c.attributes,
    initializers,
    opsets: c.opsets,
  });
  const session = await ort.InferenceSession.create(bytes);
  const feeds: Record<string, ort.Tensor> = {};
  c.inputs.forEach((t, i) => { if (t && !constants.has(i)) feeds[`in${i}`] = toOrt(t); });
  const result = await session.run(feeds);
  return declared.map((o, i) => (o ? fromOrt(result[`out${i}`]) : undefined));
}

/** Compares every declared output with ORT within atol + rtol * |expected|. */
async function compare(c: Case, atol: number, rtol = 0): Promise<void> {
  const ours = evaluate(c);
  const theirs = await runOrt(c, ours);
  theirs.forEach((expected, i) => {
    if (!expected) return;
    const actual = Array.from(ours[i].numbers());
    expect(actual.length, `output ${i} size`).toBe(expected.length);
    let worst = 0, at = -1;
    for (let j = 0; j < expected.length; j++) {
      const err = Math.abs(actual[j] - expected[j]) - rtol * Math.abs(expected[j]);
      if (!(err <= worst)) { worst = Number.isNaN(err) ? Infinity : err; at = j; }
    }
    expect(worst, `output ${i}: element ${at} is ${actual[at]}, ORT says ${expected[at]}`).toBeLessThanOrEqual(atol);
  });
}

const MS = { '': 21, 'com.microsoft': 1 };

// ---------------------------------------------------------------------------------------
// Cases

describe('FastGelu', () => {
  it('f32 without and with bias', async () => {
    await compare({ op: 'FastGelu', inputs: [rand('f32', [2, 3, 8], -4, 4)] }, 1e-6);
    await compare({ op: 'FastGelu', inputs: [rand('f32', [2, 3, 8], -4, 4), rand('f32', [8])] }, 1e-6);
  });
  it('f16 with bias', async () => {
    await compare({ op: 'FastGelu', inputs: [rand('f16', [4, 16], -4, 4), rand('f16', [16])] }, 2e-3);
  });
});

describe('SkipLayerNormalization', () => {
  it('f32 with beta, bias and the input_skip_bias_sum output', async () => {
    await compare({
      op: 'SkipLayerNormalization', attributes: { epsilon: 1e-5 },
      inputs: [rand('f32', [2, 3, 16]), rand('f32', [2, 3, 16]), rand('f32', [16]), rand('f32', [16]), rand('f32', [16])],
      outputs: [true, false, false, true],
    }, 1e-5);
  });
  it('skip broadcast over the batch, no beta', async () => {
    await compare({
      op: 'SkipLayerNormalization', attributes: { epsilon: 1e-5 },
      inputs: [rand('f32', [2, 3, 8]), rand('f32', [3, 8]), rand('f32', [8])],
    }, 1e-5);
  });
  it('SkipSimplifiedLayerNormalization f16', async () => {
    await compare({
      op: 'SkipSimplifiedLayerNormalization', attributes: { epsilon: 1e-6 },
      inputs: [rand('f16', [1, 4, 16]), rand('f16', [1, 4, 16]), rand('f16', [16])],
      outputs: [true, false, false, true],
    }, 1e-2);
  });
});

describe('SimplifiedLayerNormalization', () => {
  it('ai.onnx domain, f32 and f16', async () => {
    await compare({
      op: 'SimplifiedLayerNormalization', domain: '', opsets: { '': 14 }, attributes: { epsilon: 1e-6, axis: -1 },
      inputs: [rand('f32', [2, 3, 16]), rand('f32', [16])],
    }, 1e-5);
    await compare({
      op: 'SimplifiedLayerNormalization', domain: '', opsets: { '': 14 }, attributes: { epsilon: 1e-6, axis: -1 },
      inputs: [rand('f16', [2, 3, 16]), rand('f16', [16])],
    }, 1e-2);
  });
});

describe('EmbedLayerNormalization', () => {
  it('GPT-2 style: position_ids, no segment, embedding_sum output', async () => {
    await compare({
      op: 'EmbedLayerNormalization', attributes: { epsilon: 1e-5 },
      inputs: [ints('i32', [2, 3], 0, 10), undefined, rand('f32', [10, 8]), rand('f32', [6, 8]), undefined,
        rand('f32', [8]), rand('f32', [8]), undefined, ints('i32', [2, 3], 0, 6)],
      outputs: [true, true, true],
    }, 1e-5);
  });
  it('BERT style: segments and mask', async () => {
    await compare({
      op: 'EmbedLayerNormalization', attributes: { epsilon: 1e-12 },
      inputs: [ints('i32', [2, 4], 0, 10), ints('i32', [2, 4], 0, 2), rand('f32', [10, 8]), rand('f32', [6, 8]),
        rand('f32', [2, 8]), rand('f32', [8]), rand('f32', [8]), values('i32', [2, 4], [1, 1, 1, 0, 1, 1, 0, 0])],
      outputs: [true, true],
    }, 1e-5);
  });
});

describe('Attention', () => {
  const [B, S, P, N, H] = [2, 3, 2, 2, 4];
  const D = N * H;
  it('GPT-2 export: past, unidirectional, 2-D mask, mask_filter_value = lowest float', async () => {
    await compare({
      op: 'Attention', attributes: { num_heads: N, unidirectional: 1, mask_filter_value: floatAttr(-3.4028234663852886e38) },
      inputs: [rand('f32', [B, S, D]), rand('f32', [D, 3 * D]), rand('f32', [3 * D]),
        values('i32', [B, P + S], [0, 1, 1, 1, 1, 1, 1, 1, 1, 1]), rand('f32', [2, B, N, P, H])],
      outputs: [true, true], constants: [1, 2],
    }, 1e-5);
  });
  it('prompt without past: 1-D mask_index, attention_bias, scale', async () => {
    await compare({
      op: 'Attention', attributes: { num_heads: N, scale: 0.3 },
      inputs: [rand('f32', [B, S, D]), rand('f32', [D, 3 * D]), rand('f32', [3 * D]),
        values('i32', [B], [2, 3]), undefined, rand('f32', [1, N, S, S])],
    }, 1e-5);
  });
  it('left padding under a causal mask (rows with every key masked)', async () => {
    await compare({
      op: 'Attention', attributes: { num_heads: N, unidirectional: 1 },
      inputs: [rand('f32', [B, S, D]), rand('f32', [D, 3 * D]), rand('f32', [3 * D]), values('i32', [B, S], [0, 0, 1, 0, 1, 1])],
    }, 1e-5);
  });
  it('3-D mask with qkv_hidden_sizes', async () => {
    await compare({
      op: 'Attention', attributes: { num_heads: N, qkv_hidden_sizes: [D, D, 2 * D] },
      inputs: [rand('f32', [B, S, D]), rand('f32', [D, 4 * D]), rand('f32', [4 * D]), ints('i32', [B, S, S], 0, 2)],
    }, 1e-5);
  });
});

describe('MultiHeadAttention', () => {
  const [B, S, P, N, H] = [2, 3, 4, 2, 4];
  const D = N * H;
  it('llama export: past_key/value, attention_bias, present outputs (f32)', async () => {
    await compare({
      op: 'MultiHeadAttention', attributes: { num_heads: N, scale: 0.25 },
      inputs: [rand('f32', [B, S, D]), rand('f32', [B, S, D]), rand('f32', [B, S, D]), undefined, undefined,
        rand('f32', [B, 1, S, P + S], -5, 0), rand('f32', [B, N, P, H]), rand('f32', [B, N, P, H])],
      outputs: [true, true, true],
    }, 1e-5);
  });
  it('f32 with bias, key_padding_mask and unidirectional', async () => {
    await compare({
      op: 'MultiHeadAttention', attributes: { num_heads: N, unidirectional: 1 },
      inputs: [rand('f32', [B, S, D]), rand('f32', [B, S, D]), rand('f32', [B, S, D]), rand('f32', [3 * D]),
        values('i32', [B, S], [1, 1, 1, 0, 1, 1])],
    }, 1e-5);
  });
  it('f16 with bias, key_padding_mask and unidirectional', async () => {
    await compare({
      op: 'MultiHeadAttention', attributes: { num_heads: N, unidirectional: 1 },
      inputs: [rand('f16', [B, S, D]), rand('f16', [B, S, D]), rand('f16', [B, S, D]), rand('f16', [3 * D]),
        values('i32', [B, S], [1, 1, 1, 0, 1, 1])],
    }, 1e-2);
  });
  it('cross attention with 4-D key/value', async () => {
    await compare({
      op: 'MultiHeadAttention', attributes: { num_heads: N },
      inputs: [rand('f32', [B, S, D]), rand('f32', [B, N, 5, H]), rand('f32', [B, N, 5, H])],
    }, 1e-5);
  });
});

describe('RotaryEmbedding', () => {
  const [B, S, N, H, M] = [2, 3, 2, 8, 16];
  it('non-interleaved and interleaved with (B, S) position_ids', async () => {
    for (const interleaved of [0, 1]) {
      await compare({
        op: 'RotaryEmbedding', attributes: { interleaved },
        inputs: [rand('f32', [B, S, N * H]), ints('i64', [B, S], 0, M), rand('f32', [M, H / 2]), rand('f32', [M, H / 2])],
      }, 1e-6);
    }
  });
  it('scalar position offset, partial rotary_embedding_dim', async () => {
    await compare({
      op: 'RotaryEmbedding', attributes: { num_heads: N, rotary_embedding_dim: 4 },
      inputs: [rand('f32', [B, S, N * H]), values('i64', [1], [5]), rand('f32', [M, 2]), rand('f32', [M, 2])],
    }, 1e-6);
  });
  it('4-D (B, N, S, H) input, f16', async () => {
    await compare({
      op: 'RotaryEmbedding', attributes: {},
      inputs: [rand('f16', [B, N, S, H]), ints('i64', [B, S], 0, M), rand('f16', [M, H / 2]), rand('f16', [M, H / 2])],
    }, 2e-3);
  });
});

describe('GroupQueryAttention', () => {
  const [B, N, KV, H] = [2, 4, 2, 16];
  const seqlens = (totals: number[]) => values('i32', [totals.length], totals.map((t) => t - 1));
  const total = (t: number) => values('i32', [], [t]);
  it('first prompt without past', async () => {
    const S = 3;
    await compare({
      op: 'GroupQueryAttention', attributes: { num_heads: N, kv_num_heads: KV },
      inputs: [rand('f32', [B, S, N * H]), rand('f32', [B, S, KV * H]), rand('f32', [B, S, KV * H]), undefined, undefined,
        seqlens([S, S]), total(S)],
      outputs: [true, true, true],
    }, 1e-5);
  });
  it('decode step with a past buffer and per-batch lengths', async () => {
    const P = 5;
    await compare({
      op: 'GroupQueryAttention', attributes: { num_heads: N, kv_num_heads: KV },
      inputs: [rand('f32', [B, 1, N * H]), rand('f32', [B, 1, KV * H]), rand('f32', [B, 1, KV * H]),
        rand('f32', [B, KV, P, H]), rand('f32', [B, KV, P, H]), seqlens([6, 4]), total(6)],
      outputs: [true, true, true],
    }, 1e-5);
  });
  it('packed QKV with rotary, softcap and local window', async () => {
    const S = 6, M = 16;
    await compare({
      op: 'GroupQueryAttention',
      attributes: { num_heads: N, kv_num_heads: KV, do_rotary: 1, rotary_interleaved: 1, softcap: 2.5, local_window_size: 2 },
      inputs: [rand('f32', [B, S, (N + 2 * KV) * H]), undefined, undefined, undefined, undefined,
        seqlens([S, S]), total(S), rand('f32', [M, H / 2]), rand('f32', [M, H / 2])],
      outputs: [true, true, true],
    }, 1e-5);
  });
  it('local window and attention_bias with rotary; explicit position_ids rejected', async () => {
    const S = 5, M = 16;
    await compare({
      op: 'GroupQueryAttention', attributes: { num_heads: N, kv_num_heads: KV, local_window_size: 3, do_rotary: 1 },
      inputs: [rand('f32', [B, S, N * H]), rand('f32', [B, S, KV * H]), rand('f32', [B, S, KV * H]), undefined, undefined,
        seqlens([S, S]), total(S), rand('f32', [M, H / 2]), rand('f32', [M, H / 2]), undefined, rand('f32', [B, 1, S, S])],
      outputs: [true, true, true],
    }, 1e-5);
    expect(() => evaluate({
      op: 'GroupQueryAttention', attributes: { num_heads: N, kv_num_heads: KV, do_rotary: 1 },
      inputs: [rand('f32', [B, S, N * H]), rand('f32', [B, S, KV * H]), rand('f32', [B, S, KV * H]), undefined, undefined,
        seqlens([S, S]), total(S), rand('f32', [M, H / 2]), rand('f32', [M, H / 2]), ints('i64', [B, S], 0, M)],
    })).toThrow(/position_ids/);
  });
  it('f16 decode with past and rotary', async () => {
    const P = 4, M = 16;
    await compare({
      op: 'GroupQueryAttention', attributes: { num_heads: N, kv_num_heads: KV, do_rotary: 1 },
      inputs: [rand('f16', [1, 1, N * H]), rand('f16', [1, 1, KV * H]), rand('f16', [1, 1, KV * H]),
        rand('f16', [1, KV, P, H]), rand('f16', [1, KV, P, H]), seqlens([5]), total(5), rand('f16', [M, H / 2]), rand('f16', [M, H / 2])],
      outputs: [true, true, true],
    }, 1e-2);
  });
  it('subsequent prompt (several new tokens after a past), smooth softmax', async () => {
    const P = 3, S = 2;
    await compare({
      op: 'GroupQueryAttention', attributes: { num_heads: N, kv_num_heads: KV, smooth_softmax: 1 },
      inputs: [rand('f32', [1, S, N * H]), rand('f32', [1, S, KV * H]), rand('f32', [1, S, KV * H]),
        rand('f32', [1, KV, P, H]), rand('f32', [1, KV, P, H]), seqlens([P + S]), total(P + S)],
      outputs: [true, true, true],
    }, 1e-5);
  });
});

describe('MatMulNBits', () => {
  const quantized = (bits: number, N: number, K: number, block: number) => {
    const blocks = Math.ceil(K / block);
    return ints('u8', [N, blocks, (block * bits) / 8], 0, 256);
  };
  for (const bits of [2, 4, 8]) {
    it(`bits=${bits}: default zero point, packed zero points, bias`, async () => {
      const [N, K, block] = [8, 48, 16];
      const blocks = Math.ceil(K / block);
      await compare({
        op: 'MatMulNBits', attributes: { K, N, bits, block_size: block },
        inputs: [rand('f32', [2, 3, K]), quantized(bits, N, K, block), rand('f32', [N * blocks], 0.01, 0.1)],
        constants: [1, 2],
      }, 1e-5, 1e-5);
      await compare({
        op: 'MatMulNBits', attributes: { K, N, bits, block_size: block },
        inputs: [rand('f32', [3, K]), quantized(bits, N, K, block), rand('f32', [N * blocks], 0.01, 0.1),
          ints('u8', [N * Math.ceil((blocks * bits) / 8)], 0, 256), undefined, rand('f32', [N])],
        constants: [1, 2, 3],
      }, 1e-5, 1e-5);
    });
  }
  it('K not a multiple of block_size, float zero points, f16', async () => {
    const [N, K, block] = [4, 40, 16];
    const blocks = Math.ceil(K / block);
    await compare({
      op: 'MatMulNBits', attributes: { K, N, bits: 4, block_size: block },
      inputs: [rand('f32', [2, K]), quantized(4, N, K, block), rand('f32', [N * blocks], 0.01, 0.1), rand('f32', [N * blocks], 0, 15)],
      constants: [1, 2, 3],
    }, 1e-5, 1e-5);
    await compare({
      op: 'MatMulNBits', attributes: { K, N, bits: 4, block_size: block },
      inputs: [rand('f16', [2, K]), quantized(4, N, K, block), rand('f16', [N * blocks], 0.01, 0.1)],
      constants: [1, 2],
    }, 2e-2, 2e-3);
  });
  it('rejects non-trivial g_idx with an LlmccError', () => {
    const [N, K, block] = [4, 32, 16];
    const g = Tensor.fromNumbers('i32', [K], Array.from({ length: K }, (_, k) => (k % 2)));
    expect(() => evaluate({
      op: 'MatMulNBits', attributes: { K, N, bits: 4, block_size: block },
      inputs: [rand('f32', [1, K]), quantized(4, N, K, block), rand('f32', [N * 2]), undefined, g],
    })).toThrow(LlmccError);
  });
});

describe('bad input', () => {
  it('throws LlmccError naming the node', () => {
    expect(() => evaluate({ op: 'SkipLayerNormalization', attributes: { epsilon: 1e-5 },
      inputs: [rand('f32', [2, 8]), rand('f32', [2, 7]), rand('f32', [8])] })).toThrow(/SkipLayerNormalization/);
    expect(() => evaluate({ op: 'GroupQueryAttention', attributes: { num_heads: 3, kv_num_heads: 2 },
      inputs: [rand('f32', [1, 1, 24]), rand('f32', [1, 1, 16]), rand('f32', [1, 1, 16]), undefined, undefined,
        values('i32', [1], [0]), values('i32', [], [1])] })).toThrow(LlmccError);
  });
});

