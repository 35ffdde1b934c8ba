/**
 * Token generation for decoder graphs with a key/value cache (batch 1): discovers how the
 * graph's cache inputs and outputs pair up, runs prefill then one token per step feeding each
 * step's present cache back as the next step's past, and samples (greedy, temperature, top-k,
 * top-p with a seeded RNG). Browser-safe: no `node:` imports; the engine is any `run` callback
 * (an llmcc target session, a wasm bundle session, or onnxruntime in the tests).
 *
 * Engines that can `carry` (wasm sessions) keep the cache on the target: each step's present
 * outputs stay in the wasm memory as the next step's past inputs, and only the ids, positions
 * and logits cross to JS. Other engines (ref, onnxruntime) get the cache back as JS tensors.
 */
import type { DType } from '../../ir/dtype.js';
import { LlmccError } from '../../ir/errors.js';
import type { Dim, Graph } from '../../ir/graph.js';
import { Tensor } from '../../ir/tensor.js';
import { seededRandom } from '../../ir/random.js';
import type { CarriedPair } from './session.js';

/** A graph input or output as the generator needs it. */
export interface ValueSignature {
  name: string;
  dtype: DType;
  shape?: Dim[];
}

/** What `generate` runs: named feeds in, named outputs out. */
export interface DecoderEngine {
  inputs: ValueSignature[];
  outputs: ValueSignature[];
  run(feeds: Map<string, Tensor>): Promise<Map<string, Tensor>>;
  /** Keeps outputs on the target as next step's inputs (RuntimeSession.carry); absent: the cache goes through JS. */
  carry?(pairs: CarriedPair[]): { run(feeds: Map<string, Tensor>): Promise<Map<string, Tensor>> };
  /** Told the step plan before the first step: engines specialised on concrete shapes (neon) build their step programs here. */
  prepare?(plan: DecodePlan): Promise<void>;
  /** Called once when generation ends, however it ends (done, an error, or the consumer stopped iterating). */
  close?(): Promise<void>;
}

/** What `generate` will run: prefill of `promptLength` tokens, then up to `maxTokens - 1` one-token steps. */
export interface DecodePlan {
  bindings: DecoderBindings;
  promptLength: number;
  maxTokens: number;
}

/** One cache tensor: the output that becomes this input on the next step. */
export interface CacheBinding {
  past: string;
  present: string;
  dtype: DType;
  /** Zero-length (or full, for static caches) shape fed on the first step. */
  initialShape: number[];
  /** Axis that grows by each step's tokens (dynamic caches); absent for static ones. */
  lengthAxis?: number;
}

export interface DecoderBindings {
  inputIds: ValueSignature;
  logits: string;
  cache: CacheBinding[];
  /** 'dynamic': present grows by the step's tokens; 'static': fixed [.., capacity, ..] buffers written by index. */
  cacheKind: 'dynamic' | 'static';
  /** Most tokens the cache holds (static caches); Infinity for dynamic ones. */
  capacity: number;
  /** Inputs computed from the position: name → kind. */
  positional: { name: string; dtype: DType; kind: PositionalKind; rank: number }[];
}

type PositionalKind =
  | 'attention_mask'      // ones over past + current tokens
  | 'position_ids'        // past .. past+len-1
  | 'write_indices'       // [past]: where TensorScatter writes this step's rows
  | 'nonpad_kv_seqlen'    // [past+len]: valid cache rows after this step
  | 'seqlens_k'           // [past+len-1] (GroupQueryAttention)
  | 'total_sequence_length'; // past+len (GroupQueryAttention)

/** Optional knowledge from the model's genai_config.json. */
export interface DecoderHints {
  /** Static cache length (genai_config context_length / search.max_length). */
  contextLength?: number;
  /** Explicit past → present names (genai_config past_key_names / present_key_names). */
  pairs?: [string, string][];
}

