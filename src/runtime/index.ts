/**
 * The llmcc runtime: `load(bundle)` → a session that runs the compiled model. Works in Node
 * (file paths, file: URLs, bytes) and in the browser (http(s) URLs via fetch, bytes). This
 * module and everything it imports statically are browser-safe; Node's file reading is a
 * separate module imported only when a file path is given.
 */
import { LlmccError } from '../../ir/errors.js';
import { decodeBundle } from '../bundle/format.js';
import { WASM_TARGET, type CompiledWasm, type WasmProgram } from '../../targets/wasm/program.js';
import { WASM32_MAX_BYTES, WASM_PAGE } from '../../targets/wasm/arena.js';
import { type RuntimeSession, type SessionOptions, createSession } from './session.js';
import type { WeightStream } from './weight-placement.js';
import { canStreamCompile, fetchBundleStreaming } from './fetch-stream.js';

export type { CarriedPair, CarriedState, Feeds, RuntimeSession, SessionOptions } from './session.js';
export {
  type PipelineConfig, type PipelineEngine, type PipelineStage, type StageEngine,
  isPipelineConfig, openPipeline, parsePipelineConfig, pipelineEngine, resolveStageFiles, stageFileCandidates,
} from './pipeline.js';

function isNode(): boolean {
  const p = (globalThis as { process?: { versions?: { node?: string } } }).process;
  return typeof p?.versions?.node === 'string';
}

/** What a session is made of, verified: the program, the kernels' bytes and the weights. */
interface OpenedBundle {
  program: WasmProgram;
  kernels: Uint8Array;
  weights: Uint8Array | WeightStream;
}

async function fromBytes(bytes: Uint8Array, where: string): Promise<OpenedBundle> {
  const decoded = await decodeBundle(bytes, { target: WASM_TARGET, where });
  // Never compile kernels that failed their checksum: part() verifies before returning.
  return { program: decoded.manifest.program, kernels: await decoded.part('kernels.wasm'), weights: await decoded.part('weights.bin') };
}

/** The bundle from a path, a URL or bytes. */
async function openBundle(bundle: string | URL | Uint8Array): Promise<OpenedBundle> {
  if (bundle instanceof Uint8Array) return fromBytes(bundle, 'bundle bytes');
  const url = bundle instanceof URL ? bundle : /^[a-z][a-z0-9+.-]*:\/\//i.test(bundle) ? new URL(bundle) : undefined;
  if (!url || url.protocol === 'file:') {
    if (!isNode()) throw new LlmccError('file paths can only be loaded in Node; pass a URL or the bytes', String(bundle));
    // Node streams the weights from the file into the wasm memory, hashing on the way (node-file.ts).
    const { openBundleFile } = await import('./node-file.js');
    return openBundleFile(url ?? (bundle as string), WASM_TARGET);
  }
  const response = await fetch(url);
  if (!response.ok) throw new LlmccError(`cannot fetch bundle (HTTP ${response.status})`, url.href);
  return fromBytes(new Uint8Array(await response.arrayBuffer()), url.href);
}

/**
 * The kernels compiled for the options: with threads, the memory import rewritten as shared
 * (Node only: browsers need cross-origin isolation and Web Workers, which this runtime does
 * not start).
 */
async function compileKernels(bytes: Uint8Array, options: SessionOptions): Promise<WebAssembly.Module> {
  if ((options.threads ?? 1) > 1) {
    if (!isNode()) throw new LlmccError('threads > 1 need Node (worker_threads); in the browser, load with one thread');
    const { withSharedMemoryImport } = await import('./threads.js');
    bytes = withSharedMemoryImport(bytes, WASM32_MAX_BYTES / WASM_PAGE);
  }
  return WebAssembly.compile(bytes as Uint8Array<ArrayBuffer>);
}

/** The bundle's http(s) URL, when it is one. */
function httpUrl(bundle: string | URL | Uint8Array): URL | undefined {
  if (bundle instanceof Uint8Array) return undefined;
  const url = bundle instanceof URL ? bundle : /^https?:\/\//i.test(bundle) ? new URL(bundle) : undefined;
  return url && /^https?:$/.test(url.protocol) ? url : undefined;
}

/**
 * Loads a bundle (path, URL or bytes), verifies it and prepares a session (options: threads).
 * Over http(s) the kernels compile while the weights download (fetch-stream.ts), unless
 * threads > 1 (the module is then rewritten for shared memory first) or the engine has no
 * WebAssembly.compileStreaming.
 */
export async function load(bundle: string | URL | Uint8Array, options: SessionOptions = {}): Promise<RuntimeSession> {
  const url = httpUrl(bundle);
  if (url && (options.threads ?? 1) <= 1 && canStreamCompile()) {
    const streamed = await fetchBundleStreaming(url, WASM_TARGET);
    return createSession(streamed, options);
  }
  const opened = await openBundle(bundle);
  const kernels = await compileKernels(opened.kernels, options);
  return createSession({ program: opened.program, kernels, weights: opened.weights }, options);
}

/** A session straight from a compiled program (no bundle bytes): what `--target wasm` uses. */
export async function sessionFromCompiled(compiled: CompiledWasm, options: SessionOptions = {}): Promise<RuntimeSession> {
  const kernels = await compileKernels(compiled.kernels, options);
  return createSession({ program: compiled.program, kernels, weights: compiled.weights }, options);
}
