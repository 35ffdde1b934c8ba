import { LlmccError } from '../../ir/errors.js';
import type { Graph, Model } from '../../ir/graph.js';
import { interpret } from '../../ir/interpreter.js';
import { seededRandom } from '../../ir/random.js';
import { Tensor, convertNumber } from '../../ir/tensor.js';
import { topologicalSort } from '../../ir/verify.js';
import { discoverBindings, signatureOfGraph, stepFeeds } from '../../src/runtime/generate.js';
import type { MatMulLayer } from './layers.js';

/**
 * Calibration for output-aware quantization (GPTQ): runs the float model on the reference
 * interpreter and sums, per MatMul input, the Gram matrix H = XᵀX of the activations X [rows, K]
 * that reach it. Only H is kept (K² per distinct input), never the activations.
 *
 * The inputs are either given feed sets (`--calib-data`: test-data-set folders) or, by default,
 * data-free: seeded random token ids fed through a decoder as prefill from an empty cache (the
 * graph's inputs are bound the way generate() binds them: ids, positions, masks, caches).
 */

export interface CalibrationOptions {
  /** Feed sets to run; absent: data-free random tokens (decoders only). */
  feeds?: readonly ReadonlyMap<string, Tensor>[];
  /** Feed sets bound to the graph when calibration runs (e.g. test-data-set folders; takes precedence over `feeds`). */
  bindFeeds?: (graph: Graph) => ReadonlyMap<string, Tensor>[];
  /** Data-free: token positions in all (default CALIBRATION_TOKENS). */
  tokens?: number;
  /** Data-free: seed of the token ids (default CALIBRATION_TOKEN_SEED). */
  seed?: number;
}

export const CALIBRATION_TOKENS = 256;
/** Data-free sequences are at most this long (and no longer than a static cache). */
export const CALIBRATION_SEQUENCE = 64;
export const CALIBRATION_TOKEN_SEED = 0x9e37;

/** H = XᵀX [K, K] of one MatMul input, summed over every calibration row. */
export interface InputGram {
  k: number;
  gram: Float64Array;
  rows: number;
}

/** The vocabulary size: logits' last dim, else the rows of the table input_ids gathers from. */
function vocabularySize(graph: Graph, inputIds: string, logits: string): number {
  const shape = graph.outputs.find((o) => o.name === logits)?.type?.shape;
  const last = shape?.[shape.length - 1];
  if (typeof last === 'number' && last > 0) return last;
  for (const node of graph.nodes) {
    if (node.op !== 'Gather' || node.inputs[1] !== inputIds) continue;
    const table = graph.initializers.get(node.inputs[0]);
    if (table && table.shape.length === 2) return table.shape[0];
  }
  throw new LlmccError(`cannot tell the vocabulary size: '${logits}' has no static last dim and '${inputIds}' indexes no constant table`);
}

/**
 * Seeded random-token prefill feeds for a decoder graph (batch 1, empty cache), `tokens`
 * positions in all. Throws LlmccError when the graph is not a decoder generate() can drive.
 */
export function dataFreeFeeds(graph: Graph, tokens = CALIBRATION_TOKENS, seed = CALIBRATION_TOKEN_SEED): Map<string, Tensor>[] {
  const { inputs, outputs } = signatureOfGraph(graph);
  const bindings = discoverBindings(inputs, outputs);
  const vocab = vocabularySize(graph, bindings.inputIds.name, bindings.logits);
  const length = Math.max(1, Math.min(CALIBRATION_SEQUENCE, bindings.capacity, tokens));
  const random = seededRandom(seed);
  const feeds: Map<string, Tensor>[] = [];
  for (let done = 0; done < tokens; done += length) {
    const ids = Array.from({ length: Math.min(length, tokens - done) }, () => Math.floor(random() * vocab));
    feeds.push(stepFeeds(bindings, ids, 0, undefined));
  }
  return feeds;
}

