import { LlmccError } from '../../ir/errors.js';
import type { Graph, Model, Weight } from '../../ir/graph.js';
import { interpret } from '../../ir/interpreter.js';
import { Tensor } from '../../ir/tensor.js';
import { topologicalSort } from '../../ir/verify.js';
import { attrFloat, attrInt, type MatMulLayer } from './layers.js';
import { gaussian } from './sqnr.js';

/**
 * End-to-end sensitivity of a model to weight error (`llmcc inspect --quant --data … --noise`):
 * the cosine of a model output when every quantizable weight gets i.i.d. Gaussian noise at a
 * given SNR, over several seeds.
 *
 * Why: a quantizer's per-layer SQNR says little about the logits. Noise at the quantizer's own
 * SQNR shows what any quantizer of that precision can expect when its error is not shaped by
 * the data; 4 bits per weight cannot go beyond ≈ 24 dB on Gaussian weights (the rate–distortion
 * bound, 6.02 dB per bit), so a model that needs more than that for a cosine bar cannot meet
 * it at 4 bits without error shaped to its particular inputs.
 */

export interface StudySet {
  /** A label, e.g. the data-set folder. */
  name: string;
  feeds: ReadonlyMap<string, Tensor>;
  /** What the output is compared with: the data set's expected output, else the float model's. */
  expected: Tensor;
}

export interface NoiseRow {
  snrDb: number;
  /** Per set: cosines of the seeds, ascending. */
  cosines: number[][];
  /** Seeds whose cosine reaches `threshold` on every set. */
  allSetsAtLeast: number;
}

export function cosine(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new LlmccError(`cosine of ${a.length} and ${b.length} values`);
  let ab = 0, aa = 0, bb = 0;
  for (let i = 0; i < a.length; i++) {
    ab += a[i] * b[i];
    aa += a[i] * a[i];
    bb += b[i] * b[i];
  }
  return aa === 0 || bb === 0 ? (aa === bb ? 1 : 0) : ab / Math.sqrt(aa * bb);
}

/** Runs `graph` on a set and returns the named output. */
export function runOutput(model: Model, graph: Graph, set: Pick<StudySet, 'name' | 'feeds'>, output: string): Tensor {
  const value = interpret(graph, set.feeds, { opsets: model.opsets }).get(output);
  if (!value) throw new LlmccError(`the model did not produce output '${output}'`, set.name);
  return value;
}

/**
 * The B input `layer.node` reads, with N(0, (rms·10^(−snr/20))²) added to each weight: the
 * layer's rows [N, K] (alpha folded in) made noisy, then laid out as the node reads B (MatMul:
 * [K, N]; Gemm: per transB, divided by alpha).
 */
function noisyB(layer: MatMulLayer, name: string, snrDb: number, seed: number): Weight {
  const { n, k, node } = layer;
  const rows = layer.loadRows();
  let energy = 0;
  for (let i = 0; i < rows.length; i++) energy += rows[i] * rows[i];
  const sigma = Math.sqrt(energy / Math.max(1, rows.length)) * 10 ** (-snrDb / 20);
  const noise = gaussian(seed, rows.length);
  const gemm = node.op === 'Gemm';
  const alpha = gemm ? attrFloat(node, 'alpha', 1) : 1;
  const transB = gemm && attrInt(node, 'transB', 0) !== 0;
  const b = new Float32Array(n * k);
  for (let row = 0; row < n; row++) {
    for (let col = 0; col < k; col++) {
      const value = (rows[row * k + col] + sigma * noise[row * k + col]) / alpha;
      b[transB ? row * k + col : col * n + row] = value;
    }
  }
  const shape = transB ? [n, k] : [k, n];
  const tensor = new Tensor('f32', shape, b);
  return { name, dtype: 'f32', shape, byteLength: b.byteLength, location: { kind: 'inline' }, load: () => tensor };
}

/**
 * The graph with each layer's B input replaced by a noisy copy under its own name, so a weight
 * read through a Transpose, or also read elsewhere (an embedding table tied to lm_head), stays
 * exact outside the layer, as it does under weight quantization.
 */
function perturbedGraph(graph: Graph, layers: readonly MatMulLayer[], snrDb: number, seed: number): Graph {
  const initializers = new Map(graph.initializers);
  const renamed = new Map<MatMulLayer['node'], string>();
  layers.forEach((layer, i) => {
    const name = `${layer.weightName}::noise${i}`;
    initializers.set(name, noisyB(layer, name, snrDb, seed * 1009 + i));
    renamed.set(layer.node, name);
  });
  const nodes = graph.nodes.map((node) => {
    const name = renamed.get(node);
    return name ? { ...node, inputs: node.inputs.map((input, k) => (k === 1 ? name : input)) } : node;
  });
  return { ...graph, nodes: topologicalSort({ ...graph, nodes }), initializers };
}

/** Cosines of `output` on every set under weight noise at each SNR, `seeds` draws each. */
export function noiseStudy(
  model: Model, layers: readonly MatMulLayer[], sets: readonly StudySet[], output: string,
  options: { snrsDb: readonly number[]; seeds: number; threshold: number },
): NoiseRow[] {
  if (layers.length === 0) throw new LlmccError('no quantizable MatMul/Gemm weights to perturb');
  return options.snrsDb.map((snrDb) => {
    const cosines = sets.map(() => [] as number[]);
    let allSetsAtLeast = 0;
    for (let seed = 1; seed <= options.seeds; seed++) {
      const graph = perturbedGraph(model.graph, layers, snrDb, seed);
      const perSet = sets.map((set) => cosine(runOutput(model, graph, set, output).numbers(), set.expected.numbers()));
      perSet.forEach((c, i) => cosines[i].push(c));
      if (perSet.every((c) => c >= options.threshold)) allSetsAtLeast++;
    }
    for (const list of cosines) list.sort((a, b) => a - b);
    return { snrDb, cosines, allSetsAtLeast };
  });
}

/** "min / median / max (k/n ≥ t)" of ascending cosines. */
export function describeCosines(sorted: readonly number[], threshold: number): string {
  const median = sorted[Math.floor((sorted.length - 1) / 2)];
  const reached = sorted.filter((c) => c >= threshold).length;
  return `${sorted[0].toFixed(4)} / ${median.toFixed(4)} / ${sorted[sorted.length - 1].toFixed(4)} (${reached}/${sorted.length} >= ${threshold})`;
}
