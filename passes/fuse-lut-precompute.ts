import type { Attribute, Graph, Model, Node } from '../ir/graph.js';
import { MS_DOMAIN } from '../ir/graph.js';
import { inferTypes } from '../ir/infer.js';
import { verifyModel } from '../ir/verify.js';
import type { Pass, PassResult } from './pass.js';
import { consumers, freshName, producers } from './graph-edit.js';

/**
 * Fuses a norm into the LutPrecompute it feeds (LUT Tensor Core: the norm writes the tables,
 * so the activations are read once): Norm(x) → LutPrecompute becomes one
 * llmcc.NormLutPrecompute(x, gamma, beta?, skip?, skip_bias?) → (y, tables, table_scales,
 * act_sums, skip_sum?). y keeps the norm's output name when anything else reads it; the
 * residual sum of Skip*Normalization (its output 3) maps to output 4.
 *
 * Norms fused, all over the last axis only: RMSNormalization (ai.onnx 23), LayerNormalization,
 * SimplifiedLayerNormalization (ai.onnx or com.microsoft), com.microsoft
 * SkipSimplifiedLayerNormalization and SkipLayerNormalization. Not fused (counted in stats):
 * a norm whose mean / inv-std outputs are read, a norm over more than the last axis, a
 * scale/bias that is not a plain [H] vector.
 *
 * Elementwise producers: a Mul by a constant scalar or per-channel vector along the last axis
 * (Mul(x, c) → LutPrecompute) becomes LutPrecompute(x, c), which rounds x·c to x's dtype
 * exactly as Mul does before building the tables; it fires only when every reader of the Mul
 * is a LutPrecompute (otherwise the product is materialized anyway). A Mul of two activations
 * (SwiGLU's silu(gate)·up before the down projection) is not fused: that would need a
 * two-input precompute, and a Mul after a norm does not fuse into the norm either (folding c
 * into gamma changes the f32 rounding, so it is not exact).
 */

interface NormPattern {
  norm: 'rms' | 'layer';
  x: string;
  gamma: string;
  beta: string;
  skip: string;
  skipBias: string;
  epsilon: number;
  /** Output index of the residual sum (Skip* norms), if the norm has one. */
  sumOutput?: number;
  /** Outputs (other than y and the sum) that must be unused to fuse. */
  statOutputs: number[];
  /** Whether an `axis` attribute must be checked to be the last axis. */
  hasAxis: boolean;
}

function floatAttr(node: Node, name: string, fallback: number): number {
  const a = node.attributes.get(name);
  return a?.kind === 'float' ? a.value : fallback;
}

function matchNorm(node: Node): NormPattern | undefined {
  const input = (i: number): string => node.inputs[i] ?? '';
  const onnx = node.domain === '';
  const ms = node.domain === MS_DOMAIN;
  if (onnx && node.op === 'RMSNormalization') {
    return { norm: 'rms', x: input(0), gamma: input(1), beta: '', skip: '', skipBias: '', epsilon: floatAttr(node, 'epsilon', 1e-5), statOutputs: [], hasAxis: true };
  }
  if (onnx && node.op === 'LayerNormalization') {
    return { norm: 'layer', x: input(0), gamma: input(1), beta: input(2), skip: '', skipBias: '', epsilon: floatAttr(node, 'epsilon', 1e-5), statOutputs: [1, 2], hasAxis: true };
  }
  if ((onnx || ms) && node.op === 'SimplifiedLayerNormalization') {
    return { norm: 'rms', x: input(0), gamma: input(1), beta: '', skip: '', skipBias: '', epsilon: floatAttr(node, 'epsilon', 1e-5), statOutputs: [1], hasAxis: true };
  }
  if (ms && node.op === 'SkipSimplifiedLayerNormalization') {
    return { norm: 'rms', x: input(0), gamma: input(2), beta: '', skip: input(1), skipBias: input(3), epsilon: floatAttr(node, 'epsilon', 1e-12), sumOutput: 3, statOutputs: [1, 2], hasAxis: false };
  }
  if (ms && node.op === 'SkipLayerNormalization') {
    return { norm: 'layer', x: input(0), gamma: input(2), beta: input(3), skip: input(1), skipBias: input(4), epsilon: floatAttr(node, 'epsilon', 1e-12), sumOutput: 3, statOutputs: [1, 2], hasAxis: false };
  }
  return undefined;
}

export const fuseLutPrecomputePass: Pass = {
  name: 'fuse-lut-precompute',
  run(model: Model): PassResult {
    const graph = model.graph;
    const stats: Record<string, number> = {
      fused: 0,
      notFusedProducerNotNorm: 0,
      notFusedStatsInUse: 0,
      notFusedAxis: 0,
      notFusedParamShape: 0,
      notFusedScaledPrecompute: 0,
      fusedMul: 0,
      notFusedMulOutputInUse: 0,
      notFusedMulNotConstant: 0,
    };
    try {
      inferTypes(graph, model.opsets);
    } catch {
      // Missing types only make the shape checks below decline to fuse.
    }
    let changed = false;
    for (const pre of [...graph.nodes]) {
      if (pre.domain !== 'llmcc' || pre.op !== 'LutPrecompute') continue;
      const made = producers(graph);
      const norm = made.get(pre.inputs[0]);
      const pattern = norm && norm.outputs[0] === pre.inputs[0] ? matchNorm(norm) : undefined;
      if (norm && norm.domain === '' && norm.op === 'Mul' && norm.outputs[0] === pre.inputs[0]) {
        const outcome = fuseMul(graph, norm);
        stats[outcome]++;
        if (outcome === 'fusedMul') changed = true;
        continue;
      }
      if (!norm || !pattern) {
        stats.notFusedProducerNotNorm++;
        continue;
      }
      if (pre.inputs[1]) {
        stats.notFusedScaledPrecompute++;
        continue;
      }
      const reason = whyNotFuse(graph, norm, pattern);
      if (reason) {
        stats[reason]++;
        continue;
      }
      fuse(graph, norm, pre, pattern);
      stats.fused++;
      changed = true;
    }
    if (changed) verifyModel(model);
    return { changed, stats };
  },
};

