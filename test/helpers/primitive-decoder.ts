/**
 * Small decoder graphs written in primitive ops, spelled the way torch.onnx (TorchScript and
 * dynamo exporters) and tf2onnx emit them, for the fusion tests: RMSNorm as Pow/ReduceMean/
 * Add/Sqrt/Div|Reciprocal/Mul (optionally inside Cast-to-f32), LayerNorm as ReduceMean/Sub/Pow/
 * ReduceMean/Add/Sqrt/Div/Mul/Add, Gelu as x·0.5·(1+erf(x/√2)) or its tanh form, SiLU as
 * x·sigmoid(x), SwiGLU, Q/K/V projections (MatMul + Add bias), attention as Reshape/Transpose/
 * MatMul/Div|Mul/Add mask/Softmax/MatMul/Transpose/Reshape (shapes constant, or computed by
 * Shape/Gather/Unsqueeze/Concat as TorchScript does).
 *
 * Graphs are serialized with onnx-builder and imported by the real loader.
 */
import { seededRandom } from '../../ir/random.js';
import { Tensor } from '../../ir/tensor.js';
import type { Model } from '../../ir/graph.js';
import { loadModelFromBytes } from '../../src/onnx/load.js';
import { buildModel, type AttrValue, type NodeSpec } from './onnx-builder.js';

export type NormStyle = 'rms' | 'rms-reciprocal' | 'rms-cast' | 'layer' | 'layer-tf2onnx';
export type MlpStyle = 'swiglu' | 'gelu-erf' | 'gelu-tanh' | 'relu';

export interface DecoderSpec {
  batch: number;
  seq: number;
  hidden: number;
  heads: number;
  ffn: number;
  layers: number;
  norm: NormStyle;
  mlp: MlpStyle;
  /** Bias Adds after the Q/K/V projections (GPT-2, Qwen) or not (Llama). */
  qkvBias: boolean;
  /** Bias Adds after the MLP projections. */
  mlpBias: boolean;
  /** Attention scale as Div by √H (TorchScript eager) or Mul by 1/√H. */
  scale: 'div' | 'mul';
  /** An additive causal mask [1, 1, S, S] added before the Softmax. */
  mask: boolean;
  /** Reshape targets as constants, or computed from Shape (TorchScript with dynamic axes). */
  reshape: 'constant' | 'computed';
  seed: number;
}

export const DEFAULT_DECODER: DecoderSpec = {
  batch: 2, seq: 5, hidden: 32, heads: 4, ffn: 48, layers: 2,
  norm: 'rms', mlp: 'swiglu', qkvBias: false, mlpBias: false, scale: 'div', mask: true, reshape: 'constant', seed: 7,
};

class GraphWriter {
  readonly nodes: NodeSpec[] = [];
  readonly initializers: Record<string, Tensor> = {};
  private counter = 0;
  private readonly random: () => number;

  constructor(seed: number) {
    this.random = seededRandom(seed);
  }

  fresh(base: string): string {
    return `${base}_${this.counter++}`;
  }

  node(op: string, inputs: string[], attributes?: Record<string, AttrValue>, outputs = 1): string[] {
    const outs = Array.from({ length: outputs }, () => this.fresh(op.toLowerCase()));
    this.nodes.push({ op, inputs, outputs: outs, name: this.fresh(`/${op}`), ...(attributes ? { attributes } : {}) });
    return outs;
  }

  one(op: string, inputs: string[], attributes?: Record<string, AttrValue>): string {
    return this.node(op, inputs, attributes)[0];
  }

  constant(base: string, tensor: Tensor): string {
    const name = this.fresh(base);
    this.initializers[name] = tensor;
    return name;
  }

  scalar(value: number): string {
    return this.constant('const', Tensor.fromNumbers('f32', [], [value]));
  }

  ints(values: number[]): string {
    return this.constant('ints', Tensor.fromNumbers('i64', [values.length], values));
  }

  weight(base: string, shape: number[], scale: number, offset = 0): string {
    const size = shape.reduce((a, b) => a * b, 1);
    return this.constant(base, Tensor.fromNumbers('f32', shape, Array.from({ length: size }, () => offset + (this.random() - 0.5) * 2 * scale)));
  }
}

function meanLast(w: GraphWriter, x: string): string {
  return w.one('ReduceMean', [x, w.ints([-1])], { keepdims: 1 });
}

