import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LlmccError } from '../ir/errors.js';
import { Tensor } from '../ir/tensor.js';
import { arenaBytes } from '../targets/wasm/arena.js';
import { compileWasm } from '../targets/wasm/compile.js';
import { TINY } from '../examples/llama-gen/config.js';
import { generateDecoder } from '../examples/llama-gen/decoder.js';
import { loadModel } from '../src/onnx/load.js';
import { type DecoderEngine, type DecoderHints, discoverBindings, generate, hintsFromGenaiConfig, signatureOfGraph } from '../src/runtime/generate.js';
import { type RuntimeSession, sessionFromCompiled } from '../src/runtime/index.js';
import { type StepTraffic, expectOnlyCacheCrosses } from './helpers/cache-traffic.js';
import { MODELS_DIR } from './helpers/paths.js';

const PROMPT = [1, 17, 42, 7];
const MAX_TOKENS = 8;

/**
 * generate() on a wasm session, recording per step the bytes that crossed between JS and the
 * wasm memory, and the bytes of the cache tensors that step read (past) and wrote (present).
 */
async function traced(session: RuntimeSession, modelPath: string, resident: boolean): Promise<{ tokens: number[]; steps: StepTraffic[]; cacheResident: boolean; vocab: number }> {
  const model = await loadModel(modelPath);
  const signature = signatureOfGraph(model.graph);
  const file = path.join(path.dirname(modelPath), 'genai_config.json');
  const hints: DecoderHints = fs.existsSync(file) ? hintsFromGenaiConfig(JSON.parse(fs.readFileSync(file, 'utf8'))) : {};
  const bindings = discoverBindings(signature.inputs, signature.outputs, hints);
  const steps: StepTraffic[] = [];
  // Cache sizes from the shapes the model declares: past of `past` tokens, present of `past + fed`.
  let past = 0;
  const cacheBytes = (tokens: number): number => bindings.cache.reduce((sum, b) => {
    const shape = [...b.initialShape];
    if (b.lengthAxis !== undefined) shape[b.lengthAxis] = tokens;
    return sum + arenaBytes(b.dtype, shape.reduce((a, d) => a * d, 1));
  }, 0);
  const measure = async (run: () => Promise<Map<string, Tensor>>, fed: number): Promise<Map<string, Tensor>> => {
    const before = { ...session.boundaryBytes };
    const outputs = await run();
    steps.push({
      written: session.boundaryBytes.written - before.written,
      read: session.boundaryBytes.read - before.read,
      cacheIn: cacheBytes(past),
      cacheOut: cacheBytes(past + fed),
    });
    past += fed;
    return outputs;
  };
  const engine: DecoderEngine = {
    ...signature,
    run: (feeds) => measure(() => session.run(feeds), feeds.get('input_ids')!.shape[1]),
  };
  if (resident) {
    engine.carry = (pairs) => {
      const state = session.carry(pairs);
      return { run: (feeds) => measure(() => state.run(feeds), feeds.get('input_ids')!.shape[1]) };
    };
  }
  const result = await generate(engine, { promptIds: PROMPT, maxTokens: MAX_TOKENS, hints, bindings });
  const vocab = signature.outputs.find((o) => o.name === 'logits')?.shape?.at(-1);
  if (typeof vocab !== 'number') throw new Error(`${modelPath}: logits have no fixed vocabulary size`);
  return { tokens: result.tokens, steps, cacheResident: result.cacheResident, vocab };
}

let tmp: string;
let tinyModel: string;
beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'llmcc-resident-'));
  await generateDecoder({ config: TINY, out: tmp, ops: 'primitive', dtype: 'f32', externalData: false, seed: 1, testData: false });
  tinyModel = path.join(tmp, 'model.onnx');
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe('wasm keeps the KV cache resident between decode steps', () => {
  const cases = [
    { name: 'llama-gen tiny (growing cache, Concat)', model: () => tinyModel, static: false },
    { name: 'gpt2 stacked past (com.microsoft Attention)', model: () => path.join(MODELS_DIR, 'genai-tiny-random-gpt2-fp32', 'model.onnx'), static: false },
    { name: 'static TensorScatter cache (written in place)', model: () => path.join(MODELS_DIR, 'genai-static-scatter-bias-decoder', 'model.onnx'), static: true },
  ];
  for (const c of cases) {
    it(c.name, async () => {
      const session = await sessionFromCompiled(await compileWasm(await loadModel(c.model())));
      const copied = await traced(session, c.model(), false);
      const resident = await traced(session, c.model(), true);
      expect(copied.cacheResident).toBe(false);
      expect(resident.cacheResident).toBe(true);
      expect(resident.tokens).toEqual(copied.tokens);
      expect(resident.steps.length).toBe(copied.steps.length);
      // In: ids, positions, mask and host results; it does not grow with the cache.
      expectOnlyCacheCrosses(copied.steps, resident.steps);
      // Out of the memory per decode step: the one row of logits, nothing else.
      for (const r of resident.steps.slice(1)) expect(r.read).toBe(arenaBytes('f32', resident.vocab));
    }, 120_000);
  }

  it('refuses feeding a carried input, and a replaced state', async () => {
    const session = await sessionFromCompiled(await compileWasm(await loadModel(tinyModel)));
    const signature = session.signature;
    const bindings = discoverBindings(signature.inputs, signature.outputs);
    const pairs = bindings.cache.map((b) => ({ input: b.past, output: b.present, initialShape: b.initialShape, capacityShape: b.initialShape.map((d, i) => (i === b.lengthAxis ? 2 : d)) }));
    const first = session.carry(pairs);
    session.carry(pairs);
    await expect(first.run(new Map())).rejects.toThrow(/replaced/);
    const state = session.carry(pairs);
    const ids = (n: number): Map<string, Tensor> => new Map([
      ['input_ids', Tensor.fromNumbers('i64', [1, n], new Array<number>(n).fill(3))],
      ['position_ids', Tensor.fromNumbers('i64', [1, n], Array.from({ length: n }, (_, i) => i))],
      ['attention_mask', Tensor.fromNumbers('i64', [1, n], new Array<number>(n).fill(1))],
    ]);
    const withPast = ids(1);
    withPast.set(pairs[0].input, Tensor.zeros('f32', pairs[0].initialShape));
    await expect(state.run(withPast)).rejects.toThrow(/carried between runs/);
    // Capacity of 2 tokens: a 3-token prompt does not fit the reserved buffers.
    await expect(state.run(ids(3))).rejects.toThrow(LlmccError);
    await expect(state.run(ids(3))).rejects.toThrow(/reserved/);
  });
});
