/**
 * The neon target through the command line, as a user runs it: `compile --target neon -o DIR`
 * writes a C project whose Makefile builds and runs it (qemu and SIMDe, weights from a file or
 * embedded), `run --target neon` (qemu -cpu max, -cpu cortex-a53, --host) compares with the
 * reference outputs, a lowered low-bit model (LUT kernels) matches the reference interpreter
 * on the same lowered graph, and unsupported models fail with one clear error.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { compareTensors } from '../src/compare.js';
import { readTestDataSet } from '../src/testdata.js';
import { readFromArena } from '../targets/wasm/arena.js';
import { runProcess } from '../targets/neon/toolchain.js';
import { llmcc } from './helpers/cli.js';
import { CONFORMANCE_DIR, REPO_ROOT } from './helpers/paths.js';

const MODEL = path.join(REPO_ROOT, 'examples', 'tiny-mlp', 'model.onnx');
const DATA = path.join(REPO_ROOT, 'examples', 'tiny-mlp', 'test_data_set_0');
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'llmcc-neon-cli-'));
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

/** Runs `make TARGET` in a project and compares model/output_0.bin with the data set's output. */
async function makeAndCompare(dir: string, target: string): Promise<void> {
  const made = await runProcess('make', ['-s', '-C', dir, target], { timeoutMs: 300_000 });
  expect(made.code, made.stderr).toBe(0);
  expect(made.stdout).toContain('done model');
  const expected = readTestDataSet(DATA).outputs[0].tensor;
  const bytes = new Uint8Array(fs.readFileSync(path.join(dir, 'model', 'output_0.bin')));
  const actual = readFromArena(bytes.buffer, 0, expected.dtype, expected.shape);
  expect(compareTensors(actual, expected, { atol: 1e-4, rtol: 0 }).ok).toBe(true);
}

describe('llmcc compile --target neon', () => {
  it('writes a C project (runtime API, harness, Makefile, weights file) that builds with -Werror and runs under qemu and SIMDe', async () => {
    const dir = path.join(work, 'project');
    const r = llmcc('compile', MODEL, '--target', 'neon', '-o', dir, '--data', DATA);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/wrote .*C project with \d+ kernels/);
    for (const file of ['llmcc_neon.h', 'llmcc_runtime.h', 'llmcc_runtime.c', 'model.c', 'main.c', 'Makefile', 'model/weights.bin', 'model/input_0.bin']) {
      expect(fs.existsSync(path.join(dir, file)), file).toBe(true);
    }
    const header = fs.readFileSync(path.join(dir, 'llmcc_runtime.h'), 'utf8');
    expect(header).toMatch(/llmcc_model \*llmcc_model_load\(const llmcc_program \*program, const char \*weights_path\);/);
    expect(fs.readFileSync(path.join(dir, 'model.c'), 'utf8')).toMatch(/vld1q_f32|vfmaq_f32|vmulq_f32/);
    await makeAndCompare(dir, 'run-qemu');
    await makeAndCompare(dir, 'run-host');
  }, 600_000);

  it('embeds the weights with --embed-weights and takes shapes from --shape', async () => {
    const dir = path.join(work, 'embedded');
    const r = llmcc('compile', MODEL, '--target', 'neon', '-o', dir, '--shape', 'x=1,4,32', '--embed-weights');
    expect(r.code, r.stderr).toBe(0);
    expect(fs.existsSync(path.join(dir, 'model', 'weights.bin'))).toBe(false);
    expect(fs.readFileSync(path.join(dir, 'model.c'), 'utf8')).toMatch(/static const uint8_t c0_weights\[\d+\]/);
    // The data set's input in the harness's raw form (f32, as --data would have written it).
    const input = readTestDataSet(DATA).inputs[0].tensor;
    fs.writeFileSync(path.join(dir, 'model', 'input_0.bin'), new Uint8Array(Float32Array.from(input.numbers()).buffer));
    await makeAndCompare(dir, 'run-host');
  }, 600_000);

  it('names the input whose shape it needs', () => {
    const r = llmcc('compile', MODEL, '--target', 'neon', '-o', path.join(work, 'noshape'));
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/no concrete shape for graph input 'x'/);
    expect(fs.existsSync(path.join(work, 'noshape'))).toBe(false);
  });
});

describe('llmcc run --target neon', () => {
  // -cpu max runs in the lowered case below.
  for (const flags of [['--cpu', 'cortex-a53'], ['--host']]) {
    it(`matches the reference outputs (${flags.join(' ') || '-cpu max'})`, () => {
      const r = llmcc('run', MODEL, '--data', DATA, '--target', 'neon', ...flags);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toMatch(/ok$/m);
    }, 300_000);
  }

  // neon's default (--matmul auto) lowers to the int8 dot-product kernels; --matmul lut keeps LUT.
  for (const [matmul, label, neonArgs] of [['lut', 'LUT kernels', ['--matmul', 'lut']], ['dot', 'dot-product kernels, the neon default', []]] as const) {
    it(`runs a lowered 2-bit model (${label}) exactly like the reference interpreter on the same lowered graph`, () => {
      // A data set whose expected outputs are the reference interpreter's, after the same lowering.
      const lowered = path.join(work, `lowered-${matmul}`);
      fs.mkdirSync(lowered);
      fs.copyFileSync(path.join(DATA, 'input_0.pb'), path.join(lowered, 'input_0.pb'));
      const ref = llmcc('run', MODEL, '--data', DATA, '--target', 'ref', '--lower', '--bits', '2', '--matmul', matmul, '--out', lowered);
      expect(ref.stdout).toMatch(/wrote 1 output/);
      const r = llmcc('run', MODEL, '--data', lowered, '--target', 'neon', '--lower', '--bits', '2', ...neonArgs);
      expect(r.code, r.stdout + r.stderr).toBe(0);
      expect(r.stdout).toMatch(/ok$/m);
    }, 300_000);
  }

  it('refuses a model with an op it has no kernel for, naming it', () => {
    const r = llmcc('run', path.join(CONFORMANCE_DIR, 'test_matmulinteger', 'model.onnx'), '--data', path.join(CONFORMANCE_DIR, 'test_matmulinteger', 'test_data_set_0'), '--target', 'neon');
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/target neon does not support .*MatMulInteger/);
  });

  it('rejects --host on other targets', () => {
    const r = llmcc('run', MODEL, '--data', DATA, '--target', 'wasm', '--host');
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/apply to --target neon/);
  });
});
