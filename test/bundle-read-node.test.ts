import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LlmccError } from '../ir/errors.js';
import { interpret } from '../ir/interpreter.js';
import { Tensor } from '../ir/tensor.js';
import { loadModelFromBytes } from '../src/onnx/load.js';
import { encodeBundle } from '../src/bundle/format.js';
import { writeBundle } from '../src/bundle/write.js';
import { load } from '../src/runtime/index.js';
import { compileWasm } from '../targets/wasm/compile.js';
import { buildModel } from './helpers/onnx-builder.js';

/**
 * load(path) streams the weights from the file into the wasm memory (src/runtime/node-file.ts):
 * every placement path — f32 copied as-is (w), f16 converted by table (wh), i64 through a decoded
 * tensor (cols), host-only weights kept in JS (table, picks, minus_one) — must give what the reference interpreter gives, and a
 * modified file must be refused.
 */
function testModel(): Uint8Array {
  const ramp = (n: number, scale: number): number[] => Array.from({ length: n }, (_, i) => (i - n / 2) * scale);
  return buildModel({
    inputs: [{ name: 'x', dtype: 'f32', shape: ['batch', 4] }, { name: 'h', dtype: 'f16', shape: [2, 3] }],
    outputs: [
      { name: 'picked', dtype: 'f32', shape: undefined },
      { name: 'flat', dtype: 'f32', shape: undefined },
      { name: 'scaled', dtype: 'f16', shape: [2, 3] },
      { name: 'rows', dtype: 'f32', shape: [2, 3] },
    ],
    initializers: {
      w: Tensor.fromNumbers('f32', [4, 3], ramp(12, 1 / 7)),
      cols: Tensor.fromNumbers('i64', [2], [2, 0]),
      minus_one: Tensor.fromNumbers('i64', [1], [-1]),
      wh: Tensor.fromNumbers('f16', [3], [0.5, -1.25, 3]),
      table: Tensor.fromNumbers('f32', [5, 3], ramp(15, 0.3)),
      picks: Tensor.fromNumbers('i64', [2], [4, 1]),
    },
    nodes: [
      { op: 'MatMul', inputs: ['x', 'w'], outputs: ['y'] },
      { op: 'Gather', inputs: ['y', 'cols'], outputs: ['picked'], attributes: { axis: 1 } },
      { op: 'Reshape', inputs: ['y', 'minus_one'], outputs: ['flat'] },
      { op: 'Mul', inputs: ['h', 'wh'], outputs: ['scaled'] },
      { op: 'Gather', inputs: ['table', 'picks'], outputs: ['rows'] },
    ],
  });
}

async function refuses(promise: Promise<unknown>, pattern: RegExp): Promise<void> {
  const error = await promise.then(() => undefined, (e: unknown) => e);
  expect(error).toBeInstanceOf(LlmccError);
  expect((error as Error).message).toMatch(pattern);
}

describe('loading a bundle file (streamed into the wasm memory)', () => {
  let tmp: string;
  let file: string;
  let model: ReturnType<typeof loadModelFromBytes>;
  const feeds = {
    x: Tensor.fromNumbers('f32', [3, 4], Array.from({ length: 12 }, (_, i) => Math.sin(i))),
    h: Tensor.fromNumbers('f16', [2, 3], [1, 2, -3, 0.25, 8, -0.5]),
  };

  beforeAll(async () => {
    model = loadModelFromBytes(testModel(), { path: 'stream.onnx' });
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'llmcc-read-node-'));
    file = path.join(tmp, 'm.llmcc');
    await writeBundle(file, await compileWasm(model));
  });
  afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it('runs like the reference interpreter and like load(bytes)', async () => {
    const expected = interpret(model.graph, new Map(Object.entries(feeds)), { opsets: model.opsets });
    const fromFile = await (await load(file)).run(feeds);
    const fromBytes = await (await load(new Uint8Array(fs.readFileSync(file)))).run(feeds);
    for (const name of ['picked', 'flat', 'scaled', 'rows']) {
      const want = Array.from(expected.get(name)!.numbers());
      const got = Array.from(fromFile.get(name)!.numbers());
      expect(got.length).toBe(want.length);
      got.forEach((v, i) => expect(v).toBeCloseTo(want[i]!, 4));
      expect(got).toEqual(Array.from(fromBytes.get(name)!.numbers()));
    }
    expect(fromFile.get('scaled')!.dtype).toBe('f16');
  });

  it('refuses a file whose weights, kernels or manifest were modified, or that is truncated', async () => {
    const bytes = fs.readFileSync(file);
    const decoded = await encodeBundle(await compileWasm(model));
    expect(new Uint8Array(bytes)).toEqual(decoded);
    const manifestEnd = 48 + bytes.readUInt32LE(12);
    const partsStart = Math.ceil(manifestEnd / 64) * 64;
    const parts = (JSON.parse(bytes.subarray(48, manifestEnd).toString()) as { parts: { name: string; offset: number; byteLength: number }[] }).parts;
    const lastByteOf = (name: string): number => { const p = parts.find((q) => q.name === name)!; return partsStart + p.offset + p.byteLength - 1; };
    const tampered = (at: number): string => {
      const copy = Buffer.from(bytes);
      copy[at] ^= 0x5a;
      const out = path.join(tmp, `tampered-${at}.llmcc`);
      fs.writeFileSync(out, copy);
      return out;
    };
    await refuses(load(tampered(lastByteOf('weights.bin'))), /^bundle part 'weights.bin' checksum mismatch/);
    await refuses(load(tampered(lastByteOf('kernels.wasm'))), /^bundle part 'kernels.wasm' checksum mismatch/);
    await refuses(load(tampered(manifestEnd - 2)), /^bundle manifest checksum mismatch/);
    const short = path.join(tmp, 'short.llmcc');
    fs.writeFileSync(short, bytes.subarray(0, lastByteOf('weights.bin')));
    await refuses(load(short), /^bundle is truncated/);
    await refuses(load(path.join(tmp, 'absent.llmcc')), /^bundle file not found/);
  });
});
