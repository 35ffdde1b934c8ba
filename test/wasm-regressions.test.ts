/**
 * Wasm crashes found by the fuzzer (tmp/hc findings), kept as tiny replay fixtures in
 * test/fixtures/wasm-regressions/. Each mutated node is one the wasm kernels cannot handle:
 * the compiler must refuse it in `check` (UNSUPPORTED) instead of crashing in `build` or
 * trapping at run time, and the replay (reference + every target) must not be a finding.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { replayFinding } from '../src/fuzz/harness.js';
import { loadModel } from '../src/onnx/load.js';
import { UNSUPPORTED_PREFIX, compileWasm } from '../targets/wasm/compile.js';
import { REPO_ROOT, SHARED } from './helpers/paths.js';

const FIXTURES = path.join(REPO_ROOT, 'test', 'fixtures', 'wasm-regressions');

/** Fixture → the refusal reason the wasm compiler must give for its mutated node. */
const REFUSALS: Record<string, RegExp> = {
  // Transpose / Tile / RotaryEmbedding with their only output dropped crashed in build.
  'conformance_onnx-node_test_transpose_all_permutations_0-21-1539': /Transpose.*first output is omitted/,
  'conformance_onnx-node_test_tile-22-9036': /Tile.*first output is omitted/,
  'conformance_onnx-node_test_rotary_embedding-22-7926': /RotaryEmbedding.*first output is omitted/,
  // ReduceSum with an extra input: the runtime passed it as a buffer, shifting the dims → OOB trap.
  'conformance_onnx-node_test_softmax_axis_0_expanded-21-2506': /ReduceSum.*input \d is beyond the 2 input/,
};

describe('wasm regressions from fuzzing', () => {
  const fixtures = fs.readdirSync(FIXTURES).filter((f) => f.endsWith('.json')).sort();
  it('has fixtures', () => expect(fixtures.length).toBeGreaterThanOrEqual(5));

  for (const file of fixtures) {
    it(`replays without a finding: ${file.replace(/\.json$/, '')}`, async () => {
      const { outcome } = await replayFinding(path.join(FIXTURES, file), SHARED);
      expect(outcome.status === 'finding' ? `${outcome.stage}: ${outcome.message}` : '').toBe('');
    }, 120_000);
  }

  for (const [name, reason] of Object.entries(REFUSALS)) {
    it(`refuses the node in check: ${name}`, async () => {
      const model = await loadModel(path.join(FIXTURES, `${name}.onnx`));
      const error = await compileWasm(model).then(() => undefined, (e: unknown) => e);
      expect(error).toBeInstanceOf(Error);
      const message = (error as Error).message;
      expect(message).toContain(UNSUPPORTED_PREFIX);
      expect(message).toMatch(reason);
    });
  }

  // com.microsoft Attention with integer (int32/uint32) QKV weights: the f32 template failed
  // with "kernel builder: mul on f32 and i32". The fixture regenerates the mutated gpt2
  // model from its case seed (no .onnx copy: 0.5 MB).
  it('records the gpt2 Attention fixture as a regenerated mutation', () => {
    const record = JSON.parse(fs.readFileSync(path.join(FIXTURES, 'models_genai-tiny-random-gpt2-fp32-22-9332.json'), 'utf8')) as { modelFile?: string; mutations: string[] };
    expect(record.modelFile).toBeUndefined();
    expect(record.mutations.join()).toMatch(/c_attn\.weight": data_type = 12/);
  });
});
