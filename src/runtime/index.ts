/**
 * The llmcc runtime: `load(bundle)` → a session that runs the compiled model. Works in Node
 * (file paths, file: URLs, bytes) and in the browser (http(s) URLs via fetch, bytes). This
 * module and everything it imports statically are browser-safe; Node's file reading is a
 * separate module imported only when a file path is given.
 */
import { LlmccError } from '../../ir/errors.js';
import { decodeBundle } from '../bundle/format.js';
import { WASM_TARGET, type CompiledWasm } from '../../targets/wasm/program.js';
import { type RuntimeSession, createSession } from './session.js';

export type { CarriedPair, CarriedState, Feeds, RuntimeSession } from './session.js';

function isNode(): boolean {
  const p = (globalThis as { process?: { versions?: { node?: string } } }).process;
  return typeof p?.versions?.node === 'string';
}

async function bundleBytes(bundle: string | URL | Uint8Array): Promise<{ bytes: Uint8Array; where: string }> {
  if (bundle instanceof Uint8Array) return { bytes: bundle, where: 'bundle bytes' };
  const url = bundle instanceof URL ? bundle : /^[a-z][a-z0-9+.-]*:\/\//i.test(bundle) ? new URL(bundle) : undefined;
  if (!url || url.protocol === 'file:') {
    if (!isNode()) throw new LlmccError('file paths can only be loaded in Node; pass a URL or the bytes', String(bundle));
    const { readBundleFile } = await import('./node-file.js');
    return readBundleFile(url ?? (bundle as string));
  }
  const response = await fetch(url);
  if (!response.ok) throw new LlmccError(`cannot fetch bundle (HTTP ${response.status})`, url.href);
  return { bytes: new Uint8Array(await response.arrayBuffer()), where: url.href };
}

/** Loads a bundle (path, URL or bytes), verifies it and prepares a session. */
export async function load(bundle: string | URL | Uint8Array): Promise<RuntimeSession> {
  const { bytes, where } = await bundleBytes(bundle);
  const decoded = await decodeBundle(bytes, { target: WASM_TARGET, where });
  // Never compile kernels that failed their checksum: part() verifies before returning.
  const kernelBytes = await decoded.part('kernels.wasm');
  const weights = await decoded.part('weights.bin');
  const kernels = await WebAssembly.compile(kernelBytes as Uint8Array<ArrayBuffer>);
  return createSession({ program: decoded.manifest.program, kernels, weights });
}

/** A session straight from a compiled program (no bundle bytes): what `--target wasm` uses. */
export async function sessionFromCompiled(compiled: CompiledWasm): Promise<RuntimeSession> {
  const kernels = await WebAssembly.compile(compiled.kernels as Uint8Array<ArrayBuffer>);
  return createSession({ program: compiled.program, kernels, weights: compiled.weights });
}
