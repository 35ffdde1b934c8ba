import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { LlmccError } from '../ir/errors.js';
import { Tensor } from '../ir/tensor.js';
import { loadModelFromBytes } from '../src/onnx/load.js';
import { BUNDLE_FORMAT_VERSION, HEADER_BYTES, PART_ALIGN, decodeBundle, encodeBundle } from '../src/bundle/format.js';
import { writeBundle, writeFileAtomicAsync } from '../src/bundle/write.js';
import { load } from '../src/runtime/index.js';
import { compileWasm } from '../targets/wasm/compile.js';
import type { CompiledWasm } from '../targets/wasm/program.js';
import { buildModel } from './helpers/onnx-builder.js';

/** MatMul (kernel) → Reshape (view), with a weight, and a host Shape output. */
function testModel(): Uint8Array {
  const w = Tensor.fromNumbers('f32', [4, 3], Array.from({ length: 12 }, (_, i) => (i - 5) / 7));
  return buildModel({
    inputs: [{ name: 'x', dtype: 'f32', shape: ['batch', 4] }],
    outputs: [{ name: 'flat', dtype: 'f32', shape: undefined }, { name: 'dims', dtype: 'i64', shape: [2] }],
    initializers: { w, minus_one: Tensor.fromNumbers('i64', [1], [-1]) },
    nodes: [
      { op: 'MatMul', inputs: ['x', 'w'], outputs: ['y'] },
      { op: 'Reshape', inputs: ['y', 'minus_one'], outputs: ['flat'] },
      { op: 'Shape', inputs: ['x'], outputs: ['dims'] },
    ],
  });
}

/** Checks that `promise` rejects with a one-line LlmccError whose message matches. */
async function refuses(promise: Promise<unknown>, pattern: RegExp): Promise<void> {
  const error = await promise.then(() => undefined, (e: unknown) => e);
  expect(error).toBeInstanceOf(LlmccError);
  const message = (error as Error).message;
  expect(message).toMatch(pattern);
  expect(message).not.toContain('\n');
}

describe('bundle format', () => {
  let compiled: CompiledWasm;
  let bytes: Uint8Array;
  let tmp: string;

  beforeAll(async () => {
    compiled = await compileWasm(loadModelFromBytes(testModel(), { path: 'test.onnx' }));
    bytes = await encodeBundle(compiled);
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'llmcc-bundle-'));
  });

  it('round-trips the manifest and both parts', async () => {
    const decoded = await decodeBundle(bytes, { target: 'wasm' });
    expect(decoded.manifest.format).toBe(BUNDLE_FORMAT_VERSION);
    expect(decoded.manifest.target).toBe('wasm');
    expect(decoded.manifest.program).toEqual(JSON.parse(JSON.stringify(compiled.program)));
    expect(await decoded.part('kernels.wasm')).toEqual(compiled.kernels);
    expect(await decoded.part('weights.bin')).toEqual(compiled.weights);
    for (const part of decoded.manifest.parts) expect(part.sha256).toMatch(/^[0-9a-f]{64}$/);
  });

  it('is deterministic', async () => {
    expect(await encodeBundle(compiled)).toEqual(bytes);
  });

  it('refuses a truncated bundle', async () => {
    await refuses(load(bytes.subarray(0, bytes.byteLength - 10)), /^bundle is truncated/);
    await refuses(load(bytes.subarray(0, HEADER_BYTES + 5)), /^bundle is truncated/);
    await refuses(load(bytes.subarray(0, 20)), /^bundle is truncated/);
    await refuses(load(new Uint8Array(0)), /^not an llmcc bundle/);
  });

  it('refuses a bundle whose weights or kernels were modified (checksum)', async () => {
    const decoded = await decodeBundle(bytes);
    const manifestLength = new DataView(bytes.buffer, bytes.byteOffset).getUint32(12, true);
    const partsStart = Math.ceil((HEADER_BYTES + manifestLength) / PART_ALIGN) * PART_ALIGN;
    for (const part of decoded.manifest.parts) {
      const tampered = new Uint8Array(bytes);
      tampered[partsStart + part.offset + Math.floor(part.byteLength / 2)] ^= 0x55;
      await refuses(load(tampered), new RegExp(`^bundle part '${part.name}' checksum mismatch`));
    }
  });

  it('refuses a bundle whose manifest was modified (checksum)', async () => {
    const tampered = new Uint8Array(bytes);
    tampered[HEADER_BYTES + 20] ^= 0x01;
    await refuses(load(tampered), /^bundle manifest checksum mismatch/);
  });

  it('refuses another format version, naming both versions', async () => {
    const other = new Uint8Array(bytes);
    new DataView(other.buffer).setUint32(8, 7, true);
    await refuses(load(other), new RegExp(`^bundle format version 7 is not supported \\(this llmcc reads version ${BUNDLE_FORMAT_VERSION}\\)`));
  });

  it('refuses a bundle for another target', async () => {
    const webgpu = await encodeBundle({ ...compiled, program: { ...compiled.program, target: 'webgpu' as 'wasm' } });
    await refuses(load(webgpu), /^bundle is for target 'webgpu', not 'wasm'/);
  });

  it('refuses something that is not a bundle', async () => {
    await refuses(load(new TextEncoder().encode('\x08\x07hello onnx model bytes')), /^not an llmcc bundle \(bad magic\)/);
  });

  it('writes atomically: complete file, no temp file left', async () => {
    const file = path.join(tmp, 'model.llmcc');
    const size = await writeBundle(file, compiled);
    expect(fs.statSync(file).size).toBe(size);
    expect(new Uint8Array(fs.readFileSync(file))).toEqual(bytes);
    expect(fs.readdirSync(tmp)).toEqual(['model.llmcc']);
  });

  it('leaves the old file untouched and nothing else when a write fails', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'llmcc-bundle-'));
    const file = path.join(dir, 'model.llmcc');
    fs.writeFileSync(file, 'old');
    // The target is a directory: the rename fails after the temp file was written.
    const blocked = path.join(dir, 'blocked.llmcc');
    fs.mkdirSync(blocked);
    fs.writeFileSync(path.join(blocked, 'x'), '');
    await expect(writeFileAtomicAsync(blocked, bytes)).rejects.toThrow();
    expect(fs.readFileSync(file, 'utf8')).toBe('old');
    expect(fs.readdirSync(dir).sort()).toEqual(['blocked.llmcc', 'model.llmcc']);
    await refuses(writeFileAtomicAsync(path.join(dir, 'missing', 'm.llmcc'), bytes), /^output folder does not exist/);
  });
});
