/**
 * Builds the ONNX graph of a LLaMA-style decoder in one of two op flavours. The graph
 * refers to its large weights by name only (WeightSpec: a seeded recipe, not bytes) so the
 * writer can stream them to disk one at a time.
 */
import { numberToF16Bits } from '../../ir/float.js';
import { onnx, type AttributeProto, type NodeProto, type TensorProto, type ValueInfoProto } from '../../src/onnx/proto.js';
import { headDim, type LlamaConfig } from './config.js';
import type { NBitsInit } from './nbits.js';

export type OpFlavour = 'primitive' | 'contrib';
export type ModelDType = 'f32' | 'f16';

/** How a weight's values are made, in row-major order, chunk by chunk. */
export type WeightInit =
  | { kind: 'normal'; std: number; seed: number }
  | { kind: 'ones' }
  /** Rotary table: row p holds cos or sin of p·inv_freq[i], i < width (repeated twice if `full`). */
  | { kind: 'rotary'; fn: 'cos' | 'sin'; theta: number; headDim: number; full: boolean }
  /** A MatMulNBits weight quantized from another weight's values (nbits.ts). */
  | NBitsInit;

export interface WeightSpec {
  name: string;
  dims: number[];
  init: WeightInit;
  /** A learned parameter (vs a precomputed table); what `parameterCount` counts. */
  parameter: boolean;
}

export interface DecoderGraph {
  nodes: NodeProto[];
  inputs: ValueInfoProto[];
  outputs: ValueInfoProto[];
  /** Small constants (shapes, axes, scalars), always stored inline. */
  constants: TensorProto[];
  weights: WeightSpec[];
  opsets: { domain: string; version: number }[];
}

/** Symbolic dim names, as ORT GenAI's model builder declares them. */
export const DIMS = {
  batch: 'batch_size',
  seq: 'sequence_length',
  past: 'past_sequence_length',
  total: 'total_sequence_length',
} as const;

export const pastKeyName = (layer: number, kind: 'key' | 'value'): string => `past_key_values.${layer}.${kind}`;
export const presentName = (layer: number, kind: 'key' | 'value'): string => `present.${layer}.${kind}`;

const T = onnx.TensorProto.DataType;
const A = onnx.AttributeProto.AttributeType;

export function onnxFloatType(dtype: ModelDType): number {
  return dtype === 'f16' ? T.FLOAT16 : T.FLOAT;
}

type AttrValue = { int: number } | { float: number } | { ints: number[] };

function attribute(name: string, value: AttrValue): AttributeProto {
  if ('int' in value) return { name, type: A.INT, i: value.int };
  if ('float' in value) return { name, type: A.FLOAT, f: value.float };
  return { name, type: A.INTS, ints: value.ints };
}

function valueInfo(name: string, elemType: number, dims: (number | string)[]): ValueInfoProto {
  return {
    name,
    type: { tensorType: { elemType, shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) } } },
  };
}

interface NodeOptions {
  /** Node name; outputs are named `<name>_output_<k>` as torch.onnx does. */
  name: string;
  attrs?: Record<string, AttrValue>;
  domain?: string;
  /** Explicit output names ('' = omitted optional output), or a count. */
  outputs?: string[] | number;
  /** With a count: positions of optional outputs to leave unnamed (omitted). */
  omit?: number[];
}

/** Collects nodes, deduplicated constants and weight recipes, with unique names. */
class GraphBuilder {
  readonly nodes: NodeProto[] = [];
  readonly constants: TensorProto[] = [];
  readonly weights: WeightSpec[] = [];
  private readonly names = new Set<string>();
  private readonly constantByKey = new Map<string, string>();

  constructor(readonly floatType: number) {}

  private unique(base: string): string {
    let name = base;
    for (let k = 1; this.names.has(name); k++) name = `${base}_${k}`;
    this.names.add(name);
    return name;
  }

