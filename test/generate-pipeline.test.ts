import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LlmccError } from '../ir/errors.js';
import type { Tensor } from '../ir/tensor.js';
import { fromOrt, toOrt } from '../examples/llama-gen/ort.js';
import { compareTensors, defaultTolerance } from '../src/compare.js';
import { loadModel } from '../src/onnx/load.js';
import { type DecoderEngine, discoverBindings, generate, hintsFromGenaiConfig, signatureOfGraph } from '../src/runtime/generate.js';
import { type RuntimeSession, sessionFromCompiled } from '../src/runtime/index.js';
import { type PipelineEngine, openPipeline } from '../src/runtime/pipeline.js';
import { readTestDataSet } from '../src/testdata.js';
import { arenaBytes } from '../targets/wasm/arena.js';
import { compileWasm } from '../targets/wasm/compile.js';
import { getBackend } from '../targets/registry.js';
import { llmcc } from './helpers/cli.js';
import { type StepTraffic, expectOnlyCacheCrosses } from './helpers/cache-traffic.js';
import { MODELS_DIR, dataSets } from './helpers/paths.js';

const PIPELINE_DIR = path.join(MODELS_DIR, 'genai-pipeline-model-tiny');
const CONFIG_FILE = path.join(PIPELINE_DIR, 'genai_config.json');
const PROMPT = [1, 5, 9, 3, 12];
const MAX_TOKENS = 32;

const readConfig = (file: string): unknown => JSON.parse(fs.readFileSync(file, 'utf8'));
const hints = hintsFromGenaiConfig(readConfig(CONFIG_FILE));

type Runner = 'ref' | 'wasm' | 'ort';

/** The composite over one engine per stage file; `sessions` collects the wasm runtime sessions. */
async function openTiny(runner: Runner, configDir = PIPELINE_DIR, sessions: RuntimeSession[] = [], release: (() => Promise<void>)[] = []): Promise<{ engine: PipelineEngine; files: Map<string, string> }> {
  const files = new Map<string, string>();
  const engine = await openPipeline(readConfig(path.join(configDir, 'genai_config.json')), {
    where: path.join(configDir, 'genai_config.json'),
    exists: (file) => fs.existsSync(path.join(configDir, file)),
    stageEngine: async (file, stage) => {
      const modelPath = path.join(configDir, file);
      files.set(stage.name, modelPath);
      const model = await loadModel(modelPath);
      const signature = signatureOfGraph(model.graph);
      if (runner === 'wasm') {
        const session = await sessionFromCompiled(await compileWasm(model));
        sessions.push(session);
        return { ...signature, run: (feeds) => session.run(feeds), carry: (pairs) => session.carry(pairs) };
      }
      if (runner === 'ref') {
        const session = await getBackend('ref').prepare(model);
        return { ...signature, run: (feeds) => session.run(feeds) };
      }
      const session = await ort.InferenceSession.create(modelPath, { executionProviders: ['cpu'], logSeverityLevel: 3 });
      release.push(() => session.release());
      return {
        ...signature,
        run: async (feeds: Map<string, Tensor>) => {
          const input: Record<string, ort.Tensor> = {};
          for (const [name, t] of feeds) input[name] = toOrt(t);
          const result = await session.run(input);
          return new Map(session.outputNames.map((name) => [name, fromOrt(result[name])]));
        },
      };
    },
  });
  return { engine, files };
}

let expected: number[];
beforeAll(async () => {
  // The oracle: onnxruntime-node on the three fp32 graphs, chained by the same composite.
  const release: (() => Promise<void>)[] = [];
  try {
    const { engine } = await openTiny('ort', PIPELINE_DIR, [], release);
    expected = (await generate(engine, { promptIds: PROMPT, maxTokens: MAX_TOKENS, hints })).tokens;
  } finally {
    for (const r of release) await r();
  }
}, 60_000);

