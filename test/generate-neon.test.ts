import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TINY } from '../examples/llama-gen/config.js';
import { generateDecoder } from '../examples/llama-gen/decoder.js';
import { loadModel } from '../src/onnx/load.js';
import {
  type DecoderEngine, generate, generateTokens, hintsFromGenaiConfig, signatureOfGraph,
} from '../src/runtime/generate.js';
import { openPipeline } from '../src/runtime/pipeline.js';
import { neonDecoderEngine, type NeonBuildStats, type NeonDecoderEngine } from '../targets/neon/engine.js';
import type { NeonMode } from '../targets/neon/toolchain.js';
import { llmcc } from './helpers/cli.js';
import { MODELS_DIR } from './helpers/paths.js';
import { SHARED_DECODERS, hintsFor, ortRun, ortTokens as ortTokensOf } from './helpers/ort-decoder.js';

// Greedy ids on the neon target (one C build of every step shape, one long-lived process under
// qemu or on the host) against onnxruntime-node's fp32 ids, through generate() itself.
const PROMPT = [1, 17, 42, 7];
const MAX_TOKENS = 32;

async function ortTokens(modelPath: string, maxTokens = MAX_TOKENS): Promise<number[]> {
  return ortTokensOf(modelPath, PROMPT, maxTokens);
}

async function neonEngine(modelPath: string, mode: NeonMode): Promise<{ engine: NeonDecoderEngine; stats: () => NeonBuildStats }> {
  let stats: NeonBuildStats | undefined;
  const engine = neonDecoderEngine(await loadModel(modelPath), { mode, onBuilt: (s) => { stats = s; } });
  return { engine, stats: () => stats! };
}

const pidAlive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

const shared = (name: string): string => path.join(MODELS_DIR, name, 'model.onnx');
const GQA = shared('genai-webgpu-tiny-gqa-fp16');

let tmp: string;
let tinyDecoder: string;
beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'llmcc-generate-neon-'));
  // The contrib-op form (fused attention and norms): a fraction of the primitive form's launches to build.
  await generateDecoder({ config: TINY, out: tmp, ops: 'contrib', dtype: 'f32', externalData: false, seed: 0, testData: false });
  tinyDecoder = path.join(tmp, 'model.onnx');
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe('greedy generate on neon (qemu-aarch64 -cpu max): same ids as onnxruntime-node', () => {
  const cases = [
    ...SHARED_DECODERS.map((name) => ({ name, model: () => shared(name) })),
    { name: 'llama-gen tiny contrib', model: () => tinyDecoder },
  ];
  for (const { name, model } of cases) {
    it(name, async () => {
      const expected = await ortTokens(model());
      expect(expected.length).toBeGreaterThanOrEqual(12); // the static cache holds 16 positions
      const { engine, stats } = await neonEngine(model(), 'qemu-max');
      const result = await generate(engine, { promptIds: PROMPT, maxTokens: MAX_TOKENS, hints: hintsFor(model()) });
      expect(result.tokens).toEqual(expected);
      expect(result.cacheResident).toBe(true);
      const built = stats();
      expect(built.steps).toBe(expected.length);
      // A static cache's decode steps share one shape: prefill + one decode program.
      expect(built.programs).toBe(name === 'genai-static-scatter-bias-decoder' ? 2 : built.steps);
      // One weight image for all step programs, not one per program.
      expect(built.weightBytes).toBeLessThan(2 * built.unsharedWeightBytes / built.programs);
      expect(engine.serverPid).toBeUndefined(); // closed when generation ended
    }, 300_000);
  }
});

