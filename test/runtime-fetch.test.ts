import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { verifyModel } from '../ir/verify.js';
import { decodeBundleHead, encodeBundle } from '../src/bundle/format.js';
import { loadModel } from '../src/onnx/load.js';
import { load } from '../src/runtime/index.js';
import { bindInputs, readTestDataSet } from '../src/testdata.js';
import { compileWasm } from '../targets/wasm/compile.js';
import { MODELS_DIR } from './helpers/paths.js';

/**
 * load(url) over http: the kernels compile from the stream (WebAssembly.compileStreaming) while
 * the weights arrive, and every refusal of the byte path holds (checksums, truncation, format).
 * The server sends each file in small chunks so parts straddle chunk boundaries.
 */
const MODEL_DIR = path.join(MODELS_DIR, 'genai-static-scatter-bias-decoder');
const CHUNK = 997;

describe('load(http URL): streamed compile, verified before use', () => {
  let bundle: Uint8Array;
  let server: http.Server;
  let base: string;
  const files = new Map<string, { bytes: Uint8Array; length?: number }>();

  /** A copy of the bundle with one byte flipped inside the named part. */
  async function corrupted(name: string): Promise<Uint8Array> {
    const { manifest, partsStart } = await decodeBundleHead(bundle, bundle.byteLength);
    const part = manifest.parts.find((p) => p.name === name)!;
    const copy = bundle.slice();
    copy[partsStart + part.offset + Math.floor(part.byteLength / 2)] ^= 0x40;
    return copy;
  }

  beforeAll(async () => {
    const model = await loadModel(path.join(MODEL_DIR, 'model.onnx'));
    verifyModel(model);
    bundle = await encodeBundle(await compileWasm(model));
    const { manifest, partsStart } = await decodeBundleHead(bundle, bundle.byteLength);
    const weights = manifest.parts.find((p) => p.name === 'weights.bin')!;
    files.set('/ok.llmcc', { bytes: bundle });
    files.set('/kernels-flipped.llmcc', { bytes: await corrupted('kernels.wasm') });
    files.set('/weights-flipped.llmcc', { bytes: await corrupted('weights.bin') });
    // Cut inside the weights: the header, manifest and kernels all arrive.
    files.set('/truncated.llmcc', { bytes: bundle.subarray(0, partsStart + weights.offset + 100) });
    files.set('/head-only.llmcc', { bytes: bundle.subarray(0, 30) });
    const otherVersion = bundle.slice();
    new DataView(otherVersion.buffer).setUint32(8, 99, true);
    files.set('/version.llmcc', { bytes: otherVersion });
    server = http.createServer((request, response) => {
      const file = files.get(request.url ?? '');
      if (!file) { response.writeHead(404).end(); return; }
      response.writeHead(200, { 'Content-Type': 'application/octet-stream' });
      let at = 0;
      const send = (): void => {
        if (at >= file.bytes.byteLength) { response.end(); return; }
        response.write(file.bytes.subarray(at, at + CHUNK));
        at += CHUNK;
        setImmediate(send);
      };
      send();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));
  afterEach(() => vi.restoreAllMocks());

  it('compiles the kernels from the stream and runs like the bundle loaded from bytes', async () => {
    const streaming = vi.spyOn(WebAssembly, 'compileStreaming');
    const compile = vi.spyOn(WebAssembly, 'compile');
    const session = await load(`${base}/ok.llmcc`);
    expect(streaming).toHaveBeenCalledTimes(1);
    // fetch itself (undici) compiles its own parser module; the kernels must not go through compile().
    const { manifest } = await decodeBundleHead(bundle, bundle.byteLength);
    const kernelBytes = manifest.parts.find((p) => p.name === 'kernels.wasm')!.byteLength;
    expect(compile.mock.calls.filter(([source]) => (source as ArrayBufferView).byteLength === kernelBytes)).toEqual([]);
    vi.restoreAllMocks();
    const fromBytes = await load(bundle);
    const data = readTestDataSet(path.join(MODEL_DIR, 'test_data_set_0'));
    const model = await loadModel(path.join(MODEL_DIR, 'model.onnx'));
    const feeds = bindInputs(model.graph, data);
    const got = await session.run(feeds);
    const want = await fromBytes.run(feeds);
    expect(want.size).toBe(model.graph.outputs.length);
    for (const [name, tensor] of want) expect(Array.from(got.get(name)!.numbers()), name).toEqual(Array.from(tensor.numbers()));
  });

  it.each([
    ['kernels-flipped', /part 'kernels\.wasm' checksum mismatch/],
    ['weights-flipped', /part 'weights\.bin' checksum mismatch/],
    ['truncated', /bundle is truncated \(\d+ bytes, part 'weights\.bin' ends at \d+\)/],
    ['head-only', /bundle is truncated/],
    ['version', /format version 99 is not supported/],
  ])('refuses %s with one clear line naming the URL', async (name, pattern) => {
    const url = `${base}/${name}.llmcc`;
    const error = await load(url).then(() => undefined, (e: unknown) => e as Error);
    expect(error?.message).toMatch(pattern);
    expect(error?.message).toContain(url);
  });

  it('refuses a missing bundle with its HTTP status', async () => {
    await expect(load(`${base}/missing.llmcc`)).rejects.toThrow(/HTTP 404/);
  });
});