describe('the three-graph pipeline (embeds → transformer → lm_head) in generate()', () => {
  it('binds like one decoder: external inputs and outputs, cache pairs from genai_config', async () => {
    const { engine } = await openTiny('ref');
    expect(engine.stages.map((s) => s.stage.name)).toEqual(['embeddings', 'transformer', 'language_model_head']);
    expect(engine.inputs.map((i) => i.name)).toEqual(['input_ids', 'attention_mask', 'past_key_values.0.key', 'past_key_values.0.value']);
    expect(engine.outputs.map((o) => o.name).sort()).toEqual(['logits', 'present.0.key', 'present.0.value']);
    const bindings = discoverBindings(engine.inputs, engine.outputs, hints);
    expect(bindings.cache.map((c) => [c.past, c.present])).toEqual([['past_key_values.0.key', 'present.0.key'], ['past_key_values.0.value', 'present.0.value']]);
    expect(expected).toHaveLength(MAX_TOKENS);
  });

  for (const target of ['ref', 'wasm'] as const) {
    it(`greedy ${MAX_TOKENS} tokens on ${target}: the ids onnxruntime-node gives`, async () => {
      const { engine } = await openTiny(target);
      const result = await generate(engine, { promptIds: PROMPT, maxTokens: MAX_TOKENS, hints });
      expect(result.tokens).toEqual(expected);
      expect(result.cacheResident).toBe(target === 'wasm');
    }, 60_000);
  }

  for (const target of ['ref', 'wasm'] as const) {
    it(`each stage's test data set matches through the composite's stage runner on ${target}`, async () => {
      const { engine, files } = await openTiny(target);
      for (const { stage, engine: runner } of engine.stages) {
        const sets = dataSets(path.dirname(files.get(stage.name)!));
        expect(sets.length, stage.name).toBeGreaterThan(0);
        for (const set of sets) {
          const data = readTestDataSet(set);
          // Inputs and outputs by position in the stage graph's signature.
          const feeds = new Map(runner.inputs.map((input, k) => [input.name, data.inputs[k].tensor]));
          const outputs = await runner.run(feeds);
          data.outputs.forEach(({ tensor }, k) => {
            const name = runner.outputs[k].name;
            const actual = outputs.get(name);
            expect(actual, `${stage.name} ${name}`).toBeDefined();
            const result = compareTensors(actual!, tensor, defaultTolerance(tensor.dtype));
            expect(result.ok, `${stage.name} ${name}: ${result.reason ?? ''}`).toBe(true);
          });
        }
      }
    }, 60_000);
  }
});

describe('the pipeline keeps the KV cache resident on wasm', () => {
  /** generate() over wasm stage sessions, recording per step the bytes all three moved across JS ↔ wasm. */
  async function traced(resident: boolean): Promise<{ tokens: number[]; steps: StepTraffic[]; cacheResident: boolean }> {
    const sessions: RuntimeSession[] = [];
    const { engine } = await openTiny('wasm', PIPELINE_DIR, sessions);
    const bindings = discoverBindings(engine.inputs, engine.outputs, hints);
    const cacheBytes = (tokens: number): number => bindings.cache.reduce((sum, b) => {
      const shape = [...b.initialShape];
      if (b.lengthAxis !== undefined) shape[b.lengthAxis] = tokens;
      return sum + arenaBytes(b.dtype, shape.reduce((a, d) => a * d, 1));
    }, 0);
    const total = (): { written: number; read: number } => sessions.reduce(
      (t, s) => ({ written: t.written + s.boundaryBytes.written, read: t.read + s.boundaryBytes.read }), { written: 0, read: 0 });
    const steps: StepTraffic[] = [];
    let past = 0;
    const measure = async (run: () => Promise<Map<string, Tensor>>, fed: number): Promise<Map<string, Tensor>> => {
      const before = total();
      const outputs = await run();
      const after = total();
      steps.push({ written: after.written - before.written, read: after.read - before.read, cacheIn: cacheBytes(past), cacheOut: cacheBytes(past + fed) });
      past += fed;
      return outputs;
    };
    const fed = (feeds: Map<string, Tensor>): number => feeds.get('input_ids')!.shape[1];
    const wrapped: DecoderEngine = { inputs: engine.inputs, outputs: engine.outputs, run: (feeds) => measure(() => engine.run(feeds), fed(feeds)) };
    if (resident) {
      wrapped.carry = (pairs) => {
        const state = engine.carry!(pairs);
        return { run: (feeds) => measure(() => state.run(feeds), fed(feeds)) };
      };
    }
    const result = await generate(wrapped, { promptIds: PROMPT, maxTokens: MAX_TOKENS, hints, bindings });
    return { tokens: result.tokens, steps, cacheResident: result.cacheResident };
  }

  it('no cache bytes cross per token; per-step traffic does not grow with the cache', async () => {
    const copied = await traced(false);
    const resident = await traced(true);
    expect(copied.cacheResident).toBe(false);
    expect(resident.cacheResident).toBe(true);
    expect(resident.tokens).toEqual(expected);
    expect(copied.tokens).toEqual(expected);
    expect(resident.steps).toHaveLength(MAX_TOKENS);
    // In: ids, mask, hidden values and host results; grows less than the cache does.
    expectOnlyCacheCrosses(copied.steps, resident.steps);
    // Out per decode step: the embedding row, the hidden state and one row of logits, the same every step.
    const first = resident.steps[1];
    for (const r of resident.steps.slice(1)) expect(r.read).toBe(first.read);
    // The cache outgrows what crosses per step, so a copy of it would show.
    expect(resident.steps.at(-1)!.cacheIn).toBeGreaterThan(first.read + first.written);
  }, 60_000);
});

