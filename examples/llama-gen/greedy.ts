/**
 * A host-side greedy generation loop for decoder graphs with past/present KV-cache I/O
 * (ORT GenAI's layout: input_ids, attention_mask, position_ids, past_key_values.N.key/value
 * in; logits, present.N.key/value out). The engine is a callback, so the same loop runs on
 * the reference interpreter, on onnxruntime-node, or on any llmcc target session.
 */
import type { DType } from '../../ir/dtype.js';
import { LlmccError } from '../../ir/errors.js';
import type { Graph } from '../../ir/graph.js';
import { Tensor } from '../../ir/tensor.js';

/** Runs the model once: feeds by graph input name in, outputs by graph output name out. */
export type RunFn = (feeds: Map<string, Tensor>) => Promise<Map<string, Tensor>>;

/** One cache tensor: which output feeds which input on the next step. */
export interface KvBinding {
  past: string;
  present: string;
  dtype: DType;
  /** Per-sequence dims [kv_heads, head_dim] (dims 1 and 3 of [batch, kv_heads, seq, head_dim]). */
  kvHeads: number;
  headDim: number;
}

export interface DecoderIo {
  kv: KvBinding[];
  /** Whether the graph takes position_ids (GenAI's GQA models sometimes do not). */
  positionIds: boolean;
}

const PAST = /^past_key_values\.(\d+)\.(key|value)$/;

/** Finds the KV bindings of a graph: past_key_values.N.x inputs and their present.N.x outputs. */
export function decoderIoFromGraph(graph: Graph): DecoderIo {
  const outputs = new Set(graph.outputs.map((o) => o.name));
  const kv: KvBinding[] = [];
  for (const input of graph.inputs) {
    const m = PAST.exec(input.name);
    if (!m) continue;
    const present = `present.${m[1]}.${m[2]}`;
    const shape = input.type?.shape;
    if (!outputs.has(present)) throw new LlmccError(`KV input '${input.name}' has no matching output '${present}'`);
    if (!input.type || !shape || shape.length !== 4 || typeof shape[1] !== 'number' || typeof shape[3] !== 'number') {
      throw new LlmccError(`KV input '${input.name}' must be declared [batch, kv_heads, past_sequence, head_dim] with static heads and head dim`);
    }
    kv.push({ past: input.name, present, dtype: input.type.dtype, kvHeads: shape[1], headDim: shape[3] });
  }
  for (const name of ['input_ids', 'attention_mask']) {
    if (!graph.inputs.some((i) => i.name === name)) throw new LlmccError(`decoder graph has no '${name}' input`);
  }
  if (!outputs.has('logits')) throw new LlmccError("decoder graph has no 'logits' output");
  return { kv, positionIds: graph.inputs.some((i) => i.name === 'position_ids') };
}

/** Index of the largest value in row `row` of width `width` (the first one on ties). */
export function argmaxRow(values: ArrayLike<number>, row: number, width: number): number {
  let best = 0;
  let bestValue = -Infinity;
  for (let i = 0; i < width; i++) {
    const v = values[row * width + i];
    if (v > bestValue) { bestValue = v; best = i; }
  }
  return best;
}

export interface GreedyOptions {
  maxNewTokens: number;
  /** Generation stops after emitting one of these. */
  stopIds?: number[];
  /** Called with each new token id as it is chosen. */
  onToken?: (id: number, step: number) => void;
}

/** The feeds of one step (batch 1): `tokens` at positions past .. past+len-1. */
export function stepFeeds(io: DecoderIo, tokens: number[], past: number, cache: Map<string, Tensor> | undefined): Map<string, Tensor> {
  const total = past + tokens.length;
  const feeds = new Map<string, Tensor>();
  feeds.set('input_ids', Tensor.fromNumbers('i64', [1, tokens.length], tokens));
  feeds.set('attention_mask', Tensor.fromNumbers('i64', [1, total], new Array<number>(total).fill(1)));
  if (io.positionIds) feeds.set('position_ids', Tensor.fromNumbers('i64', [1, tokens.length], tokens.map((_, i) => past + i)));
  for (const b of io.kv) {
    feeds.set(b.past, cache?.get(b.present) ?? Tensor.zeros(b.dtype, [1, b.kvHeads, 0, b.headDim]));
  }
  return feeds;
}

/**
 * Greedy decoding for one prompt (batch 1): prefill with the whole prompt, then one token
 * per step, each step feeding the previous step's present.* back as past_key_values.*.
 * Returns the new token ids (not the prompt).
 */
export async function greedyGenerate(run: RunFn, io: DecoderIo, promptIds: number[], options: GreedyOptions): Promise<number[]> {
  if (promptIds.length === 0) throw new LlmccError('the prompt must hold at least one token');
  const generated: number[] = [];
  let cache: Map<string, Tensor> | undefined;
  let tokens = promptIds;
  let past = 0;
  for (let step = 0; step < options.maxNewTokens; step++) {
    const outputs = await run(stepFeeds(io, tokens, past, cache));
    const logits = outputs.get('logits');
    if (!logits || logits.rank !== 3) throw new LlmccError('the model returned no [batch, sequence, vocab] logits');
    const [, seq, vocab] = logits.shape;
    const next = argmaxRow(logits.numbers(), seq - 1, vocab);
    generated.push(next);
    options.onToken?.(next, step);
    if (options.stopIds?.includes(next)) break;
    past += tokens.length;
    tokens = [next];
    cache = outputs;
  }
  return generated;
}