describe('generate on neon: other CPUs, cache through the pipe, shutdown', () => {
  it('cortex-a53 (armv8-a build), cache through the pipe: same ids', async () => {
    const expected = await ortTokens(GQA);
    const { engine } = await neonEngine(GQA, 'qemu-a53');
    // Without carry, every step sends the past cache in and reads the present cache back.
    const throughPipe: DecoderEngine = {
      inputs: engine.inputs, outputs: engine.outputs,
      prepare: (plan) => engine.prepare(plan), close: () => engine.close(), run: (feeds) => engine.run(feeds),
    };
    const result = await generate(throughPipe, { promptIds: PROMPT, maxTokens: MAX_TOKENS });
    expect(result.cacheResident).toBe(false);
    expect(result.tokens).toEqual(expected);
  }, 300_000);

  it('stopping the iterator early stops the server and removes the build', async () => {
    const { engine } = await neonEngine(GQA, 'qemu-max');
    let pid = 0;
    let dir = '';
    const seen: number[] = [];
    for await (const id of generateTokens(engine, { promptIds: PROMPT, maxTokens: 4 })) {
      pid = engine.serverPid!;
      dir = engine.buildDir!;
      seen.push(id);
      if (seen.length === 2) break;
    }
    expect(seen).toEqual((await ortTokens(GQA, 2)));
    expect(pidAlive(pid)).toBe(false);
    expect(fs.existsSync(dir)).toBe(false);
    expect(engine.serverPid).toBeUndefined();
  }, 300_000);

  it('a server that dies fails the step naming its program', async () => {
    const { engine } = await neonEngine(GQA, 'qemu-max');
    let dir = '';
    const run = generate(engine, {
      promptIds: PROMPT,
      maxTokens: 4,
      onToken: () => {
        dir = engine.buildDir!;
        process.kill(engine.serverPid!, 'SIGKILL');
      },
    });
    await expect(run).rejects.toThrow(/step server \(qemu-max\) died \(signal SIGKILL\) while running program 'step_p4_t1' \(past 4, 1 token/);
    expect(fs.existsSync(dir)).toBe(false);
  }, 300_000);

  it('run() before prepare() says what is missing', async () => {
    const { engine } = await neonEngine(GQA, 'qemu-max');
    await expect(engine.run(new Map())).rejects.toThrow(/no step programs: prepare\(\)/);
  });
});

describe('decoder pipeline with every stage on neon', () => {
  it('genai-pipeline-model-tiny (embeddings, transformer, lm head): same ids as onnxruntime-node', async () => {
    const dir = path.join(MODELS_DIR, 'genai-pipeline-model-tiny');
    const config: unknown = JSON.parse(fs.readFileSync(path.join(dir, 'genai_config.json'), 'utf8'));
    const prompt = [1, 5, 9, 3, 12];
    const maxTokens = 16;
    const io = (stageEngine: (file: string) => Promise<DecoderEngine>): Parameters<typeof openPipeline>[1] =>
      ({ where: dir, exists: (file) => fs.existsSync(path.join(dir, file)), stageEngine });
    const sessions: ort.InferenceSession[] = [];
    const ortPipeline = await openPipeline(config, io(async (file) => {
      const session = await ort.InferenceSession.create(path.join(dir, file), { executionProviders: ['cpu'], logSeverityLevel: 3 });
      sessions.push(session);
      return { ...signatureOfGraph((await loadModel(path.join(dir, file))).graph), run: ortRun(session) };
    }));
    const hints = hintsFromGenaiConfig(config);
    const expected = (await generate(ortPipeline, { promptIds: prompt, maxTokens, hints })).tokens;
    await Promise.all(sessions.map((s) => s.release()));
    const stages: NeonDecoderEngine[] = [];
    const neonPipeline = await openPipeline(config, io(async (file) => {
      const stage = neonDecoderEngine(await loadModel(path.join(dir, file)));
      stages.push(stage);
      return stage;
    }));
    // The composite forwards prepare/close: each stage builds its step programs from the plan.
    const result = await generate(neonPipeline, { promptIds: prompt, maxTokens, hints });
    expect(result.tokens).toEqual(expected);
    expect(result.cacheResident).toBe(true);
    expect(stages.map((s) => s.lastBuild?.programs)).toEqual([2, maxTokens, 2]);
    expect(stages.every((s) => s.serverPid === undefined)).toBe(true);
  }, 300_000);
});

describe('llmcc generate --target neon', () => {
  it('--host --json prints the same ids as onnxruntime-node', async () => {
    const gpt2 = shared('genai-tiny-random-gpt2-fp32');
    const expected = await ortTokens(gpt2, 4);
    const result = llmcc('generate', gpt2, '--target', 'neon', '--host', '--prompt-ids', PROMPT.join(','), '--max-tokens', '4', '--json');
    expect(result.code).toBe(0);
    expect(result.stderr).toMatch(/^neon: 4 step program\(s\) for 4 step\(s\)/);
    const last = JSON.parse(result.stdout.trim().split('\n').at(-1)!) as { tokens: number[]; cache_resident: boolean };
    expect(last.tokens).toEqual(expected);
    expect(last.cache_resident).toBe(true);
    const bad = llmcc('generate', gpt2, '--target', 'wasm', '--cpu', 'cortex-a53', '--prompt-ids', '1');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--host and --cpu apply to --target neon/);
  }, 300_000);
});
