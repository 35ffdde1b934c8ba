/**
 * Hostile inputs through the CLI, as a user meets them: external data that tries to leave
 * the model's folder is refused by name, and outputs (`compile -o`, `run --out`) are
 * written atomically: nothing is left behind on error, an existing file is untouched.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import onnxProto from 'onnx-proto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Tensor } from '../ir/tensor.js';
import { encodeTensorProto } from '../src/onnx/tensor-proto.js';
import { llmcc } from './helpers/cli.js';

const { onnx } = onnxProto;
let root: string;

/** y = x + w, with w (f32[4]) in external data at `location`. */
function externalModel(location: string): Uint8Array {
  const tensorType = { tensorType: { elemType: 1, shape: { dim: [{ dimValue: 4 }] } } };
  return onnx.ModelProto.encode({
    irVersion: 8,
    opsetImport: [{ domain: '', version: 17 }],
    graph: {
      name: 'g',
      node: [{ opType: 'Add', input: ['x', 'w'], output: ['y'], name: 'add' }],
      initializer: [{
        name: 'w', dataType: 1, dims: [4], dataLocation: 1,
        externalData: [{ key: 'location', value: location }, { key: 'offset', value: '0' }, { key: 'length', value: '16' }],
      }],
      input: [{ name: 'x', type: tensorType }],
      output: [{ name: 'y', type: tensorType }],
    },
  }).finish();
}

/** A model folder `<root>/<name>/` with model.onnx pointing at `location`, plus weights and test data. */
function modelFolder(name: string, location: string): string {
  const dir = path.join(root, name);
  fs.mkdirSync(path.join(dir, 'test_data_set_0'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'model.onnx'), externalModel(location));
  fs.writeFileSync(path.join(dir, 'weights.bin'), new Uint8Array(new Float32Array([1, 2, 3, 4]).buffer));
  const x = Tensor.fromNumbers('f32', [4], [10, 20, 30, 40]);
  fs.writeFileSync(path.join(dir, 'test_data_set_0', 'input_0.pb'), encodeTensorProto(x, 'x'));
  fs.writeFileSync(path.join(dir, 'test_data_set_0', 'output_0.pb'), encodeTensorProto(Tensor.fromNumbers('f32', [4], [11, 22, 33, 44]), 'y'));
  return dir;
}

function expectRefused(result: ReturnType<typeof llmcc>, pattern: RegExp): void {
  expect(result.code).toBe(2);
  const lines = result.stderr.trim().split('\n');
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(/^llmcc: error: /);
  expect(lines[0]).not.toMatch(/internal error/);
  expect(lines[0]).toMatch(pattern);
}

beforeAll(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'llmcc-hostile-'));
  // A file outside every model folder that a hostile location points at.
  fs.writeFileSync(path.join(root, 'secret.bin'), new Uint8Array(64).fill(7));
});
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

