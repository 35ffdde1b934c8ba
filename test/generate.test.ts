import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LlmccError } from '../ir/errors.js';
import { Tensor } from '../ir/tensor.js';
import { TINY } from '../examples/llama-gen/config.js';
import { generateDecoder } from '../examples/llama-gen/decoder.js';
import { loadModel } from '../src/onnx/load.js';
import {
  type DecoderEngine, discoverBindings, generate, generateTokens,
  sampleToken, seededRandom, signatureOfGraph,
} from '../src/runtime/generate.js';
import { UNSUPPORTED_PREFIX, compileWasm } from '../targets/wasm/compile.js';
import { sessionFromCompiled } from '../src/runtime/index.js';
import { getBackend } from '../targets/registry.js';
import { llmcc } from './helpers/cli.js';
import { MODELS_DIR } from './helpers/paths.js';
import { SHARED_DECODERS, hintsFor, ortTokens } from './helpers/ort-decoder.js';

const PROMPT = [1, 17, 42, 7];
const MAX_TOKENS = 32;

async function llmccTokens(modelPath: string, target: string): Promise<number[]> {
  const model = await loadModel(modelPath);
  const signature = signatureOfGraph(model.graph);
  let session;
  try {
    session = await getBackend(target).prepare(model);
  } catch (error) {
    // No skipping: a model that does not compile or load fails naming the missing op (or the refusal).
    if (error instanceof LlmccError) {
      const kind = error.message.startsWith(UNSUPPORTED_PREFIX) ? 'unsupported' : 'refused';
      expect.fail(`${modelPath} on ${target} (${kind}): ${error.message}${error.where ? `, ${error.where}` : ''}`);
    }
    throw error;
  }
  const engine: DecoderEngine = { ...signature, run: (feeds) => session.run(feeds) };
  if (target === 'wasm') {
    // The runtime session itself: generate() keeps the cache resident in the wasm memory.
    const runtime = await sessionFromCompiled(await compileWasm(model));
    engine.carry = (pairs) => runtime.carry(pairs);
    engine.run = (feeds) => runtime.run(feeds);
  }
  const result = await generate(engine, { promptIds: PROMPT, maxTokens: MAX_TOKENS, hints: hintsFor(modelPath) });
  expect(result.cacheResident).toBe(target === 'wasm');
  return result.tokens;
}

let tmp: string;
const generated = new Map<string, string>();
beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'llmcc-generate-'));
  for (const ops of ['primitive', 'contrib'] as const) {
    const out = path.join(tmp, ops);
    await generateDecoder({ config: TINY, out, ops, dtype: 'f32', externalData: false, seed: 0, testData: false });
    generated.set(ops, path.join(out, 'model.onnx'));
  }
  // The benchmark's ORT graph: projections as MatMulNBits 4-bit (what llmcc imports as pre-quantized).
  const nbits = path.join(tmp, 'nbits4');
  await generateDecoder({ config: TINY, out: nbits, ops: 'primitive', dtype: 'f32', externalData: true, seed: 0, testData: false, matmulNBits: { bits: 4, blockSize: 32 } });
  generated.set('nbits4', path.join(nbits, 'model.onnx'));
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe('greedy generate: same ids as onnxruntime-node on ref and wasm', () => {
  const cases = [
    ...SHARED_DECODERS.map((name) => ({ name, model: () => path.join(MODELS_DIR, name, 'model.onnx') })),
    ...(['primitive', 'contrib', 'nbits4'] as const).map((ops) => ({ name: `llama-gen tiny ${ops}`, model: () => generated.get(ops)! })),
  ];
  for (const { name, model } of cases) {
    it(name, async () => {
      const expected = await ortTokens(model(), PROMPT, MAX_TOKENS);
      // Static caches hold context_length tokens: prompt + new tokens - 1 fed positions.
      expect(expected.length).toBeGreaterThanOrEqual(12);
      expect(await llmccTokens(model(), 'ref')).toEqual(expected);
      expect(await llmccTokens(model(), 'wasm')).toEqual(expected);
    }, 300_000);
  }
});

