import { spawn } from 'node:child_process';
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
import { decodeWeight, encodeWeight } from '../targets/wasm/weights.js';
import { buildModel } from './helpers/onnx-builder.js';
import { REPO_ROOT } from './helpers/paths.js';

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

  it('leaves nothing half-written when interrupted with SIGINT', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'llmcc-sigint-'));
    const target = path.join(dir, 'big.llmcc');
    const script = path.join(dir, 'write.mts');
    const writer = path.join(REPO_ROOT, 'src', 'bundle', 'write.ts');
    fs.writeFileSync(script, [
      `import { writeFileAtomicAsync } from ${JSON.stringify(writer)};`,
      'const data = new Uint8Array(256 * 2 ** 20).fill(7);',
      'process.stdout.write("ready\\n");',
      `await writeFileAtomicAsync(${JSON.stringify(target)}, data);`,
    ].join('\n'));
    const child = spawn(process.execPath, ['--import', 'tsx', script], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
    child.stdout.on('data', (chunk: Buffer) => {
      if (chunk.toString().includes('ready')) setTimeout(() => child.kill('SIGINT'), 20);
    });
    const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
    fs.rmSync(script);
    const left = fs.readdirSync(dir);
    // Interrupted: nothing at all; finished first: the complete file and no temp file.
    if (code === 130) expect(left).toEqual([]);
    else expect(left.map((f) => [f, fs.statSync(path.join(dir, f)).size])).toEqual([['big.llmcc', 256 * 2 ** 20]]);
  }, 60_000);
});

describe('weight encoding', () => {
  it('saturates int64 extremes instead of wrapping (INT64_MAX slice ends)', () => {
    const t = Tensor.fromNumbers('i64', [3], [9223372036854775807, -9223372036854775808, -1]);
    const back = decodeWeight('i64', [3], 'i64', encodeWeight(t, 'i64'));
    expect(back.get(0)).toBeGreaterThan(9e18);
    expect(back.get(1)).toBeLessThan(-9e18);
    expect(back.get(2)).toBe(-1);
  });

  it('round-trips f16, bf16, bool and sub-byte weights', () => {
    for (const [dtype, encoding, values] of [
      ['f16', 'f16', [0.5, -65504, 1e-3]], ['bf16', 'bf16', [1.5, -3e38, 2]], ['bool', 'u8', [1, 0, 1]], ['i4', 'i8', [-8, 7, 0]],
    ] as const) {
      const t = Tensor.fromNumbers(dtype, [3], values);
      expect(Array.from(decodeWeight(dtype, [3], encoding, encodeWeight(t, encoding)).numbers())).toEqual(Array.from(t.numbers()));
    }
  });
});
