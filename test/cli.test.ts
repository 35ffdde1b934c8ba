import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readTensorFile, writeTensorFile } from '../src/onnx/tensor-proto.js';
import { Tensor } from '../ir/tensor.js';
import { llmcc } from './helpers/cli.js';
import { CONFORMANCE_DIR, REPO_ROOT } from './helpers/paths.js';

const EXAMPLE = path.join(REPO_ROOT, 'examples', 'tiny-mlp');
const MODEL = path.join(EXAMPLE, 'model.onnx');
const DATA = path.join(EXAMPLE, 'test_data_set_0');
const temp = fs.mkdtempSync(path.join(os.tmpdir(), 'llmcc-cli-'));
afterAll(() => fs.rmSync(temp, { recursive: true, force: true }));

/** The one-line error contract: `llmcc: error: <what>, <where>`, exit 2, no stack. */
function expectCleanError(result: { code: number; stderr: string }, pattern: RegExp): void {
  expect(result.code).toBe(2);
  const lines = result.stderr.trim().split('\n');
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(/^llmcc: error: /);
  expect(lines[0]).toMatch(pattern);
  expect(result.stderr).not.toMatch(/\n\s+at /);
}

describe('llmcc run', () => {
  it('runs the bundled example and matches its reference (exit 0)', () => {
    const r = llmcc('run', MODEL, '--data', DATA);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/output 0 'probs' f32\[1,4,32\]: max abs .* ok/);
  });

  it('writes outputs with --out that equal the reference', () => {
    const out = path.join(temp, 'out-ok');
    const r = llmcc('run', MODEL, '--data', DATA, '--out', out);
    expect(r.code).toBe(0);
    const written = readTensorFile(path.join(out, 'output_0.pb'));
    const expected = readTensorFile(path.join(DATA, 'output_0.pb'));
    expect(written.name).toBe('probs');
    expect(written.tensor.shape).toEqual(expected.tensor.shape);
    const diff = Math.max(...written.tensor.toArray().map((v, i) => Math.abs(v - expected.tensor.get(i))));
    expect(diff).toBeLessThan(1e-5);
  });

  it('exits 1 on a mismatch and reports the error size', () => {
    const data = path.join(temp, 'perturbed');
    fs.mkdirSync(data);
    fs.copyFileSync(path.join(DATA, 'input_0.pb'), path.join(data, 'input_0.pb'));
    const { name, tensor } = readTensorFile(path.join(DATA, 'output_0.pb'));
    const values = tensor.toArray();
    values[5] += 0.5;
    writeTensorFile(path.join(data, 'output_0.pb'), Tensor.fromNumbers('f32', tensor.shape, values), name);
    const r = llmcc('run', MODEL, '--data', data);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/MISMATCH/);
    expect(r.stdout).toMatch(/max abs 5\.0\d*e-1/);
  });

  it('exits 2 with one line for a missing model and leaves no --out folder', () => {
    const out = path.join(temp, 'never');
    expectCleanError(llmcc('run', path.join(temp, 'nope.onnx'), '--data', DATA, '--out', out), /nope\.onnx/);
    expect(fs.existsSync(out)).toBe(false);
  });

  it('exits 2 with one line for a garbage model', () => {
    const garbage = path.join(temp, 'garbage.onnx');
    fs.writeFileSync(garbage, Buffer.from('this is not a protobuf at all \u0000\u00ff\u00fe'));
    expectCleanError(llmcc('run', garbage, '--data', DATA), /garbage\.onnx/);
  });

  it('exits 2 for an input of the wrong shape, naming the input', () => {
    const data = path.join(temp, 'badshape');
    fs.mkdirSync(data);
    writeTensorFile(path.join(data, 'input_0.pb'), Tensor.zeros('f32', [1, 4, 31]), 'x');
    expectCleanError(llmcc('run', MODEL, '--data', data), /input 'x' has shape \[1,4,31\]/);
  });

  it('refuses an unknown target by name', () => {
    expectCleanError(llmcc('run', MODEL, '--data', DATA, '--target', 'tpu'), /unknown target 'tpu'/);
  });

  it('treats usage errors as invalid input (exit 2)', () => {
    const r = llmcc('run', MODEL);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--data/);
  });

  it('prints a stack trace only with --verbose', () => {
    const r = llmcc('--verbose', 'run', path.join(temp, 'nope.onnx'), '--data', DATA);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^llmcc: error: /);
    expect(r.stderr).toMatch(/\n\s+at /);
  });
});

describe('llmcc inspect', () => {
  it('prints opsets, ops, parameters, io and support', () => {
    const r = llmcc('inspect', MODEL);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/opsets: ai\.onnx 20/);
    expect(r.stdout).toMatch(/parameters: 4,224 /);
    expect(r.stdout).toMatch(/x: f32\[batch,sequence,32\]/);
    expect(r.stdout).toMatch(/MatMul\s+2\s+yes/);
    expect(r.stdout).toMatch(/target ref: all ops supported/);
  });

  it('emits JSON with every field', () => {
    const r = llmcc('inspect', MODEL, '--json');
    expect(r.code).toBe(0);
    const report = JSON.parse(r.stdout) as { ops: { op: string; count: number }[]; parameters: { count: number }; unsupported: Record<string, string[]> };
    expect(report.ops).toContainEqual({ op: 'MatMul', count: 2 });
    expect(report.parameters.count).toBe(32 + 32 + 32 * 64 + 64 + 64 * 32);
    expect(report.unsupported.ref).toEqual([]);
  });
});

describe('llmcc conformance', () => {
  it('runs a filtered slice and ends with the summary line', () => {
    const json = path.join(temp, 'conf.json');
    const r = llmcc('conformance', CONFORMANCE_DIR, '--target', 'ref', '--filter', '^test_(add|softmax_axis_0)$', '--json', json);
    expect(r.stdout).toMatch(/^PASS test_add$/m);
    expect(r.stdout).toMatch(/^PASS test_softmax_axis_0$/m);
    expect(r.stdout.trim().split('\n').at(-1)).toBe('2 passed, 0 failed, 0 skipped');
    expect(r.code).toBe(0);
    const summary = JSON.parse(fs.readFileSync(json, 'utf8')) as { passed: number };
    expect(summary.passed).toBe(2);
  });

  it('rejects a bad filter regex', () => {
    expectCleanError(llmcc('conformance', CONFORMANCE_DIR, '--filter', '('), /--filter/);
  });
});

describe('llmcc compile --emit ir', () => {
  it('prints the typed IR of the example', () => {
    const r = llmcc('compile', MODEL, '--emit', 'ir');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/LayerNormalization/);
    expect(r.stdout).toMatch(/batch/);
  });

  it('writes -o atomically and leaves nothing on error', () => {
    const out = path.join(temp, 'model.ir');
    expect(llmcc('compile', MODEL, '--emit', 'ir', '-o', out).code).toBe(0);
    expect(fs.readFileSync(out, 'utf8')).toBe(llmcc('compile', MODEL, '--emit', 'ir').stdout);
    const bad = path.join(temp, 'bad.ir');
    expectCleanError(llmcc('compile', path.join(temp, 'nope.onnx'), '--emit', 'ir', '-o', bad), /nope\.onnx/);
    expect(fs.existsSync(bad)).toBe(false);
  });
});
