/**
 * ONNX external data: tensor bytes stored in a side file next to the model, located by
 * the `location` / `offset` / `length` keys of TensorProto.external_data.
 *
 * Safety: a model file must not make llmcc read arbitrary files, so the location has to
 * stay inside the model's folder after resolving `..`, absolute paths and symlinks.
 * Reads are positional on a file descriptor, so a multi-GiB data file is never read whole.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { LlmccError } from '../../ir/errors.js';
import type { TensorProto } from './proto.js';

/** A validated external-data record. */
export interface ExternalDataRef {
  /** The `location` as written in the model (for messages and the text IR). */
  location: string;
  /** The resolved real path of the data file. */
  file: string;
  offset: number;
  length: number;
}

function parseNonNegativeInt(text: string, key: string, where: string): number {
  if (!/^\d+$/.test(text.trim())) {
    throw new LlmccError(`external data ${key} "${text}" is not a non-negative integer`, where);
  }
  const n = Number(text.trim());
  if (!Number.isSafeInteger(n)) throw new LlmccError(`external data ${key} ${text} is too large`, where);
  return n;
}

function realFolder(folder: string, where: string): string {
  try {
    return fs.realpathSync(folder);
  } catch {
    throw new LlmccError(`model folder "${folder}" for external data does not exist`, where);
  }
}

/**
 * Resolves and checks a tensor's external-data record: location inside `baseDir`, the file
 * exists and is long enough for `offset + length` (length defaults to `neededBytes`).
 * `where` names the tensor and model for messages.
 */
export function resolveExternalData(
  proto: TensorProto,
  baseDir: string | undefined,
  neededBytes: number,
  where: string,
  cache?: ExternalFileCache,
): ExternalDataRef {
  const entries = new Map<string, string>();
  for (const entry of proto.externalData ?? []) entries.set(entry.key ?? '', entry.value ?? '');
  const location = entries.get('location');
  if (!location) throw new LlmccError('external data has no "location"', where);
  if (baseDir === undefined) {
    throw new LlmccError(`external data "${location}" cannot be located: no model folder is known`, where);
  }
  // Other keys (checksum, …) carry nothing we need; ONNX Runtime ignores them too.
  const offset = entries.has('offset') ? parseNonNegativeInt(entries.get('offset') ?? '', 'offset', where) : 0;
  const declaredLength = entries.has('length') ? parseNonNegativeInt(entries.get('length') ?? '', 'length', where) : undefined;
  const length = declaredLength ?? neededBytes;
  if (declaredLength !== undefined && declaredLength !== neededBytes) {
    throw new LlmccError(
      `external data "${location}" declares length ${declaredLength} but the tensor needs ${neededBytes} bytes`, where);
  }

  if (location.includes('\0')) throw new LlmccError(`external data location "${location}" is not a valid path`, where);
  if (path.isAbsolute(location) || path.win32.isAbsolute(location)) {
    throw new LlmccError(`external data location "${location}" is an absolute path; it must be relative to the model's folder`, where);
  }
  const key = `${baseDir}\0${location}`;
  let checked = cache?.get(key);
  if (!checked) {
    checked = checkLocation(baseDir, location, where);
    cache?.set(key, checked);
  }
  const { file, size } = checked;
  if (size < offset + length) {
    throw new LlmccError(
      `external data file "${location}" has ${size} bytes but the tensor needs bytes ${offset}..${offset + length}`, where);
  }
  return { location, file, offset, length };
}

/** Resolved files by model folder and location, so a model with many tensors in one file checks it once. */
export type ExternalFileCache = Map<string, { file: string; size: number }>;

function checkLocation(baseDir: string, location: string, where: string): { file: string; size: number } {
  const folder = realFolder(baseDir, where);
  const candidate = path.resolve(folder, location);
  if (!isInside(folder, candidate)) {
    throw new LlmccError(`external data location "${location}" leaves the model's folder`, where);
  }
  let file: string;
  try {
    file = fs.realpathSync(candidate);
  } catch {
    throw new LlmccError(`external data file "${location}" not found in ${folder}`, where);
  }
  // A symlink inside the folder may still point elsewhere.
  if (!isInside(folder, file)) {
    throw new LlmccError(`external data location "${location}" resolves (through a symlink) outside the model's folder`, where);
  }
  let stat: fs.Stats;
  try {
    stat = fs.statSync(file);
  } catch {
    throw new LlmccError(`external data file "${location}" cannot be read`, where);
  }
  if (!stat.isFile()) throw new LlmccError(`external data location "${location}" is not a regular file`, where);
  return { file, size: stat.size };
}

function isInside(folder: string, file: string): boolean {
  const rel = path.relative(folder, file);
  return rel !== '' && !rel.startsWith('..') && !path.isAbsolute(rel);
}

/** Reads exactly the record's bytes with positional reads (no whole-file buffer). */
export function readExternalData(ref: ExternalDataRef, where: string): Uint8Array {
  const bytes = new Uint8Array(ref.length);
  let fd: number;
  try {
    fd = fs.openSync(ref.file, 'r');
  } catch {
    throw new LlmccError(`external data file "${ref.location}" cannot be opened`, where);
  }
  try {
    let done = 0;
    while (done < ref.length) {
      // Chunks keep each read below the 2 GiB per-call limit of fs.readSync.
      const chunk = Math.min(ref.length - done, 1 << 30);
      const n = fs.readSync(fd, bytes, done, chunk, ref.offset + done);
      if (n === 0) {
        throw new LlmccError(`external data file "${ref.location}" ended at byte ${ref.offset + done}, before the tensor's ${ref.length} bytes`, where);
      }
      done += n;
    }
  } finally {
    fs.closeSync(fd);
  }
  return bytes;
}
