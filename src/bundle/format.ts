/**
 * The llmcc bundle: one file holding a compiled program (see README.md in this folder).
 * Encoding and decoding are browser-safe (WebCrypto for sha256, no `node:` imports); writing
 * files atomically is in write.ts.
 */
import { LlmccError } from '../../ir/errors.js';
import type { CompiledWasm, WasmProgram } from '../../targets/wasm/program.js';

export const BUNDLE_MAGIC = 'LLMCCBND';
/** 2: the LUT GEMV kernels take a [tile_begin, tile_end) row range (threads); version-1 kernels are not launched that way. */
export const BUNDLE_FORMAT_VERSION = 2;
/** magic (8) + format version u32 + manifest length u32 + manifest sha256 (32). */
export const HEADER_BYTES = 48;
/** Parts start on this alignment (a cache line; 16-byte v128 alignment follows). */
export const PART_ALIGN = 64;

export interface BundlePart {
  name: string;
  offset: number;
  byteLength: number;
  sha256: string;
}

export interface BundleManifest {
  format: number;
  target: string;
  producer: string;
  parts: BundlePart[];
  program: WasmProgram;
}

/** A bundle read from bytes: manifest checked; parts are checked by `part`. */
export interface DecodedBundle {
  manifest: BundleManifest;
  /** The named part's bytes after verifying its size and sha256. */
  part(name: string): Promise<Uint8Array>;
}

export async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const digest = await globalThis.crypto.subtle.digest('SHA-256', bytes as Uint8Array<ArrayBuffer>);
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, '0')).join('');
}

function align(n: number): number {
  return Math.ceil(n / PART_ALIGN) * PART_ALIGN;
}

/** The parts of a compiled program, in file order. */
export function bundleParts(compiled: CompiledWasm): [string, Uint8Array][] {
  return [['kernels.wasm', compiled.kernels], ['weights.bin', compiled.weights]];
}

/** Where everything goes in the file: the header + manifest bytes, then each part at `partsStart + offset`. */
export interface BundleLayout {
  head: Uint8Array;
  partsStart: number;
  parts: BundlePart[];
  totalBytes: number;
}

/**
 * Lays a bundle out given each part's sha256 (hashed by the caller: WebCrypto here, node:crypto
 * in write.ts, which streams the parts to disk without assembling the file in memory).
 */
export async function bundleLayout(compiled: CompiledWasm, partHashes: readonly string[]): Promise<BundleLayout> {
  // Part offsets depend on the manifest's length and the manifest lists them: offsets are
  // relative to the end of the (aligned) manifest, so one pass suffices.
  const parts: BundlePart[] = [];
  let relative = 0;
  bundleParts(compiled).forEach(([name, bytes], i) => {
    parts.push({ name, offset: relative, byteLength: bytes.byteLength, sha256: partHashes[i]! });
    relative = align(relative + bytes.byteLength);
  });
  const manifest: BundleManifest = {
    format: BUNDLE_FORMAT_VERSION,
    target: compiled.program.target,
    producer: compiled.program.producer,
    parts,
    program: compiled.program,
  };
  const json = new TextEncoder().encode(JSON.stringify(manifest));
  const partsStart = align(HEADER_BYTES + json.byteLength);
  const head = new Uint8Array(partsStart);
  const view = new DataView(head.buffer);
  head.set(new TextEncoder().encode(BUNDLE_MAGIC), 0);
  view.setUint32(8, BUNDLE_FORMAT_VERSION, true);
  view.setUint32(12, json.byteLength, true);
  head.set(hexToBytes(await sha256Hex(json)), 16);
  head.set(json, HEADER_BYTES);
  return { head, partsStart, parts, totalBytes: partsStart + relative };
}

/** The whole bundle in memory (the browser and the build plugin; the CLI streams with write.ts). */
export async function encodeBundle(compiled: CompiledWasm): Promise<Uint8Array> {
  const partBytes = bundleParts(compiled);
  const layout = await bundleLayout(compiled, await Promise.all(partBytes.map(([, bytes]) => sha256Hex(bytes))));
  const out = new Uint8Array(layout.totalBytes);
  out.set(layout.head, 0);
  partBytes.forEach(([, bytes], i) => out.set(bytes, layout.partsStart + layout.parts[i]!.offset));
  return out;
}