describe('external data stays inside the model folder', () => {
  it('a well-placed external file is accepted (control)', () => {
    const dir = modelFolder('good', 'weights.bin');
    const result = llmcc('run', path.join(dir, 'model.onnx'), '--data', path.join(dir, 'test_data_set_0'));
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
  });

  const cases: [string, string, RegExp][] = [
    ['relative ..', '../secret.bin', /external data location "\.\.\/secret\.bin" leaves the model's folder/],
    ['.. after a subfolder', 'sub/../../secret.bin', /leaves the model's folder/],
    ['absolute path', path.join('/', 'etc', 'hostname'), /is an absolute path; it must be relative to the model's folder/],
  ];
  for (const [label, location, pattern] of cases) {
    it(`refuses ${label}: inspect, compile and run`, () => {
      const dir = modelFolder(`bad-${label.replace(/\W+/g, '-')}`, location);
      const model = path.join(dir, 'model.onnx');
      expectRefused(llmcc('inspect', model), pattern);
      expectRefused(llmcc('compile', model, '--emit', 'ir'), pattern);
      expectRefused(llmcc('run', model, '--data', path.join(dir, 'test_data_set_0')), pattern);
    });
  }

  it('refuses a symlink inside the folder that leads out of it', () => {
    const dir = modelFolder('symlink-out', 'link.bin');
    fs.symlinkSync(path.join(root, 'secret.bin'), path.join(dir, 'link.bin'));
    expectRefused(llmcc('inspect', path.join(dir, 'model.onnx')), /external data location "link\.bin" resolves \(through a symlink\) outside the model's folder/);
  });

  it('refuses a symlinked folder that leads out of the model folder', () => {
    const dir = modelFolder('symlink-dir', 'data/secret.bin');
    fs.symlinkSync(root, path.join(dir, 'data'));
    expectRefused(llmcc('inspect', path.join(dir, 'model.onnx')), /resolves \(through a symlink\) outside the model's folder/);
  });

  it('accepts a symlink that stays inside the folder', () => {
    const dir = modelFolder('symlink-in', 'alias.bin');
    fs.symlinkSync('weights.bin', path.join(dir, 'alias.bin'));
    const result = llmcc('run', path.join(dir, 'model.onnx'), '--data', path.join(dir, 'test_data_set_0'));
    expect(result.code).toBe(0);
  });
});

describe('outputs are written atomically', () => {
  const entries = (dir: string): string[] => fs.readdirSync(dir).sort();

  it('compile -o: nothing is written when the model is refused', () => {
    const dir = modelFolder('atomic-compile-new', '../secret.bin');
    const out = path.join(root, 'compile-new-out');
    fs.mkdirSync(out);
    expectRefused(llmcc('compile', path.join(dir, 'model.onnx'), '--emit', 'ir', '-o', path.join(out, 'model.ir')), /leaves the model's folder/);
    expect(entries(out)).toEqual([]);
  });

  it('compile --output: an existing file is untouched when the model is refused', () => {
    const dir = modelFolder('atomic-compile-old', '/etc/hostname');
    const out = path.join(root, 'compile-old-out');
    fs.mkdirSync(out);
    fs.writeFileSync(path.join(out, 'model.ir'), 'previous build\n');
    expectRefused(llmcc('compile', path.join(dir, 'model.onnx'), '--emit', 'ir', '--output', path.join(out, 'model.ir')), /absolute path/);
    expect(entries(out)).toEqual(['model.ir']);
    expect(fs.readFileSync(path.join(out, 'model.ir'), 'utf8')).toBe('previous build\n');
  });

  it('compile -o into a missing folder: a clear error, nothing created', () => {
    const dir = modelFolder('atomic-compile-missing', 'weights.bin');
    const out = path.join(root, 'no-such-folder', 'model.ir');
    expectRefused(llmcc('compile', path.join(dir, 'model.onnx'), '--emit', 'ir', '-o', out), /cannot write output: its folder does not exist/);
    expect(fs.existsSync(path.join(root, 'no-such-folder'))).toBe(false);
  });

  it('compile -o succeeds with exactly the file and no temp files', () => {
    const dir = modelFolder('atomic-compile-ok', 'weights.bin');
    const out = path.join(root, 'compile-ok-out');
    fs.mkdirSync(out);
    const result = llmcc('compile', path.join(dir, 'model.onnx'), '--emit', 'ir', '-o', path.join(out, 'model.ir'));
    expect(result.code).toBe(0);
    expect(entries(out)).toEqual(['model.ir']);
    expect(fs.readFileSync(path.join(out, 'model.ir'), 'utf8')).toMatch(/^llmcc\.ir /);
  });

  it('run --out: no folder is created when the model is refused', () => {
    const dir = modelFolder('atomic-run-new', 'sub/../../secret.bin');
    const out = path.join(root, 'run-new-out');
    expectRefused(llmcc('run', path.join(dir, 'model.onnx'), '--data', path.join(dir, 'test_data_set_0'), '--out', out), /leaves the model's folder/);
    expect(fs.existsSync(out)).toBe(false);
    expect(entries(root).filter((e) => e.startsWith('run-new-out'))).toEqual([]);
  });

  it('run --out: existing outputs are untouched when the data does not fit', () => {
    const dir = modelFolder('atomic-run-old', 'weights.bin');
    const data = path.join(dir, 'test_data_set_0');
    fs.writeFileSync(path.join(data, 'input_0.pb'), encodeTensorProto(Tensor.fromNumbers('f32', [5], [1, 2, 3, 4, 5]), 'x'));
    const out = path.join(root, 'run-old-out');
    fs.mkdirSync(out);
    fs.writeFileSync(path.join(out, 'output_0.pb'), 'previous');
    expectRefused(llmcc('run', path.join(dir, 'model.onnx'), '--data', data, '--out', out), /input 'x' has shape \[5\] but the model declares \[4\]/);
    expect(entries(out)).toEqual(['output_0.pb']);
    expect(fs.readFileSync(path.join(out, 'output_0.pb'), 'utf8')).toBe('previous');
  });
});

describe('resource limits', () => {
  it('refuses a model whose weights exceed wasm32 memory, from shapes alone, leaving no bundle', () => {
    // w: f32[1025, 1048576] = 4.004 GiB, in a sparse external file: nothing is ever read.
    const dims = [1025, 1048576];
    const bytes = dims[0] * dims[1] * 4;
    const dir = path.join(root, 'oversize');
    fs.mkdirSync(dir, { recursive: true });
    const tensorType = { tensorType: { elemType: 1, shape: { dim: dims.map((d) => ({ dimValue: d })) } } };
    fs.writeFileSync(path.join(dir, 'model.onnx'), onnx.ModelProto.encode({
      irVersion: 8,
      opsetImport: [{ domain: '', version: 17 }],
      graph: {
        name: 'g',
        node: [{ opType: 'Add', input: ['x', 'w'], output: ['y'], name: 'add' }],
        initializer: [{
          name: 'w', dataType: 1, dims, dataLocation: 1,
          externalData: [{ key: 'location', value: 'w.bin' }, { key: 'offset', value: '0' }, { key: 'length', value: String(bytes) }],
        }],
        input: [{ name: 'x', type: tensorType }],
        output: [{ name: 'y', type: tensorType }],
      },
    }).finish());
    fs.closeSync(fs.openSync(path.join(dir, 'w.bin'), 'w'));
    fs.truncateSync(path.join(dir, 'w.bin'), bytes);
    const out = path.join(dir, 'model.llmcc');
    expectRefused(llmcc('compile', path.join(dir, 'model.onnx'), '--target', 'wasm', '-o', out), /more than wasm32's 4 GiB; lower them to fewer bits/);
    expect(fs.existsSync(out)).toBe(false);
  });
});