function rmsNorm(w: GraphWriter, x: string, style: NormStyle, hidden: number): string {
  const gamma = w.weight('norm.weight', [hidden], 0.2, 1);
  const xf = style === 'rms-cast' ? w.one('Cast', [x], { to: 1 }) : x;
  const variance = meanLast(w, w.one('Pow', [xf, w.scalar(2)]));
  const root = w.one('Sqrt', [w.one('Add', [variance, w.scalar(1e-6)])]);
  const normalized = style === 'rms' ? w.one('Div', [xf, root]) : w.one('Mul', [xf, w.one('Reciprocal', [root])]);
  const back = style === 'rms-cast' ? w.one('Cast', [normalized], { to: 1 }) : normalized;
  return w.one('Mul', [gamma, back]);
}

function layerNorm(w: GraphWriter, x: string, hidden: number): string {
  const gamma = w.weight('ln.weight', [hidden], 0.2, 1);
  const beta = w.weight('ln.bias', [hidden], 0.2);
  const centered = w.one('Sub', [x, meanLast(w, x)]);
  const variance = meanLast(w, w.one('Pow', [centered, w.scalar(2)]));
  const normalized = w.one('Div', [centered, w.one('Sqrt', [w.one('Add', [variance, w.scalar(1e-5)])])]);
  return w.one('Add', [w.one('Mul', [normalized, gamma]), beta]);
}

/** tf2onnx's Keras LayerNormalization: x·inv + (beta − mean·inv), inv = gamma·rsqrt(var + eps). */
function tfLayerNorm(w: GraphWriter, x: string, hidden: number): string {
  const gamma = w.weight('ln.gamma', [hidden], 0.2, 1);
  const beta = w.weight('ln.beta', [hidden], 0.2);
  const mean = meanLast(w, x);
  const diff = w.one('Sub', [x, mean]);
  const variance = meanLast(w, w.one('Mul', [diff, diff]));
  const inv = w.one('Mul', [w.one('Reciprocal', [w.one('Sqrt', [w.one('Add', [variance, w.scalar(1e-3)])])]), gamma]);
  return w.one('Add', [w.one('Mul', [x, inv]), w.one('Sub', [beta, w.one('Mul', [mean, inv])])]);
}

function norm(w: GraphWriter, x: string, spec: DecoderSpec): string {
  if (spec.norm === 'layer') return layerNorm(w, x, spec.hidden);
  if (spec.norm === 'layer-tf2onnx') return tfLayerNorm(w, x, spec.hidden);
  return rmsNorm(w, x, spec.norm, spec.hidden);
}

function linear(w: GraphWriter, x: string, k: number, n: number, bias: boolean, name: string): string {
  const y = w.one('MatMul', [x, w.weight(`${name}.weight`, [k, n], 1 / Math.sqrt(k))]);
  return bias ? w.one('Add', [y, w.weight(`${name}.bias`, [n], 0.1)]) : y;
}

/** [B, S, D] → [B, S, N, H] with the target shape as the exporter spells it. */
function splitHeadsShape(w: GraphWriter, x: string, spec: DecoderSpec): string {
  const h = spec.hidden / spec.heads;
  if (spec.reshape === 'constant') return w.ints([spec.batch, spec.seq, spec.heads, h]);
  const shape = w.one('Shape', [x]);
  const b = w.one('Unsqueeze', [w.one('Gather', [shape, w.constant('idx', Tensor.fromNumbers('i64', [], [0]))], { axis: 0 }), w.ints([0])]);
  const s = w.one('Unsqueeze', [w.one('Gather', [shape, w.constant('idx', Tensor.fromNumbers('i64', [], [1]))], { axis: 0 }), w.ints([0])]);
  return w.one('Concat', [b, s, w.ints([spec.heads]), w.ints([h])], { axis: 0 });
}

function attention(w: GraphWriter, x: string, spec: DecoderSpec, mask: string | undefined): string {
  const { hidden } = spec;
  const headSize = hidden / spec.heads;
  const q = linear(w, x, hidden, hidden, spec.qkvBias, 'q_proj');
  const k = linear(w, x, hidden, hidden, spec.qkvBias, 'k_proj');
  const v = linear(w, x, hidden, hidden, spec.qkvBias, 'v_proj');
  const heads = (t: string): string => w.one('Transpose', [w.one('Reshape', [t, splitHeadsShape(w, t, spec)])], { perm: [0, 2, 1, 3] });
  const kT = w.one('Transpose', [heads(k)], { perm: [0, 1, 3, 2] });
  const scores = w.one('MatMul', [heads(q), kT]);
  const scaled = spec.scale === 'div' ? w.one('Div', [scores, w.scalar(Math.sqrt(headSize))]) : w.one('Mul', [scores, w.scalar(1 / Math.sqrt(headSize))]);
  const probs = w.one('Softmax', [mask ? w.one('Add', [scaled, mask]) : scaled], { axis: -1 });
  const context = w.one('Transpose', [w.one('MatMul', [probs, heads(v)])], { perm: [0, 2, 1, 3] });
  const merged = w.one('Reshape', [context, w.ints([spec.batch, spec.seq, hidden])]);
  return linear(w, merged, hidden, hidden, false, 'o_proj');
}