function hexToBytes(hex: string): Uint8Array {
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}

/** A bundle's checked header and manifest, and where its parts start. */
export interface BundleHead {
  manifest: BundleManifest;
  partsStart: number;
}

/**
 * Reads a bundle's header and manifest from its first bytes (`head`: at least the header and
 * manifest, or the whole file) given the file's total size, refusing with one clear line: not a
 * bundle, another format version, truncated, a manifest checksum mismatch, or (with `target`)
 * another target. Parts are not read: a file can be read part by part after this.
 */
export async function decodeBundleHead(head: Uint8Array, totalBytes: number, options: { target?: string; where?: string } = {}): Promise<BundleHead> {
  const where = options.where;
  if (totalBytes < 8 || head.byteLength < 8 || new TextDecoder().decode(head.subarray(0, 8)) !== BUNDLE_MAGIC) {
    throw new LlmccError(totalBytes < 8 ? 'not an llmcc bundle (file is truncated or empty)' : 'not an llmcc bundle (bad magic)', where);
  }
  if (totalBytes < HEADER_BYTES || head.byteLength < HEADER_BYTES) throw new LlmccError(`bundle is truncated (${totalBytes} bytes, header needs ${HEADER_BYTES})`, where);
  const view = new DataView(head.buffer, head.byteOffset, head.byteLength);
  const version = view.getUint32(8, true);
  if (version !== BUNDLE_FORMAT_VERSION) {
    throw new LlmccError(`bundle format version ${version} is not supported (this llmcc reads version ${BUNDLE_FORMAT_VERSION}); recompile the model`, where);
  }
  const manifestLength = view.getUint32(12, true);
  if (HEADER_BYTES + manifestLength > totalBytes || HEADER_BYTES + manifestLength > head.byteLength) {
    throw new LlmccError(`bundle is truncated (${totalBytes} bytes, the manifest ends at ${HEADER_BYTES + manifestLength})`, where);
  }
  const json = head.subarray(HEADER_BYTES, HEADER_BYTES + manifestLength);
  const expected = Array.from(head.subarray(16, 48), (b) => b.toString(16).padStart(2, '0')).join('');
  if ((await sha256Hex(json)) !== expected) throw new LlmccError('bundle manifest checksum mismatch (the file is corrupted or was modified)', where);
  let manifest: BundleManifest;
  try {
    manifest = JSON.parse(new TextDecoder().decode(json)) as BundleManifest;
  } catch {
    throw new LlmccError('bundle manifest is not valid JSON', where);
  }
  if (manifest.format !== version) {
    throw new LlmccError(`bundle manifest says format version ${manifest.format} but its header says ${version}`, where);
  }
  if (options.target !== undefined && manifest.target !== options.target) {
    throw new LlmccError(`bundle is for target '${manifest.target}', not '${options.target}'`, where);
  }
  const partsStart = align(HEADER_BYTES + manifestLength);
  for (const part of manifest.parts) {
    const end = partsStart + part.offset + part.byteLength;
    if (end > totalBytes) {
      throw new LlmccError(`bundle is truncated (${totalBytes} bytes, part '${part.name}' ends at ${end})`, where);
    }
  }
  return { manifest, partsStart };
}

/** Reads a bundle held in memory: header and manifest checked now (decodeBundleHead), parts by `part`. */
export async function decodeBundle(bytes: Uint8Array, options: { target?: string; where?: string } = {}): Promise<DecodedBundle> {
  const where = options.where;
  const { manifest, partsStart } = await decodeBundleHead(bytes, bytes.byteLength, options);
  const verified = new Map<string, Uint8Array>();
  return {
    manifest,
    async part(name: string): Promise<Uint8Array> {
      const done = verified.get(name);
      if (done) return done;
      const part = manifest.parts.find((p) => p.name === name);
      if (!part) throw new LlmccError(`bundle has no part '${name}'`, where);
      const start = partsStart + part.offset;
      const data = bytes.subarray(start, start + part.byteLength);
      if ((await sha256Hex(data)) !== part.sha256) {
        throw new LlmccError(`bundle part '${name}' checksum mismatch (the file is corrupted or was modified)`, where);
      }
      verified.set(name, data);
      return data;
    },
  };
}
