/**
 * Browser-safe: a bundle fetched over http(s) and read as it arrives. The kernels part comes
 * first in the file (src/bundle/README.md), so WebAssembly.compileStreaming compiles it while
 * the weights are still downloading. Nothing is instantiated before its checksum holds: the
 * compiled module is handed out only after the kernels' sha256 matches the manifest (WebCrypto
 * hashes whole buffers, so each part is hashed once it is complete), and the weights are
 * checked the same way before the session places them.
 */
import { LlmccError } from '../../ir/errors.js';
import type { WasmProgram } from '../../targets/wasm/program.js';
import { HEADER_BYTES, decodeBundleHead, sha256Hex, type BundlePart } from '../bundle/format.js';

export interface StreamedBundle {
  program: WasmProgram;
  kernels: WebAssembly.Module;
  weights: Uint8Array;
}

/** Whether this JS engine can compile a wasm module from a stream (browsers, Node ≥ 18). */
export function canStreamCompile(): boolean {
  return typeof WebAssembly.compileStreaming === 'function' && typeof Response === 'function' && typeof ReadableStream === 'function';
}

/** One part's bytes as they arrive; `onBytes` sees each new slice (the kernels' compile stream). */
interface PartSink {
  part: BundlePart;
  bytes: Uint8Array;
  filled: number;
  onBytes?: (slice: Uint8Array) => void;
  onComplete?: () => void;
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.byteLength + b.byteLength);
  out.set(a, 0);
  out.set(b, a.byteLength);
  return out;
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

export async function fetchBundleStreaming(url: URL, target: string): Promise<StreamedBundle> {
  const where = url.href;
  const response = await fetch(url);
  if (!response.ok) throw new LlmccError(`cannot fetch bundle (HTTP ${response.status})`, where);
  if (!response.body) throw new LlmccError('the bundle response has no body', where);
  // Content-Length counts the encoded bytes when the server compresses: only trusted without an encoding.
  const declared = response.headers.get('content-encoding') ? NaN : Number(response.headers.get('content-length') ?? NaN);
  const reader = response.body.getReader();
  let received = 0;
  const next = async (): Promise<Uint8Array | undefined> => {
    const { done, value } = await reader.read();
    if (done) return undefined;
    received += value.byteLength;
    return value;
  };

  // Header and manifest: read until both are in (decodeBundleHead words every refusal).
  let head: Uint8Array = new Uint8Array(0);
  const headBytes = (): number => (head.byteLength < HEADER_BYTES ? HEADER_BYTES : HEADER_BYTES + new DataView(head.buffer, head.byteOffset).getUint32(12, true));
  let ended = false;
  while (head.byteLength < headBytes()) {
    const chunk = await next();
    if (!chunk) { ended = true; break; }
    head = concat(head, chunk);
  }
  const knownTotal = ended ? received : Number.isFinite(declared) ? declared : Number.MAX_SAFE_INTEGER;
  const { manifest, partsStart } = await decodeBundleHead(head, knownTotal, { target, where }).catch(async (error: unknown) => {
    await reader.cancel().catch(() => undefined);
    throw error;
  });

  const partNamed = (name: string): BundlePart => {
    const part = manifest.parts.find((p) => p.name === name);
    if (!part) throw new LlmccError(`bundle has no part '${name}'`, where);
    return part;
  };
  let compileInput!: ReadableStreamDefaultController<Uint8Array>;
  const wasmStream = new ReadableStream<Uint8Array>({ start: (controller) => { compileInput = controller; } });
  const compiling = WebAssembly.compileStreaming(new Response(wasmStream, { headers: { 'Content-Type': 'application/wasm' } }));
  compiling.catch(() => undefined); // awaited below, once the checksum holds
  const kernels: PartSink = {
    part: partNamed('kernels.wasm'), bytes: new Uint8Array(0), filled: 0,
    onBytes: (slice) => compileInput.enqueue(slice.slice()),
    onComplete: () => compileInput.close(),
  };
  kernels.bytes = new Uint8Array(kernels.part.byteLength);
  const weightsPart = partNamed('weights.bin');
  const sinks: PartSink[] = [kernels, { part: weightsPart, bytes: new Uint8Array(weightsPart.byteLength), filled: 0 }];
  if (kernels.part.byteLength === 0) compileInput.close();

  /** Copies the part bytes inside [at, at + chunk.length) of the file to their sinks. */
  const feed = (chunk: Uint8Array, at: number): void => {
    for (const sink of sinks) {
      const start = partsStart + sink.part.offset;
      const from = Math.max(at, start);
      const to = Math.min(at + chunk.byteLength, start + sink.part.byteLength);
      if (from >= to) continue;
      const slice = chunk.subarray(from - at, to - at);
      sink.bytes.set(slice, from - start);
      sink.filled += slice.byteLength;
      sink.onBytes?.(slice);
      if (sink.filled === sink.part.byteLength) sink.onComplete?.();
    }
  };
  try {
    feed(head, 0);
    // next() has counted the chunk already: it starts at received − its length.
    for (let chunk = await next(); chunk; chunk = await next()) feed(chunk, received - chunk.byteLength);
  } catch (error) {
    compileInput.error(error);
    throw new LlmccError(`cannot read the bundle: ${describe(error)}`, where);
  }
  for (const sink of sinks) {
    if (sink.filled < sink.part.byteLength) {
      if (sink === kernels) compileInput.error(new Error('truncated'));
      throw new LlmccError(`bundle is truncated (${received} bytes, part '${sink.part.name}' ends at ${partsStart + sink.part.offset + sink.part.byteLength})`, where);
    }
    if ((await sha256Hex(sink.bytes)) !== sink.part.sha256) {
      throw new LlmccError(`bundle part '${sink.part.name}' checksum mismatch (the file is corrupted or was modified)`, where);
    }
  }
  let module: WebAssembly.Module;
  try {
    module = await compiling;
  } catch (error) {
    throw new LlmccError(`bundle part 'kernels.wasm' does not compile: ${describe(error)}`, where);
  }
  return { program: manifest.program, kernels: module, weights: sinks[1].bytes };
}