  node(op: string, inputs: string[], options: NodeOptions): string[] {
    const name = this.unique(options.name);
    const outputs = Array.isArray(options.outputs)
      ? options.outputs
      : Array.from({ length: options.outputs ?? 1 }, (_, k) => (options.omit?.includes(k) ? '' : `${name}_output_${k}`));
    this.nodes.push({
      name,
      opType: op,
      domain: options.domain ?? '',
      input: inputs,
      output: outputs,
      attribute: Object.entries(options.attrs ?? {}).map(([k, v]) => attribute(k, v)),
    });
    return outputs;
  }

  /** The node's first output. */
  op(op: string, inputs: string[], options: NodeOptions): string {
    return this.node(op, inputs, options)[0];
  }

  private constant(key: string, make: (name: string) => TensorProto, base: string): string {
    const existing = this.constantByKey.get(key);
    if (existing) return existing;
    const name = this.unique(base);
    this.constants.push(make(name));
    this.constantByKey.set(key, name);
    return name;
  }

  /** An int64 constant; `dims` [] makes a scalar. */
  i64(values: number[], dims: number[] = [values.length]): string {
    return this.constant(`i64:${dims.join('x')}:${values.join(',')}`, (name) => ({
      name, dims, dataType: T.INT64, rawData: new Uint8Array(BigInt64Array.from(values.map(BigInt)).buffer),
    }), `/model/constants/i64_${values.join('_').replace(/-/g, 'm') || 'empty'}`);
  }

  /** A float scalar of element type `elemType` (FLOAT or FLOAT16). */
  scalar(value: number, elemType: number = this.floatType): string {
    return this.constant(`f${elemType}:${value}`, (name) => ({
      name, dims: [], dataType: elemType,
      rawData: elemType === T.FLOAT16
        ? new Uint8Array(Uint16Array.of(numberToF16Bits(value)).buffer)
        : new Uint8Array(Float32Array.of(value).buffer),
    }), `/model/constants/${elemType === T.FLOAT16 ? 'f16' : 'f32'}_${String(value).replace(/[^0-9a-z]/gi, '_')}`);
  }

  weight(spec: WeightSpec): string {
    this.names.add(spec.name);
    this.weights.push(spec);
    return spec.name;
  }
}