function isRead(graph: Graph, uses: ReturnType<typeof consumers>, name: string | undefined): boolean {
  if (!name) return false;
  return (uses.get(name)?.length ?? 0) > 0 || graph.outputs.some((o) => o.name === name);
}

/** The stats key saying why the pair cannot be fused, or undefined when it can. */
function whyNotFuse(graph: Graph, norm: Node, p: NormPattern): string | undefined {
  const uses = consumers(graph);
  if (p.statOutputs.some((i) => isRead(graph, uses, norm.outputs[i]))) return 'notFusedStatsInUse';
  const xType = graph.valueInfo.get(p.x);
  const rank = xType?.shape?.length;
  const hidden = xType?.shape?.[xType.shape.length - 1];
  if (p.hasAxis) {
    const axisAttr = norm.attributes.get('axis');
    const axis = axisAttr?.kind === 'int' ? axisAttr.value : -1;
    if (axis !== -1 && (rank === undefined || axis !== rank - 1)) return 'notFusedAxis';
  }
  for (const param of [p.gamma, p.beta, p.skipBias]) {
    if (!param) continue;
    const shape = graph.valueInfo.get(param)?.shape;
    if (!shape || shape.length !== 1 || hidden === undefined || shape[0] !== hidden) return 'notFusedParamShape';
  }
  return undefined;
}

function fuse(graph: Graph, norm: Node, pre: Node, p: NormPattern): void {
  const uses = consumers(graph);
  const y = norm.outputs[0];
  const yReadElsewhere = (uses.get(y) ?? []).some((u) => u.node !== pre) || graph.outputs.some((o) => o.name === y);
  const inputs = [p.x, p.gamma, p.beta, p.skip, p.skipBias];
  while (inputs[inputs.length - 1] === '') inputs.pop();
  const outputs = [yReadElsewhere ? y : '', ...pre.outputs];
  const sum = p.sumOutput !== undefined ? norm.outputs[p.sumOutput] : undefined;
  if (sum && isRead(graph, uses, sum)) outputs[4] = sum;
  const attributes = new Map<string, Attribute>([
    ['norm', { kind: 'string', value: p.norm }],
    ['epsilon', { kind: 'float', value: p.epsilon }],
  ]);
  for (const name of ['g', 'group_size', 'table']) {
    const attr = pre.attributes.get(name);
    if (attr) attributes.set(name, attr);
  }
  const fused: Node = {
    name: freshName(graph, `${norm.name}_lut`),
    domain: 'llmcc',
    op: 'NormLutPrecompute',
    inputs,
    outputs,
    attributes,
  };
  // The fused node takes the norm's place: everything it reads is defined before the norm.
  graph.nodes = graph.nodes.filter((n) => n !== pre).map((n) => (n === norm ? fused : n));
}

/**
 * Folds Mul(x, c) (c a constant scalar or [.., K] vector) into every LutPrecompute reading it.
 * Returns the stats key of the outcome.
 */
function fuseMul(graph: Graph, mul: Node): 'fusedMul' | 'notFusedMulOutputInUse' | 'notFusedMulNotConstant' {
  const product = mul.outputs[0];
  const [left, right] = mul.inputs;
  const constantSide = graph.initializers.has(right) ? 1 : graph.initializers.has(left) ? 0 : -1;
  if (constantSide < 0) return 'notFusedMulNotConstant';
  const c = mul.inputs[constantSide];
  const x = mul.inputs[1 - constantSide];
  const xShape = graph.valueInfo.get(x)?.shape;
  const cShape = graph.initializers.get(c)?.shape ?? [];
  const K = xShape?.[xShape.length - 1];
  const last = cShape.length ? cShape[cShape.length - 1] : 1;
  const perChannel = xShape !== undefined && cShape.length <= xShape.length && cShape.slice(0, -1).every((d) => d === 1) &&
    (last === 1 || last === K);
  if (!perChannel || graph.initializers.has(x)) return 'notFusedMulNotConstant';
  const readers = consumers(graph).get(product) ?? [];
  const allPrecomputes = readers.every((u) => u.node.domain === 'llmcc' && u.node.op === 'LutPrecompute' && u.index === 0 && !u.node.inputs[1]);
  if (!allPrecomputes || graph.outputs.some((o) => o.name === product)) return 'notFusedMulOutputInUse';
  for (const { node } of readers) node.inputs = [x, c];
  graph.nodes = graph.nodes.filter((n) => n !== mul);
  return 'fusedMul';
}