const POSITIONAL: Record<string, PositionalKind> = {
  attention_mask: 'attention_mask',
  position_ids: 'position_ids',
  write_indices: 'write_indices',
  nonpad_kv_seqlen: 'nonpad_kv_seqlen',
  seqlens_k: 'seqlens_k',
  total_sequence_length: 'total_sequence_length',
};

/** Past input name patterns and the present output each maps to. */
const CACHE_PATTERNS: [RegExp, (m: RegExpExecArray) => string][] = [
  [/^past_key_values\.(\d+)\.(key|value)$/, (m) => `present.${m[1]}.${m[2]}`],
  [/^past_key_values\.(\d+)$/, (m) => `present.${m[1]}`],
  [/^past_(\d+)$/, (m) => `present_${m[1]}`],
  [/^(key|value)_cache\.(\d+)$/, (m) => `updated_${m[1]}_cache.${m[2]}`],
  [/^past\.(\d+)\.(key|value)$/, (m) => `present.${m[1]}.${m[2]}`],
];

/** The engine signature of a graph (what `Backend.prepare` runs). */
export function signatureOfGraph(graph: Graph): { inputs: ValueSignature[]; outputs: ValueSignature[] } {
  const sig = (v: Graph['inputs'][number]): ValueSignature => {
    if (!v.type) throw new LlmccError(`graph value '${v.name}' has no declared type`);
    return { name: v.name, dtype: v.type.dtype, shape: v.type.shape ? [...v.type.shape] : undefined };
  };
  return { inputs: graph.inputs.map(sig), outputs: graph.outputs.map(sig) };
}

/** Reads the hints genai_config.json gives (pass the parsed JSON). */
export function hintsFromGenaiConfig(config: unknown): DecoderHints {
  const model = (config as { model?: Record<string, unknown> } | undefined)?.model;
  const search = (config as { search?: { max_length?: unknown } } | undefined)?.search;
  const decoder = model?.decoder as { inputs?: Record<string, string>; outputs?: Record<string, string>; num_hidden_layers?: number } | undefined;
  const hints: DecoderHints = {};
  const context = model?.context_length ?? search?.max_length;
  if (typeof context === 'number') hints.contextLength = context;
  const layers = decoder?.num_hidden_layers;
  const pairs: [string, string][] = [];
  const add = (pastTemplate?: string, presentTemplate?: string): void => {
    if (!pastTemplate || !presentTemplate || typeof layers !== 'number') return;
    for (let l = 0; l < layers; l++) pairs.push([pastTemplate.replace('%d', String(l)), presentTemplate.replace('%d', String(l))]);
  };
  add(decoder?.inputs?.past_key_names, decoder?.outputs?.present_key_names);
  add(decoder?.inputs?.past_value_names, decoder?.outputs?.present_value_names);
  add(decoder?.inputs?.past_names, decoder?.outputs?.present_names);
  if (pairs.length > 0) hints.pairs = pairs;
  return hints;
}

/**
 * Finds input_ids, logits, the cache pairs and the position-derived inputs of a decoder.
 * Every graph input must be accounted for: an unknown one is an error naming it.
 */
