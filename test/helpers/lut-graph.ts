/** Small IR graphs for the LUT lowering tests (op-lut, pass-lut-lower, pass-fuse-lut-precompute). */
import type { DType } from '../../ir/dtype.js';
import type { Attribute, Dim, Graph, Model, Node } from '../../ir/graph.js';
import { Tensor } from '../../ir/tensor.js';
import { interpret } from '../../ir/interpreter.js';
import { weightFromTensor } from '../../passes/graph-edit.js';

export const OPSETS = new Map<string, number>([['', 23], ['com.microsoft', 1], ['llmcc', 1]]);

/** Deterministic pseudo-random numbers in [0, 1) (mulberry32). */
export function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export type AttrValue = number | string | Attribute;

export function node(op: string, inputs: string[], outputs: string[], attrs: Record<string, AttrValue> = {}, domain = 'llmcc', name?: string): Node {
  const attributes = new Map<string, Attribute>();
  for (const [k, v] of Object.entries(attrs)) {
    attributes.set(k, typeof v === 'number' ? (Number.isInteger(v) ? { kind: 'int', value: v } : { kind: 'float', value: v })
      : typeof v === 'string' ? { kind: 'string', value: v } : v);
  }
  return { name: name ?? `${op}_${outputs[0]}`, domain, op, inputs, outputs, attributes };
}

export function floatAttr(value: number): Attribute {
  return { kind: 'float', value };
}

export interface GraphSpec {
  inputs: { name: string; dtype: DType; shape: Dim[] }[];
  outputs: { name: string; dtype: DType; shape?: Dim[] }[];
  nodes: Node[];
  weights?: Record<string, Tensor>;
}

export function model(spec: GraphSpec): Model {
  const initializers = new Map([...Object.entries(spec.weights ?? {})].map(([n, t]) => [n, weightFromTensor(n, t)]));
  const graph: Graph = {
    name: 'test',
    inputs: spec.inputs.map((i) => ({ name: i.name, type: { dtype: i.dtype, shape: i.shape } })),
    outputs: spec.outputs.map((o) => ({ name: o.name, type: { dtype: o.dtype, shape: o.shape } })),
    nodes: spec.nodes,
    initializers,
    valueInfo: new Map(),
  };
  return { irVersion: 10, producer: 'test', opsets: new Map(OPSETS), graph };
}

export function run(m: Model, feeds: Record<string, Tensor>): Map<string, Tensor> {
  return interpret(m.graph, new Map(Object.entries(feeds)), { opsets: m.opsets });
}

export function randomTensor(dtype: DType, shape: number[], random: () => number, scale = 4): Tensor {
  const size = shape.reduce((a, b) => a * b, 1);
  return Tensor.fromNumbers(dtype, shape, Array.from({ length: size }, () => (random() - 0.5) * scale));
}

export interface QuantWeights {
  codes: Tensor;
  scales: Tensor;
  zeroPoints?: Tensor;
  bias?: Tensor;
}

/** Random weights for QuantMatMul: codes u8 [N, K], scales [N, K/G], optional zero points and bias. */
export function quantWeights(
  random: () => number, N: number, K: number, bits: number, groupSize: number,
  opts: { ternary?: boolean; asymmetric?: boolean; bias?: boolean; scaleDtype?: DType } = {},
): QuantWeights {
  const maxCode = opts.ternary ? 2 : 2 ** bits - 1;
  const blocks = K / groupSize;
  const codes = Tensor.fromNumbers('u8', [N, K], Array.from({ length: N * K }, () => Math.floor(random() * (maxCode + 1))));
  const scales = Tensor.fromNumbers(opts.scaleDtype ?? 'f32', [N, blocks], Array.from({ length: N * blocks }, () => 0.01 + random() * 0.2));
  const zeroPoints = bits === 1 ? Tensor.fromNumbers('f32', [N, blocks], new Array<number>(N * blocks).fill(0.5))
    : opts.asymmetric ? Tensor.fromNumbers('f32', [N, blocks], Array.from({ length: N * blocks }, () => random() * maxCode)) : undefined;
  const bias = opts.bias ? Tensor.fromNumbers('f32', [N], Array.from({ length: N }, () => random() - 0.5)) : undefined;
  return { codes, scales, zeroPoints, bias };
}

/** Max |a − b| / (|b| + floor) over two same-shaped tensors. */
export function maxRelativeError(a: Tensor, b: Tensor, floor = 1e-3): number {
  const x = a.numbers(), y = b.numbers();
  let worst = 0;
  for (let i = 0; i < x.length; i++) worst = Math.max(worst, Math.abs(x[i] - y[i]) / (Math.abs(y[i]) + floor));
  return worst;
}

/** max |a − b| / max |b|: the error relative to the tensor's scale (robust to near-zero elements). */
export function maxScaledError(a: Tensor, b: Tensor): number {
  const x = a.numbers(), y = b.numbers();
  let worst = 0, scale = 0;
  for (let i = 0; i < x.length; i++) {
    worst = Math.max(worst, Math.abs(x[i] - y[i]));
    scale = Math.max(scale, Math.abs(y[i]));
  }
  return scale === 0 ? worst : worst / scale;
}
