/**
 * Node only: reads a bundle file part by part, verifying each part's sha256 with node:crypto
 * as its bytes arrive. A part can be read straight into caller-given buffers (the wasm memory,
 * for the weights): no file-sized buffer, no copy. The header and manifest are checked by
 * format.ts's decodeBundleHead (the same refusals as `load(bytes)`). WebCrypto's digest copies
 * its input and ran about 7x slower than node:crypto on a 1.4 GB weights part.
 */
import { createHash } from 'node:crypto';
import { type FileHandle, open } from 'node:fs/promises';
import { LlmccError } from '../../ir/errors.js';
import { type BundleManifest, HEADER_BYTES, decodeBundleHead } from './format.js';

/** Bytes per read call: large enough to keep the disk busy, small enough to overlap hashing. */
const READ_CHUNK = 32 << 20;
/** The first read: the header and, for all but huge programs, the whole manifest. */
const HEAD_GUESS = 1 << 20;

/** A bundle file whose header and manifest are checked; parts are read on demand. */
export interface BundleFile {
  file: string;
  manifest: BundleManifest;
  partsStart: number;
}

async function openFile(file: string): Promise<FileHandle> {
  try {
    return await open(file, 'r');
  } catch (error) {
    const code = (error as { code?: string }).code;
    throw new LlmccError(code === 'ENOENT' ? 'bundle file not found' : `cannot read bundle (${code ?? String(error)})`, file);
  }
}

/** Fills `into` from the file at `position`; returns how many bytes there were (fewer at the end of the file). */
async function readFully(handle: FileHandle, into: Uint8Array, position: number): Promise<number> {
  let done = 0;
  while (done < into.byteLength) {
    const { bytesRead } = await handle.read(into, done, into.byteLength - done, position + done);
    if (bytesRead === 0) break;
    done += bytesRead;
  }
  return done;
}

function readError(error: unknown, file: string): Error {
  if (error instanceof LlmccError) return error;
  const code = (error as { code?: string }).code;
  return new LlmccError(`cannot read bundle (${code ?? String(error)})`, file);
}

/** Reads and checks the header and manifest of `file`. */
export async function readBundleFileHead(file: string, options: { target?: string } = {}): Promise<BundleFile> {
  const handle = await openFile(file);
  try {
    const size = (await handle.stat()).size;
    let head = new Uint8Array(Math.min(size, HEAD_GUESS));
    let have = await readFully(handle, head, 0);
    if (have >= HEADER_BYTES) {
      const needed = HEADER_BYTES + new DataView(head.buffer).getUint32(12, true);
      if (needed > have && needed <= size) {
        head = new Uint8Array(needed);
        have = await readFully(handle, head, 0);
      }
    }
    const { manifest, partsStart } = await decodeBundleHead(head.subarray(0, have), size, { target: options.target, where: file });
    return { file, manifest, partsStart };
  } catch (error) {
    throw readError(error, file);
  } finally {
    await handle.close();
  }
}

function partOf(bundle: BundleFile, name: string): BundleManifest['parts'][number] {
  const part = bundle.manifest.parts.find((p) => p.name === name);
  if (!part) throw new LlmccError(`bundle has no part '${name}'`, bundle.file);
  return part;
}

/**
 * Reads part `name` into `destinations`, consecutive buffers covering the part exactly, in
 * order; then checks the part's sha256, refusing a mismatch. Each read of the next chunk runs
 * on libuv's pool while the last one is hashed. The buffers hold unverified bytes until this
 * resolves: callers must not use them after a rejection.
 */
export async function readBundlePartInto(bundle: BundleFile, name: string, destinations: readonly Uint8Array[]): Promise<void> {
  const part = partOf(bundle, name);
  const total = destinations.reduce((n, d) => n + d.byteLength, 0);
  if (total !== part.byteLength) throw new LlmccError(`internal error: ${total} bytes of buffers for part '${name}' of ${part.byteLength} bytes`, bundle.file);
  const chunks: Uint8Array[] = [];
  for (const d of destinations) {
    for (let at = 0; at < d.byteLength; at += READ_CHUNK) chunks.push(d.subarray(at, Math.min(d.byteLength, at + READ_CHUNK)));
  }
  const hash = createHash('sha256');
  const handle = await openFile(bundle.file);
  try {
    let position = bundle.partsStart + part.offset;
    const readAt = async (chunk: Uint8Array, at: number): Promise<void> => {
      if (await readFully(handle, chunk, at) !== chunk.byteLength) {
        throw new LlmccError(`bundle is truncated (part '${name}' ends past the end of the file)`, bundle.file);
      }
    };
    let pending = chunks.length ? readAt(chunks[0]!, position) : undefined;
    for (let i = 0; i < chunks.length; i++) {
      await pending;
      position += chunks[i]!.byteLength;
      pending = i + 1 < chunks.length ? readAt(chunks[i + 1]!, position) : undefined;
      hash.update(chunks[i]!);
    }
  } catch (error) {
    throw readError(error, bundle.file);
  } finally {
    await handle.close();
  }
  if (hash.digest('hex') !== part.sha256) {
    throw new LlmccError(`bundle part '${name}' checksum mismatch (the file is corrupted or was modified)`, bundle.file);
  }
}

/** Reads part `name` into a new buffer and verifies it. */
export async function readBundlePart(bundle: BundleFile, name: string): Promise<Uint8Array> {
  const bytes = new Uint8Array(partOf(bundle, name).byteLength);
  await readBundlePartInto(bundle, name, [bytes]);
  return bytes;
}