describe('bindings and sampling', () => {
  it('discovers the cache pairs and fed inputs of each layout', async () => {
    const gpt2 = await loadModel(path.join(MODELS_DIR, 'genai-tiny-random-gpt2-fp32', 'model.onnx'));
    const g = signatureOfGraph(gpt2.graph);
    const b = discoverBindings(g.inputs, g.outputs);
    expect(b.cacheKind).toBe('dynamic');
    expect(b.cache.map((c) => [c.past, c.present])).toContainEqual(['past_0', 'present_0']);
    expect(b.cache[0].initialShape).toEqual([2, 1, 4, 0, 8]);
    const scatterPath = path.join(MODELS_DIR, 'genai-static-scatter-bias-decoder', 'model.onnx');
    const scatter = signatureOfGraph((await loadModel(scatterPath)).graph);
    const s = discoverBindings(scatter.inputs, scatter.outputs, hintsFor(scatterPath));
    expect(s.cacheKind).toBe('static');
    expect(s.capacity).toBe(16);
    expect(s.positional.map((p) => p.kind).sort()).toEqual(['nonpad_kv_seqlen', 'position_ids', 'write_indices']);
    expect(() => discoverBindings([...g.inputs, { name: 'mystery', dtype: 'f32', shape: [1] }], g.outputs)).toThrow(/mystery/);
  });

  it('samples reproducibly by seed; top-k 1 and temperature 0 are greedy; top-p keeps the head', () => {
    const row = [0.1, 2.0, 1.9, -1, 0.5];
    expect(sampleToken(row, {}, seededRandom(1))).toBe(1);
    expect(sampleToken(row, { temperature: 1, topK: 1 }, seededRandom(1))).toBe(1);
    const draw = (seed: number): number[] => {
      const random = seededRandom(seed);
      return Array.from({ length: 50 }, () => sampleToken(row, { temperature: 1.5 }, random));
    };
    expect(draw(7)).toEqual(draw(7));
    expect(new Set(draw(7)).size).toBeGreaterThan(2);
    const random = seededRandom(3);
    const topP = Array.from({ length: 100 }, () => sampleToken(row, { temperature: 1, topP: 0.5 }, random));
    expect(new Set(topP)).toEqual(new Set([1, 2].filter((i) => topP.includes(i))));
    expect(topP.every((i) => i === 1 || i === 2)).toBe(true);
    expect(() => sampleToken(row, { topP: 0 }, random)).toThrow(LlmccError);
  });

  it('streams through onToken and the async iterator, and stops at a stop token', async () => {
    const vocab = 8;
    // A fake decoder: the next token is (last token + 1) mod vocab; cache grows by the fed tokens.
    const engine: DecoderEngine = {
      inputs: [
        { name: 'input_ids', dtype: 'i64', shape: ['batch', 'seq'] },
        { name: 'attention_mask', dtype: 'i64', shape: ['batch', 'total'] },
        { name: 'past_key_values.0.key', dtype: 'f32', shape: ['batch', 1, 'past', 2] },
      ],
      outputs: [{ name: 'logits', dtype: 'f32', shape: ['batch', 'seq', vocab] }, { name: 'present.0.key', dtype: 'f32', shape: ['batch', 1, 'total', 2] }],
      run: async (feeds) => {
        const ids = feeds.get('input_ids')!;
        const past = feeds.get('past_key_values.0.key')!;
        const mask = feeds.get('attention_mask')!;
        expect(mask.shape[1]).toBe(past.shape[2] + ids.shape[1]);
        const last = ids.numbers()[ids.size - 1];
        const logits = new Array<number>(ids.shape[1] * vocab).fill(0);
        logits[(ids.shape[1] - 1) * vocab + ((last + 1) % vocab)] = 1;
        return new Map([
          ['logits', Tensor.fromNumbers('f32', [1, ids.shape[1], vocab], logits)],
          ['present.0.key', Tensor.zeros('f32', [1, 1, mask.shape[1], 2])],
        ]);
      },
    };
    const seen: number[] = [];
    const result = await generate(engine, { promptIds: [3], maxTokens: 10, stopIds: [6], onToken: (id) => seen.push(id) });
    expect(result.tokens).toEqual([4, 5, 6]);
    expect(result.stopReason).toBe('stop_token');
    expect(seen).toEqual([4, 5, 6]);
    const streamed: number[] = [];
    for await (const id of generateTokens(engine, { promptIds: [0, 1], maxTokens: 4 })) streamed.push(id);
    expect(streamed).toEqual([2, 3, 4, 5]);
  });
});

describe('llmcc generate CLI', () => {
  const gpt2 = path.join(MODELS_DIR, 'genai-tiny-random-gpt2-fp32', 'model.onnx');
  it('--json prints the new ids, tokens/s and time to first token on its last line', async () => {
    const expected = (await ortTokens(gpt2, PROMPT, MAX_TOKENS)).slice(0, 8);
    for (const target of ['ref', 'wasm']) {
      const result = llmcc('generate', gpt2, '--target', target, '--prompt-ids', PROMPT.join(','), '--max-tokens', '8', '--json');
      expect(result.stderr).toBe('');
      expect(result.code).toBe(0);
      const last = JSON.parse(result.stdout.trim().split('\n').at(-1)!) as { tokens: number[]; tokens_per_s: number; ttft_ms: number; cache_resident: boolean };
      expect(last.tokens).toEqual(expected);
      expect(last.cache_resident).toBe(target === 'wasm');
      expect(last.tokens_per_s).toBeGreaterThan(0);
      expect(last.ttft_ms).toBeGreaterThan(0);
    }
  });

  it('plain output lists ids and timings; stop tokens and bad flags', () => {
    const ok = llmcc('generate', gpt2, '--prompt-ids', '1,17,42,7', '--max-tokens', '4', '--stop', '9');
    expect(ok.code).toBe(0);
    expect(ok.stdout).toMatch(/generated 1 token\(s\) on ref \(stop_token\): 9/);
    expect(ok.stdout).toMatch(/time to first token/);
    const bad = llmcc('generate', gpt2, '--prompt-ids', '1,x');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/^llmcc: error: --prompt-ids/);
  });
});