export function discoverBindings(inputs: ValueSignature[], outputs: ValueSignature[], hints: DecoderHints = {}): DecoderBindings {
  const outputByName = new Map(outputs.map((o) => [o.name, o]));
  const inputIds = inputs.find((i) => i.name === 'input_ids');
  if (!inputIds) throw new LlmccError("decoder graph has no 'input_ids' input");
  const batchDim = inputIds.shape?.[0];
  const logits = outputByName.has('logits') ? 'logits' : undefined;
  if (!logits) throw new LlmccError("decoder graph has no 'logits' output");

  const hinted = new Map(hints.pairs ?? []);
  const cache: CacheBinding[] = [];
  const positional: DecoderBindings['positional'] = [];
  let staticCount = 0;
  let capacity = Infinity;
  for (const input of inputs) {
    if (input === inputIds) continue;
    const kind = POSITIONAL[input.name];
    if (kind) {
      positional.push({ name: input.name, dtype: input.dtype, kind, rank: input.shape?.length ?? 1 });
      continue;
    }
    let present = hinted.get(input.name);
    if (!present) {
      for (const [pattern, to] of CACHE_PATTERNS) {
        const m = pattern.exec(input.name);
        if (m) { present = to(m); break; }
      }
    }
    if (!present) throw new LlmccError(`decoder input '${input.name}' is neither a cache input nor one generate() knows how to feed`);
    const out = outputByName.get(present);
    if (!out) throw new LlmccError(`cache input '${input.name}' has no matching output '${present}'`);
    if (!input.shape) throw new LlmccError(`cache input '${input.name}' must declare its rank`);
    // The batch dim (shared with input_ids) is 1; any other symbolic dim is the past length: 0.
    let symbolic = 0;
    let lengthAxis: number | undefined;
    const initialShape = input.shape.map((d, axis) => {
      if (typeof d === 'number') return d;
      if (d === batchDim || /batch/i.test(d)) return 1;
      symbolic++;
      lengthAxis = axis;
      return 0;
    });
    if (symbolic > 1) throw new LlmccError(`cache input '${input.name}' has more than one symbolic length dim`);
    if (symbolic === 0) {
      staticCount++;
      // [batch, capacity, hidden] or [batch, heads, capacity, head_dim].
      const seqAxis = initialShape.length === 4 ? 2 : 1;
      capacity = Math.min(capacity, hints.contextLength ?? initialShape[seqAxis]);
    }
    cache.push({ past: input.name, present, dtype: input.dtype, initialShape, ...(lengthAxis === undefined ? {} : { lengthAxis }) });
  }
  if (staticCount > 0 && staticCount !== cache.length) throw new LlmccError('decoder mixes static and growing cache inputs');
  const cacheKind = staticCount > 0 ? 'static' : 'dynamic';
  if (cacheKind === 'static' && !positional.some((p) => p.kind === 'write_indices')) {
    throw new LlmccError("static cache decoder has no 'write_indices' input: cannot tell it where to write");
  }
  return { inputIds, logits, cache, cacheKind, capacity, positional };
}

/**
 * The feeds of one step: `tokens` at positions past .. past+len-1 (batch 1). `cache`: the last
 * step's outputs (zeros on the first step), or 'carried' when the engine keeps the cache itself.
 */
export function stepFeeds(bindings: DecoderBindings, tokens: number[], past: number, cache: ReadonlyMap<string, Tensor> | undefined | 'carried'): Map<string, Tensor> {
  const total = past + tokens.length;
  const feeds = new Map<string, Tensor>();
  feeds.set(bindings.inputIds.name, Tensor.fromNumbers(bindings.inputIds.dtype, [1, tokens.length], tokens));
  for (const p of bindings.positional) {
    switch (p.kind) {
      case 'attention_mask':
        feeds.set(p.name, Tensor.fromNumbers(p.dtype, [1, total], new Array<number>(total).fill(1)));
        break;
      case 'position_ids':
        feeds.set(p.name, Tensor.fromNumbers(p.dtype, [1, tokens.length], tokens.map((_, i) => past + i)));
        break;
      case 'write_indices':
        feeds.set(p.name, Tensor.fromNumbers(p.dtype, [1], [past]));
        break;
      case 'nonpad_kv_seqlen':
        feeds.set(p.name, Tensor.fromNumbers(p.dtype, [1], [total]));
        break;
      case 'seqlens_k':
        feeds.set(p.name, Tensor.fromNumbers(p.dtype, [1], [total - 1]));
        break;
      case 'total_sequence_length':
        feeds.set(p.name, p.rank === 0 ? Tensor.fromNumbers(p.dtype, [], [total]) : Tensor.fromNumbers(p.dtype, [1], [total]));
        break;
    }
  }
  if (cache === 'carried') return feeds;
  for (const b of bindings.cache) feeds.set(b.past, cache?.get(b.present) ?? Tensor.zeros(b.dtype, b.initialShape));
  return feeds;
}