/** The calibration feed sets: the given ones, or data-free ones (throws when impossible). */
export function calibrationFeeds(model: Model, options: CalibrationOptions): readonly ReadonlyMap<string, Tensor>[] {
  const given = options.bindFeeds ? options.bindFeeds(model.graph) : options.feeds;
  if (given) {
    if (given.length === 0) throw new LlmccError('calibration needs at least one feed set');
    return given;
  }
  try {
    return dataFreeFeeds(model.graph, options.tokens, options.seed);
  } catch (error) {
    if (!(error instanceof LlmccError)) throw error;
    throw new LlmccError(`data-free calibration drives decoders only (${error.message}); give calibration data (--calib-data)`);
  }
}

function addGram(target: InputGram, values: ArrayLike<number>): void {
  const { k, gram } = target;
  const rows = values.length / k;
  const x = new Float64Array(k);
  for (let r = 0; r < rows; r++) {
    for (let i = 0; i < k; i++) x[i] = values[r * k + i];
    // Upper triangle only; mirrored at the end.
    for (let i = 0; i < k; i++) {
      const xi = x[i];
      if (xi === 0) continue;
      const row = i * k;
      for (let j = i; j < k; j++) gram[row + j] += xi * x[j];
    }
  }
  target.rows += rows;
}

/** Copies the accumulated upper triangle to the lower one (idempotent). */
function mirror({ k, gram }: InputGram): void {
  for (let i = 0; i < k; i++) for (let j = 0; j < i; j++) gram[i * k + j] = gram[j * k + i];
}

/**
 * Chooses a layer's weight during a sequential calibration run: called when the run reaches the
 * layer, with its input's H so far (complete: all calibration rows are in one batch); returns
 * the weight the rest of the run should see, as rows [N, K] (or undefined to keep the float one).
 */
export type SequentialQuantizer = (layer: MatMulLayer, gram: InputGram) => ArrayLike<number> | undefined;

/** X [rows, K] · Wᵀ (+ bias) written over `out` [rows, N], rounded by the output's dtype. */
function overwriteOutput(out: Tensor, x: ArrayLike<number>, rows: ArrayLike<number>, layer: MatMulLayer): void {
  const { k, n, bias } = layer;
  const y = out.numbers();
  const m = x.length / k;
  if (y.length !== m * n) throw new LlmccError(`GPTQ: output of '${layer.node.name}' has ${y.length} values, expected ${m}x${n}`);
  for (let r = 0; r < m; r++) {
    for (let c = 0; c < n; c++) {
      let acc = bias ? bias[c] : 0;
      for (let i = 0; i < k; i++) acc += x[r * k + i] * rows[c * k + i];
      y[r * n + c] = convertNumber(out.dtype, acc);
    }
  }
}

/**
 * Runs the float model on every feed set and returns H = XᵀX per distinct input value of
 * `layers` (layers reading the same activations share one entry, keyed by the value's name).
 *
 * With `sequential`, the feeds must be one (batched) set: each layer is handed to it as soon as
 * the run reaches it and its output is recomputed with the weight it returns, so later layers'
 * H come from the activations of the quantized layers before them (GPTQ's sequential mode).
 */
export function captureGrams(
  model: Model, feedSets: readonly ReadonlyMap<string, Tensor>[], layers: readonly MatMulLayer[], sequential?: SequentialQuantizer,
): Map<string, InputGram> {
  if (sequential && feedSets.length !== 1) throw new LlmccError(`sequential calibration runs one batched feed set, got ${feedSets.length}`);
  const grams = new Map<string, InputGram>();
  const layerOf = new Map<string, MatMulLayer[]>();
  for (const layer of layers) {
    const name = layer.node.inputs[0];
    const known = grams.get(name);
    if (known && known.k !== layer.k) throw new LlmccError(`value '${name}' feeds layers with K=${known.k} and K=${layer.k}`);
    if (!known) grams.set(name, { k: layer.k, gram: new Float64Array(layer.k * layer.k), rows: 0 });
    layerOf.set(layer.node.name, [...(layerOf.get(layer.node.name) ?? []), layer]);
  }
  const values = new Map<string, Tensor>();
  const record = (name: string, tensor: Tensor): void => {
    const target = grams.get(name);
    if (!target || tensor.size % target.k !== 0) return;
    addGram(target, tensor.numbers());
    if (sequential) values.set(name, tensor);
  };
  let unreached = layers.length;
  const quantizeAt = (layer: MatMulLayer, output: Tensor | undefined): void => {
    unreached--;
    const input = layer.node.inputs[0];
    const gram = grams.get(input);
    const x = values.get(input);
    if (!gram || !x || !output || gram.rows === 0) return;
    mirror(gram);
    const rows = sequential!(layer, gram);
    // The last layer's output (typically the logits) feeds no later layer: not worth recomputing.
    if (rows && unreached > 0) overwriteOutput(output, x.numbers(), rows, layer);
  };
  const graph = { ...model.graph, nodes: topologicalSort(model.graph) };
  for (const feeds of feedSets) {
    for (const [name, tensor] of feeds) record(name, tensor);
    for (const [name, weight] of model.graph.initializers) if (grams.has(name) && !feeds.has(name)) record(name, weight.load());
    interpret(graph, feeds, {
      opsets: model.opsets,
      onNode: (node, outputs) => {
        if (sequential) for (const layer of layerOf.get(node.name) ?? []) if (layer.node === node) quantizeAt(layer, outputs[0]);
        node.outputs.forEach((name, i) => { if (outputs[i]) record(name, outputs[i]); });
      },
    });
  }
  for (const gram of grams.values()) mirror(gram);
  return grams;
}