/** A stable per-weight seed, so a weight's values do not depend on the order of the others. */
function weightSeed(seed: number, name: string): number {
  let h = (0x811c9dc5 ^ seed) >>> 0;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

/** HF's LlamaConfig.initializer_range: every Linear and the embedding are normal(0, 0.02). */
const INIT_STD = 0.02;

interface Context {
  b: GraphBuilder;
  c: LlamaConfig;
  dtype: ModelDType;
  seed: number;
}

function linear(ctx: Context, name: string, inFeatures: number, outFeatures: number): string {
  return ctx.b.weight({
    name, dims: [inFeatures, outFeatures], parameter: true,
    init: { kind: 'normal', std: INIT_STD, seed: weightSeed(ctx.seed, name) },
  });
}

function normWeight(ctx: Context, name: string): string {
  return ctx.b.weight({ name, dims: [ctx.c.hiddenSize], parameter: true, init: { kind: 'ones' } });
}

function declareInputsOutputs(c: LlamaConfig, dtype: ModelDType): Pick<DecoderGraph, 'inputs' | 'outputs'> {
  const f = onnxFloatType(dtype);
  const d = headDim(c);
  const inputs = [
    valueInfo('input_ids', T.INT64, [DIMS.batch, DIMS.seq]),
    valueInfo('attention_mask', T.INT64, [DIMS.batch, DIMS.total]),
    valueInfo('position_ids', T.INT64, [DIMS.batch, DIMS.seq]),
  ];
  const outputs = [valueInfo('logits', f, [DIMS.batch, DIMS.seq, c.vocabSize])];
  for (let l = 0; l < c.numLayers; l++) {
    for (const kind of ['key', 'value'] as const) {
      inputs.push(valueInfo(pastKeyName(l, kind), f, [DIMS.batch, c.numKvHeads, DIMS.past, d]));
      outputs.push(valueInfo(presentName(l, kind), f, [DIMS.batch, c.numKvHeads, DIMS.total, d]));
    }
  }
  return { inputs, outputs };
}

function embedding(ctx: Context): string {
  const { b, c } = ctx;
  const table = b.weight({
    name: 'model.embed_tokens.weight', dims: [c.vocabSize, c.hiddenSize], parameter: true,
    init: { kind: 'normal', std: INIT_STD, seed: weightSeed(ctx.seed, 'model.embed_tokens.weight') },
  });
  return b.op('Gather', [table, 'input_ids'], { name: '/model/embed_tokens/Gather' });
}

function lmHead(ctx: Context, hidden: string): void {
  const w = linear(ctx, 'lm_head.weight', ctx.c.hiddenSize, ctx.c.vocabSize);
  ctx.b.node('MatMul', [hidden, w], { name: '/lm_head/MatMul', outputs: ['logits'] });
}

/** SwiGLU: down(silu(gate(x)) * up(x)), SiLU as Sigmoid·Mul (both flavours export it so). */
function mlp(ctx: Context, prefix: string, x: string, layer: number): string {
  const { b, c } = ctx;
  const p = `model.layers.${layer}.mlp`;
  const gate = b.op('MatMul', [x, linear(ctx, `${p}.gate_proj.weight`, c.hiddenSize, c.intermediateSize)], { name: `${prefix}/mlp/gate_proj/MatMul` });
  const up = b.op('MatMul', [x, linear(ctx, `${p}.up_proj.weight`, c.hiddenSize, c.intermediateSize)], { name: `${prefix}/mlp/up_proj/MatMul` });
  const sig = b.op('Sigmoid', [gate], { name: `${prefix}/mlp/act_fn/Sigmoid` });
  const silu = b.op('Mul', [gate, sig], { name: `${prefix}/mlp/act_fn/Mul` });
  const prod = b.op('Mul', [silu, up], { name: `${prefix}/mlp/Mul` });
  return b.op('MatMul', [prod, linear(ctx, `${p}.down_proj.weight`, c.intermediateSize, c.hiddenSize)], { name: `${prefix}/mlp/down_proj/MatMul` });
}

// ---------------------------------------------------------------------------------------
// primitive: what torch.onnx exports from transformers' eager LlamaForCausalLM.

/** LlamaRMSNorm: computed in f32 (an f16 model casts in and out, as HF does). */
function rmsNormPrimitive(ctx: Context, prefix: string, x: string, weightName: string): string {
  const { b, c, dtype } = ctx;
  const f32 = T.FLOAT;
  const x32 = dtype === 'f16' ? b.op('Cast', [x], { name: `${prefix}/Cast`, attrs: { to: { int: f32 } } }) : x;
  const sq = b.op('Pow', [x32, b.scalar(2, f32)], { name: `${prefix}/Pow` });
  const variance = b.op('ReduceMean', [sq, b.i64([-1])], { name: `${prefix}/ReduceMean`, attrs: { keepdims: { int: 1 } } });
  const biased = b.op('Add', [variance, b.scalar(c.rmsEps, f32)], { name: `${prefix}/Add` });
  const std = b.op('Sqrt', [biased], { name: `${prefix}/Sqrt` });
  const inv = b.op('Div', [b.scalar(1, f32), std], { name: `${prefix}/Div` });
  const normed = b.op('Mul', [x32, inv], { name: `${prefix}/Mul` });
  const back = dtype === 'f16' ? b.op('Cast', [normed], { name: `${prefix}/Cast_1`, attrs: { to: { int: T.FLOAT16 } } }) : normed;
  return b.op('Mul', [normWeight(ctx, weightName), back], { name: `${prefix}/Mul_1` });
}

/** rotate_half(x) = cat(-x[..., d/2:], x[..., :d/2]). */
function rotateHalf(ctx: Context, prefix: string, x: string): string {
  const { b } = ctx;
  const half = headDim(ctx.c) / 2;
  const axes = b.i64([-1]);
  const x1 = b.op('Slice', [x, b.i64([0]), b.i64([half]), axes], { name: `${prefix}/Slice` });
  const x2 = b.op('Slice', [x, b.i64([half]), b.i64([Number.MAX_SAFE_INTEGER]), axes], { name: `${prefix}/Slice_1` });
  const neg = b.op('Neg', [x2], { name: `${prefix}/Neg` });
  return b.op('Concat', [neg, x1], { name: `${prefix}/Concat`, attrs: { axis: { int: -1 } } });
}

/** q·cos + rotate_half(q)·sin with cos/sin of shape [B,1,S,D]. */
function applyRopePrimitive(ctx: Context, prefix: string, x: string, cos: string, sin: string): string {
  const { b } = ctx;
  const a = b.op('Mul', [x, cos], { name: `${prefix}/Mul` });
  const r = b.op('Mul', [rotateHalf(ctx, prefix, x), sin], { name: `${prefix}/Mul_1` });
  return b.op('Add', [a, r], { name: `${prefix}/Add` });
}

/** [B,S,heads·D] → [B,heads,S,D]. */
function splitHeads(ctx: Context, prefix: string, x: string, heads: number): string {
  const { b } = ctx;
  const r = b.op('Reshape', [x, b.i64([0, 0, heads, headDim(ctx.c)])], { name: `${prefix}/Reshape` });
  return b.op('Transpose', [r], { name: `${prefix}/Transpose`, attrs: { perm: { ints: [0, 2, 1, 3] } } });
}

/** repeat_kv: [B,KV,T,D] → [B,N,T,D] by Unsqueeze/Expand/Reshape. */
function repeatKv(ctx: Context, prefix: string, x: string): string {
  const { b, c } = ctx;
  const groups = c.numHeads / c.numKvHeads;
  if (groups === 1) return x;
  const u = b.op('Unsqueeze', [x, b.i64([2])], { name: `${prefix}/Unsqueeze` });
  const e = b.op('Expand', [u, b.i64([1, 1, groups, 1, 1])], { name: `${prefix}/Expand` });
  return b.op('Reshape', [e, b.i64([0, c.numHeads, -1, headDim(c)])], { name: `${prefix}/Reshape` });
}

/**
 * The additive 4-D mask [B,1,S,T]: 0 where query s (at absolute position past+s) may see
 * key t (t <= past+s and attention_mask[b,t] = 1), the dtype's lowest value elsewhere.
 */
function causalMask(ctx: Context): string {
  const { b, dtype } = ctx;
  const p = '/model/causal_mask';
  const idsShape = b.op('Shape', ['input_ids'], { name: `${p}/Shape` });
  const seq = b.op('Gather', [idsShape, b.i64([1], [])], { name: `${p}/Gather`, attrs: { axis: { int: 0 } } });
  const maskShape = b.op('Shape', ['attention_mask'], { name: `${p}/Shape_1` });
  const total = b.op('Gather', [maskShape, b.i64([1], [])], { name: `${p}/Gather_1`, attrs: { axis: { int: 0 } } });
  const past = b.op('Sub', [total, seq], { name: `${p}/Sub` });
  const one = b.i64([1], []);
  // cache_position = past + arange(seq): Range from 0 keeps its length `sequence_length`.
  const zero = b.i64([0], []);
  const queryPos = b.op('Add', [b.op('Range', [zero, seq, one], { name: `${p}/Range` }), past], { name: `${p}/Add` });
  const keyPos = b.op('Range', [zero, total, one], { name: `${p}/Range_1` });
  const queryCol = b.op('Unsqueeze', [queryPos, b.i64([1])], { name: `${p}/Unsqueeze` });
  const future = b.op('Less', [queryCol, keyPos], { name: `${p}/Less` });
  const padded = b.op('Equal', ['attention_mask', zero], { name: `${p}/Equal` });
  const padded4 = b.op('Unsqueeze', [padded, b.i64([1, 2])], { name: `${p}/Unsqueeze_1` });
  const hidden = b.op('Or', [future, padded4], { name: `${p}/Or` });
  const lowest = dtype === 'f16' ? -65504 : -3.4028234663852886e38;
  return b.op('Where', [hidden, b.scalar(lowest), b.scalar(0)], { name: `${p}/Where` });
}

/** cos/sin rows for position_ids, unsqueezed to [B,1,S,D] for broadcasting over heads. */
function ropeTables(ctx: Context): { cos: string; sin: string } {
  const { b, c } = ctx;
  const d = headDim(c);
  const out = { cos: '', sin: '' };
  for (const fn of ['cos', 'sin'] as const) {
    const table = b.weight({
      name: `model.rotary_emb.${fn}_cached`, dims: [c.maxPositions, d], parameter: false,
      init: { kind: 'rotary', fn, theta: c.ropeTheta, headDim: d, full: true },
    });
    const rows = b.op('Gather', [table, 'position_ids'], { name: `/model/rotary_emb/Gather_${fn}` });
    out[fn] = b.op('Unsqueeze', [rows, b.i64([1])], { name: `/model/rotary_emb/Unsqueeze_${fn}` });
  }
  return out;
}

function buildPrimitive(ctx: Context): void {
  const { b, c, dtype } = ctx;
  const d = headDim(c);
  const mask = causalMask(ctx);
  const rope = ropeTables(ctx);
  let x = embedding(ctx);
  for (let l = 0; l < c.numLayers; l++) {
    const prefix = `/model/layers.${l}`;
    const a = `${prefix}/self_attn`;
    const w = `model.layers.${l}`;
    const h = rmsNormPrimitive(ctx, `${prefix}/input_layernorm`, x, `${w}.input_layernorm.weight`);
    const q = b.op('MatMul', [h, linear(ctx, `${w}.self_attn.q_proj.weight`, c.hiddenSize, c.numHeads * d)], { name: `${a}/q_proj/MatMul` });
    const k = b.op('MatMul', [h, linear(ctx, `${w}.self_attn.k_proj.weight`, c.hiddenSize, c.numKvHeads * d)], { name: `${a}/k_proj/MatMul` });
    const v = b.op('MatMul', [h, linear(ctx, `${w}.self_attn.v_proj.weight`, c.hiddenSize, c.numKvHeads * d)], { name: `${a}/v_proj/MatMul` });
    const q4 = applyRopePrimitive(ctx, `${a}/rotary_q`, splitHeads(ctx, `${a}/q`, q, c.numHeads), rope.cos, rope.sin);
    const k4 = applyRopePrimitive(ctx, `${a}/rotary_k`, splitHeads(ctx, `${a}/k`, k, c.numKvHeads), rope.cos, rope.sin);
    const v4 = splitHeads(ctx, `${a}/v`, v, c.numKvHeads);
    const keys = b.node('Concat', [pastKeyName(l, 'key'), k4], { name: `${a}/Concat_key`, attrs: { axis: { int: 2 } }, outputs: [presentName(l, 'key')] })[0];
    const values = b.node('Concat', [pastKeyName(l, 'value'), v4], { name: `${a}/Concat_value`, attrs: { axis: { int: 2 } }, outputs: [presentName(l, 'value')] })[0];
    const kRep = repeatKv(ctx, `${a}/repeat_kv_key`, keys);
    const vRep = repeatKv(ctx, `${a}/repeat_kv_value`, values);
    const kT = b.op('Transpose', [kRep], { name: `${a}/Transpose_key`, attrs: { perm: { ints: [0, 1, 3, 2] } } });
    const scores = b.op('MatMul', [q4, kT], { name: `${a}/MatMul` });
    const scaled = b.op('Mul', [scores, b.scalar(1 / Math.sqrt(d))], { name: `${a}/Mul` });
    const masked = b.op('Add', [scaled, mask], { name: `${a}/Add` });
    // HF eager attention: softmax in f32, then back to the activation dtype.
    const logits32 = dtype === 'f16' ? b.op('Cast', [masked], { name: `${a}/Cast`, attrs: { to: { int: T.FLOAT } } }) : masked;
    const probs32 = b.op('Softmax', [logits32], { name: `${a}/Softmax`, attrs: { axis: { int: -1 } } });
    const probs = dtype === 'f16' ? b.op('Cast', [probs32], { name: `${a}/Cast_1`, attrs: { to: { int: T.FLOAT16 } } }) : probs32;
    const context = b.op('MatMul', [probs, vRep], { name: `${a}/MatMul_1` });
    const merged = b.op('Transpose', [context], { name: `${a}/Transpose`, attrs: { perm: { ints: [0, 2, 1, 3] } } });
    const flat = b.op('Reshape', [merged, b.i64([0, 0, c.numHeads * d])], { name: `${a}/Reshape` });
    const attnOut = b.op('MatMul', [flat, linear(ctx, `${w}.self_attn.o_proj.weight`, c.numHeads * d, c.hiddenSize)], { name: `${a}/o_proj/MatMul` });
    const afterAttn = b.op('Add', [x, attnOut], { name: `${prefix}/Add` });
    const h2 = rmsNormPrimitive(ctx, `${prefix}/post_attention_layernorm`, afterAttn, `${w}.post_attention_layernorm.weight`);
    x = b.op('Add', [afterAttn, mlp(ctx, prefix, h2, l)], { name: `${prefix}/Add_1` });
  }
  lmHead(ctx, rmsNormPrimitive(ctx, '/model/norm', x, 'model.norm.weight'));
}

// ---------------------------------------------------------------------------------------
// contrib: what ORT GenAI's model builder emits for LLaMA (com.microsoft fused ops).

function buildContrib(ctx: Context): void {
  const { b, c } = ctx;
  const d = headDim(c);
  const eps = { float: c.rmsEps };
  // GroupQueryAttention wants seqlens_k = (valid tokens per batch) - 1 and the total length.
  const p = '/model/attn_mask_reformat';
  const sum = b.op('ReduceSum', ['attention_mask', b.i64([1])], { name: `${p}/ReduceSum`, attrs: { keepdims: { int: 0 } } });
  const minusOne = b.op('Sub', [sum, b.i64([1], [])], { name: `${p}/Sub` });
  const seqlensK = b.op('Cast', [minusOne], { name: `${p}/Cast`, attrs: { to: { int: T.INT32 } } });
  const maskShape = b.op('Shape', ['attention_mask'], { name: `${p}/Shape` });
  const total = b.op('Gather', [maskShape, b.i64([1], [])], { name: `${p}/Gather`, attrs: { axis: { int: 0 } } });
  const totalLen = b.op('Cast', [total], { name: `${p}/Cast_1`, attrs: { to: { int: T.INT32 } } });
  const caches = { cos: '', sin: '' };
  for (const fn of ['cos', 'sin'] as const) {
    caches[fn] = b.weight({
      name: `${fn}_cache`, dims: [c.maxPositions, d / 2], parameter: false,
      init: { kind: 'rotary', fn, theta: c.ropeTheta, headDim: d, full: false },
    });
  }

  let residual = embedding(ctx);
  let pending: string | undefined; // the last MLP output, not yet added to the residual
  const norm = (prefix: string, weightName: string): string => {
    const weight = normWeight(ctx, weightName);
    if (pending === undefined) {
      return b.op('SimplifiedLayerNormalization', [residual, weight], {
        name: `${prefix}/SimplifiedLayerNorm`, attrs: { axis: { int: -1 }, epsilon: eps, stash_type: { int: 1 } },
      });
    }
    const outs = b.node('SkipSimplifiedLayerNormalization', [pending, residual, weight], {
      name: `${prefix}/SkipLayerNorm`, domain: 'com.microsoft', attrs: { epsilon: eps }, outputs: 4, omit: [1, 2],
    });
    residual = outs[3];
    return outs[0];
  };

  for (let l = 0; l < c.numLayers; l++) {
    const prefix = `/model/layers.${l}`;
    const a = `${prefix}/attn`;
    const w = `model.layers.${l}`;
    const h = norm(`${prefix}/input_layernorm`, `${w}.input_layernorm.weight`);
    const q = b.op('MatMul', [h, linear(ctx, `${w}.self_attn.q_proj.weight`, c.hiddenSize, c.numHeads * d)], { name: `${a}/q_proj/MatMul` });
    const k = b.op('MatMul', [h, linear(ctx, `${w}.self_attn.k_proj.weight`, c.hiddenSize, c.numKvHeads * d)], { name: `${a}/k_proj/MatMul` });
    const v = b.op('MatMul', [h, linear(ctx, `${w}.self_attn.v_proj.weight`, c.hiddenSize, c.numKvHeads * d)], { name: `${a}/v_proj/MatMul` });
    const qRot = b.op('RotaryEmbedding', [q, 'position_ids', caches.cos, caches.sin], {
      name: `${a}/q_rotary/RotaryEmbedding`, domain: 'com.microsoft', attrs: { interleaved: { int: 0 }, num_heads: { int: c.numHeads } },
    });
    const kRot = b.op('RotaryEmbedding', [k, 'position_ids', caches.cos, caches.sin], {
      name: `${a}/k_rotary/RotaryEmbedding`, domain: 'com.microsoft', attrs: { interleaved: { int: 0 }, num_heads: { int: c.numKvHeads } },
    });
    const [attn] = b.node('GroupQueryAttention', [
      qRot, kRot, v, pastKeyName(l, 'key'), pastKeyName(l, 'value'), seqlensK, totalLen,
    ], {
      name: `${a}/GroupQueryAttention`, domain: 'com.microsoft',
      attrs: { num_heads: { int: c.numHeads }, kv_num_heads: { int: c.numKvHeads }, scale: { float: 1 / Math.sqrt(d) }, do_rotary: { int: 0 }, local_window_size: { int: -1 } },
      outputs: [`${a}/GroupQueryAttention_output_0`, presentName(l, 'key'), presentName(l, 'value')],
    });
    const attnOut = b.op('MatMul', [attn, linear(ctx, `${w}.self_attn.o_proj.weight`, c.numHeads * d, c.hiddenSize)], { name: `${a}/o_proj/MatMul` });
    pending = attnOut;
    const h2 = norm(`${prefix}/post_attention_layernorm`, `${w}.post_attention_layernorm.weight`);
    pending = mlp(ctx, prefix, h2, l);
  }
  lmHead(ctx, norm('/model/layers.final_norm', 'model.norm.weight'));
}

export interface GraphOptions {
  ops: OpFlavour;
  dtype: ModelDType;
  seed: number;
}

export function buildDecoderGraph(config: LlamaConfig, options: GraphOptions): DecoderGraph {
  const b = new GraphBuilder(onnxFloatType(options.dtype));
  const ctx: Context = { b, c: config, dtype: options.dtype, seed: options.seed };
  const io = declareInputsOutputs(config, options.dtype);
  if (options.ops === 'primitive') buildPrimitive(ctx);
  else buildContrib(ctx);
  const opsets = options.ops === 'primitive'
    ? [{ domain: '', version: 18 }]
    : [{ domain: '', version: 21 }, { domain: 'com.microsoft', version: 1 }];
  return { nodes: b.nodes, ...io, constants: b.constants, weights: b.weights, opsets };
}