function gelu(w: GraphWriter, x: string, tanh: boolean): string {
  if (!tanh) {
    const inner = w.one('Add', [w.one('Erf', [w.one('Div', [x, w.scalar(Math.SQRT2)])]), w.scalar(1)]);
    return w.one('Mul', [w.one('Mul', [x, w.scalar(0.5)]), inner]);
  }
  const cube = w.one('Pow', [x, w.scalar(3)]);
  const poly = w.one('Add', [x, w.one('Mul', [w.scalar(0.044715), cube])]);
  const inner = w.one('Add', [w.scalar(1), w.one('Tanh', [w.one('Mul', [w.scalar(Math.sqrt(2 / Math.PI)), poly])])]);
  return w.one('Mul', [w.one('Mul', [w.scalar(0.5), x]), inner]);
}

function mlp(w: GraphWriter, x: string, spec: DecoderSpec): string {
  const { hidden, ffn } = spec;
  if (spec.mlp === 'swiglu') {
    const gate = linear(w, x, hidden, ffn, spec.mlpBias, 'gate_proj');
    const up = linear(w, x, hidden, ffn, spec.mlpBias, 'up_proj');
    const silu = w.one('Mul', [gate, w.one('Sigmoid', [gate])]);
    return linear(w, w.one('Mul', [silu, up]), ffn, hidden, spec.mlpBias, 'down_proj');
  }
  const h = linear(w, x, hidden, ffn, spec.mlpBias, 'fc1');
  const act = spec.mlp === 'relu' ? w.one('Relu', [h]) : gelu(w, h, spec.mlp === 'gelu-tanh');
  return linear(w, act, ffn, hidden, spec.mlpBias, 'fc2');
}

const VOCAB = 40;

/** The decoder as ONNX bytes: input `hidden_states` [B, S, D] f32, output `logits` [B, S, 40]. */
export function primitiveDecoderBytes(overrides: Partial<DecoderSpec> = {}): Uint8Array {
  const spec = { ...DEFAULT_DECODER, ...overrides };
  const w = new GraphWriter(spec.seed);
  const s = spec.seq;
  const mask = spec.mask
    ? w.constant('causal_mask', Tensor.fromNumbers('f32', [1, 1, s, s], Array.from({ length: s * s }, (_, i) => (i % s > Math.floor(i / s) ? -1e9 : 0))))
    : undefined;
  let h = 'hidden_states';
  for (let layer = 0; layer < spec.layers; layer++) {
    h = w.one('Add', [h, attention(w, norm(w, h, spec), spec, mask)]);
    h = w.one('Add', [h, mlp(w, norm(w, h, spec), spec)]);
  }
  const lmHead = w.weight('lm_head.weight', [spec.hidden, VOCAB], 1 / Math.sqrt(spec.hidden));
  w.nodes.push({ op: 'MatMul', name: 'lm_head', inputs: [norm(w, h, spec), lmHead], outputs: ['logits'] });
  return buildModel({
    nodes: w.nodes,
    inputs: [{ name: 'hidden_states', dtype: 'f32', shape: [spec.batch, spec.seq, spec.hidden] }],
    outputs: [{ name: 'logits', dtype: 'f32', shape: [spec.batch, spec.seq, VOCAB] }],
    initializers: w.initializers,
    opsets: { '': 18 },
    producer: 'pytorch',
  });
}

export function primitiveDecoder(overrides: Partial<DecoderSpec> = {}): Model {
  return loadModelFromBytes(primitiveDecoderBytes(overrides), { path: 'primitive-decoder.onnx' });
}

/** Random input of the decoder's shape. */
export function decoderInput(overrides: Partial<DecoderSpec> = {}, seed = 3): Tensor {
  const spec = { ...DEFAULT_DECODER, ...overrides };
  const random = seededRandom(seed);
  const size = spec.batch * spec.seq * spec.hidden;
  return Tensor.fromNumbers('f32', [spec.batch, spec.seq, spec.hidden], Array.from({ length: size }, () => (random() - 0.5) * 4));
}