describe('bad pipeline configs and the CLI', () => {
  let tmp: string;
  beforeAll(() => { tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'llmcc-pipeline-')); });
  afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

  /** A copy of the tiny pipeline folder with its config changed by `edit`. */
  function variant(name: string, edit: (stages: Record<string, { filename: string; inputs: string[]; outputs: string[] }>) => void): string {
    const dir = path.join(tmp, name);
    fs.cpSync(PIPELINE_DIR, dir, { recursive: true });
    const config = readConfig(CONFIG_FILE) as { model: { decoder: { pipeline: Record<string, { filename: string; inputs: string[]; outputs: string[] }>[] } } };
    edit(config.model.decoder.pipeline[0]);
    fs.writeFileSync(path.join(dir, 'genai_config.json'), JSON.stringify(config));
    return dir;
  }

  const failure = async (dir: string): Promise<LlmccError> => {
    try {
      await openTiny('ref', dir);
    } catch (error) {
      if (error instanceof LlmccError) return error;
      throw error;
    }
    throw new Error(`${dir}: the pipeline opened`);
  };

  it('a missing stage file, a dangling input and a name the graph lacks are one-line errors naming the stage', async () => {
    const missing = await failure(variant('missing', (s) => { s.transformer.filename = 'decoder.onnx'; }));
    expect(missing.message).toMatch(/stage 'transformer'.*'decoder\.onnx' not found/);
    expect(missing.where).toMatch(/genai_config\.json$/);
    const dangling = await failure(variant('dangling', (s) => { s.language_model_head.inputs = ['norm_output']; }));
    expect(dangling.message).toMatch(/stage 'language_model_head' input 'norm_output' is produced by no earlier stage/);
    const unknown = await failure(variant('unknown', (s) => { s.language_model_head.inputs = ['hidden_states', 'attention_mask']; }));
    expect(unknown.message).toMatch(/stage 'language_model_head' lists input 'attention_mask', which its graph does not have/);
    const outside = await failure(variant('outside', (s) => { s.embeddings.filename = '../embeds.onnx'; }));
    expect(outside.message).toMatch(/stage 'embeddings'.*leaves the config's folder/);
    for (const e of [missing, dangling, unknown, outside]) expect(e.message).not.toMatch(/\n/);

    const cli = llmcc('generate', path.join(tmp, 'dangling', 'genai_config.json'), '--prompt-ids', '1');
    expect(cli.code).toBe(2);
    expect(cli.stderr.trim().split('\n')).toHaveLength(1);
    expect(cli.stderr).toMatch(/^llmcc: error: .*stage 'language_model_head' input 'norm_output'/);
  }, 60_000);

  it('llmcc generate <folder> --json prints the onnxruntime ids', () => {
    const args = ['--prompt-ids', PROMPT.join(','), '--max-tokens', String(MAX_TOKENS), '--json'];
    const wasm = llmcc('generate', PIPELINE_DIR, '--target', 'wasm', ...args);
    expect(wasm.code, wasm.stderr).toBe(0);
    const wasmJson = JSON.parse(wasm.stdout.trim().split('\n').at(-1)!) as { tokens: number[]; cache_resident: boolean };
    expect(wasmJson.tokens).toEqual(expected);
    expect(wasmJson.cache_resident).toBe(true);
  }, 120_000);
});