/**
 * Per graph input, the axis that carries the batch: where its declared shape has the symbol of
 * input_ids' first dim (gpt2's packed past [2, batch, heads, past, head] batches on axis 1);
 * −1 for an input without it. Empty when input_ids has no symbolic batch dim (then axis 0).
 */
export function batchAxes(graph: Graph): Map<string, number> {
  const axes = new Map<string, number>();
  const symbol = graph.inputs.find((i) => i.name === 'input_ids')?.type?.shape?.[0];
  if (typeof symbol !== 'string') return axes;
  for (const input of graph.inputs) axes.set(input.name, input.type?.shape?.indexOf(symbol) ?? -1);
  return axes;
}

/** `tensors` (equal shapes but along `axis`) joined along `axis`. */
function concatAlong(tensors: readonly Tensor[], axis: number): Tensor {
  const first = tensors[0];
  const shape = first.shape.map((d, a) => (a === axis ? tensors.reduce((sum, t) => sum + t.shape[axis], 0) : d));
  const joined = Tensor.zeros(first.dtype, shape);
  const data = joined.numbers();
  // Each tensor is `outer` runs of `inner`·its own axis extent; runs interleave in the result.
  const outer = first.shape.slice(0, axis).reduce((p, d) => p * d, 1);
  const inner = first.shape.slice(axis + 1).reduce((p, d) => p * d, 1);
  const rowOut = shape[axis] * inner;
  let at = 0;
  for (const t of tensors) {
    const run = t.shape[axis] * inner;
    const src = t.numbers();
    for (let o = 0; o < outer; o++) data.set(src.subarray(o * run, (o + 1) * run), o * rowOut + at);
    at += run;
  }
  return joined;
}

/**
 * The feed sets as one batch (joined along each input's batch axis, `axes`, default 0), or
 * undefined when they cannot be: shapes that differ beyond the batch axis, or inputs without
 * a batch axis (scalars included) whose values differ.
 */
export function batchFeeds(sets: readonly ReadonlyMap<string, Tensor>[], axes: ReadonlyMap<string, number> = new Map()): Map<string, Tensor> | undefined {
  if (sets.length === 0) return undefined;
  const batch = new Map<string, Tensor>();
  for (const [name, first] of sets[0]) {
    const tensors = sets.map((set) => set.get(name));
    if (tensors.some((t) => !t || t.dtype !== first.dtype || t.rank !== first.rank)) return undefined;
    const all = tensors as Tensor[];
    const axis = first.rank === 0 ? -1 : axes.get(name) ?? 0;
    if (all.some((t) => t.shape.some((d, a) => a !== axis && d !== first.shape[a]))) return undefined;
    if (axis < 0) {
      const values = first.numbers();
      if (all.some((t) => t.numbers().some((v, i) => v !== values[i]))) return undefined;
      batch.set(name, first);
      continue;
    }
    batch.set(name, concatAlong(all, axis));
  }
  return batch;
}