/** The pairs an engine carries for `tokens` positions at most (the cache's largest shape). */
export function carriedPairs(bindings: DecoderBindings, tokens: number): CarriedPair[] {
  return bindings.cache.map((b) => {
    const capacityShape = [...b.initialShape];
    if (b.lengthAxis !== undefined) capacityShape[b.lengthAxis] = tokens;
    return { input: b.past, output: b.present, initialShape: b.initialShape, capacityShape };
  });
}

export { seededRandom };

export interface SamplingOptions {
  /** 0 or absent: greedy (argmax, first index on ties). */
  temperature?: number;
  /** Keep only the k most likely tokens (0/absent: all). */
  topK?: number;
  /** Keep the smallest set of most likely tokens whose probability reaches p (1/absent: all). */
  topP?: number;
  seed?: number;
}

/** Picks the next token from one row of logits. */
export function sampleToken(row: ArrayLike<number>, options: SamplingOptions, random: () => number): number {
  const temperature = options.temperature ?? 0;
  if (temperature < 0 || !Number.isFinite(temperature)) throw new LlmccError(`temperature must be a finite number >= 0, got ${temperature}`);
  const topP = options.topP ?? 1;
  if (!(topP > 0 && topP <= 1)) throw new LlmccError(`top-p must be in (0, 1], got ${topP}`);
  const topK = options.topK ?? 0;
  if (!Number.isInteger(topK) || topK < 0) throw new LlmccError(`top-k must be a non-negative integer, got ${topK}`);
  if (temperature === 0 || topK === 1) return argmax(row);
  // Candidates by descending logit (index breaks ties), truncated by top-k.
  let order = Array.from({ length: row.length }, (_, i) => i).sort((a, b) => row[b] - row[a] || a - b);
  if (topK > 0) order = order.slice(0, topK);
  const max = row[order[0]];
  const weights = order.map((i) => Math.exp((row[i] - max) / temperature));
  const sum = weights.reduce((a, b) => a + b, 0);
  let keep = order.length;
  if (topP < 1) {
    let cumulative = 0;
    for (let i = 0; i < order.length; i++) {
      cumulative += weights[i] / sum;
      if (cumulative >= topP) { keep = i + 1; break; }
    }
  }
  const keptSum = weights.slice(0, keep).reduce((a, b) => a + b, 0);
  let r = random() * keptSum;
  for (let i = 0; i < keep; i++) {
    r -= weights[i];
    if (r < 0) return order[i];
  }
  return order[keep - 1];
}

function argmax(row: ArrayLike<number>): number {
  let best = 0;
  let bestValue = -Infinity;
  for (let i = 0; i < row.length; i++) {
    if (row[i] > bestValue) { bestValue = row[i]; best = i; }
  }
  return best;
}

export interface GenerateOptions extends SamplingOptions {
  promptIds: number[];
  maxTokens: number;
  /** Generation stops after emitting one of these (it is included in the result). */
  stopIds?: number[];
  onToken?: (id: number, step: number) => void;
  /** Told once, before the first step, whether the cache stays on the target. */
  onResident?: (resident: boolean) => void;
  hints?: DecoderHints;
  /** Pre-discovered bindings (else discovered from the engine's signature and hints). */
  bindings?: DecoderBindings;
}

export interface GenerateResult {
  tokens: number[];
  /** Milliseconds from the start to the first new token (prefill + sampling). */
  ttftMs: number;
  /** Decode throughput: tokens after the first over the time after the first (NaN for one token). */
  tokensPerS: number;
  totalMs: number;
  stopReason: 'stop_token' | 'max_tokens' | 'cache_full';
  /** The cache stayed on the target between steps (no per-token copy through JS). */
  cacheResident: boolean;
}

const now = (): number => (globalThis.performance ?? Date).now();

/** Yields each new token as it is chosen: prefill, then one decode step per token. */
export async function* generateTokens(engine: DecoderEngine, options: GenerateOptions): AsyncGenerator<number, GenerateResult['stopReason']> {
  const bindings = options.bindings ?? discoverBindings(engine.inputs, engine.outputs, options.hints);
  const prompt = options.promptIds;
  if (prompt.length === 0) throw new LlmccError('the prompt must hold at least one token');
  if (!Number.isInteger(options.maxTokens) || options.maxTokens < 0) throw new LlmccError(`max tokens must be a non-negative integer, got ${options.maxTokens}`);
  if (prompt.length > bindings.capacity) throw new LlmccError(`the prompt (${prompt.length} tokens) is longer than the static cache (${bindings.capacity})`);
  const random = seededRandom(options.seed ?? 0);
  try {
    await engine.prepare?.({ bindings, promptLength: prompt.length, maxTokens: options.maxTokens });
    const resident = carriedRunner(engine, bindings, Math.min(prompt.length + options.maxTokens, bindings.capacity));
    options.onResident?.(resident !== undefined);
    let cache: Map<string, Tensor> | undefined;
    let tokens = prompt;
    let past = 0;
    for (let step = 0; step < options.maxTokens; step++) {
      if (past + tokens.length > bindings.capacity) return 'cache_full';
      const outputs = resident
        ? await resident.run(stepFeeds(bindings, tokens, past, 'carried'))
        : await engine.run(stepFeeds(bindings, tokens, past, cache));
      const logits = outputs.get(bindings.logits);
      if (!logits || logits.rank !== 3 || logits.shape[0] !== 1) throw new LlmccError('the model returned no [1, sequence, vocab] logits');
      const [, seq, vocab] = logits.shape;
      const row = logits.numbers().subarray((seq - 1) * vocab, seq * vocab);
      const next = sampleToken(row, options, random);
      options.onToken?.(next, step);
      yield next;
      if (options.stopIds?.includes(next)) return 'stop_token';
      past += tokens.length;
      tokens = [next];
      cache = outputs;
    }
    return 'max_tokens';
  } finally {
    await engine.close?.();
  }
}

/** The engine's carried-cache runner, or undefined when it cannot keep this cache (JS round trip then). */
function carriedRunner(engine: DecoderEngine, bindings: DecoderBindings, tokens: number): { run(feeds: Map<string, Tensor>): Promise<Map<string, Tensor>> } | undefined {
  if (!engine.carry || bindings.cache.length === 0) return undefined;
  try {
    return engine.carry(carriedPairs(bindings, tokens));
  } catch (error) {
    if (error instanceof LlmccError) return undefined;
    throw error;
  }
}

/** Generates up to `maxTokens` new tokens for one prompt; returns them with timings. */
export async function generate(engine: DecoderEngine, options: GenerateOptions): Promise<GenerateResult> {
  let start = now();
  let first = NaN;
  const tokens: number[] = [];
  let cacheResident = false;
  const iterator = generateTokens(engine, {
    ...options,
    // Told after the engine's prepare (a neon build): timings start there.
    onResident: (resident) => { start = now(); cacheResident = resident; options.onResident?.(resident); },
  });
  let stopReason: GenerateResult['stopReason'] = 'max_tokens';
  for (;;) {
    const next = await iterator.next();
    if (next.done) { stopReason = next.value; break; }
    if (tokens.length === 0) first = now();
    tokens.push(next.value);
  }
  const end = now();
  const decodeTokens = tokens.length - 1;
  return {
    tokens,
    ttftMs: first - start,
    tokensPerS: decodeTokens > 0 ? decodeTokens / ((end - first) / 1000) : NaN,
    totalMs: end - start,
    stopReason,
    cacheResident,
  };
}
