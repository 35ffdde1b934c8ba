import * as fs from 'node:fs';
import * as path from 'node:path';
import { LlmccError } from '../ir/errors.js';

/** File-system failures while writing outputs (missing folder, permissions, full disk) are the user's to fix: one clear line. */
function writeError(error: unknown, target: string): unknown {
  if (error instanceof LlmccError) return error;
  const code = (error as NodeJS.ErrnoException).code;
  const reasons: Record<string, string> = {
    ENOENT: 'its folder does not exist', EACCES: 'permission denied', EPERM: 'permission denied',
    ENOSPC: 'no space left on the device', EISDIR: 'it is a directory', ENOTDIR: 'a part of the path is not a directory',
    EROFS: 'read-only file system',
  };
  const reason = (code && reasons[code]) ?? (error instanceof Error ? error.message : String(error));
  return new LlmccError(`cannot write output: ${reason}`, target);
}

/**
 * Writes a file so that readers see either nothing or the whole file: write a sibling
 * temp file, then rename over the target (atomic on one file system).
 */
export function writeFileAtomic(target: string, data: string | Uint8Array): void {
  const temp = path.join(path.dirname(target), `.${path.basename(target)}.${process.pid}.tmp`);
  try {
    fs.writeFileSync(temp, data);
    fs.renameSync(temp, target);
  } catch (error) {
    throw writeError(error, target);
  } finally {
    fs.rmSync(temp, { force: true });
  }
}

/**
 * Creates `dir` holding `files` (name → bytes) all at once: everything is written into a
 * sibling temp folder first, which is renamed into place only when complete. When `dir`
 * already exists, each file is replaced atomically instead.
 */
export function writeDirAtomic(dir: string, files: ReadonlyMap<string, Uint8Array>): void {
  if (fs.existsSync(dir)) {
    for (const [name, bytes] of files) writeFileAtomic(path.join(dir, name), bytes);
    return;
  }
  const temp = `${path.resolve(dir)}.${process.pid}.tmp`;
  try {
    fs.mkdirSync(path.dirname(path.resolve(dir)), { recursive: true });
    fs.mkdirSync(temp);
    for (const [name, bytes] of files) fs.writeFileSync(path.join(temp, name), bytes);
    fs.renameSync(temp, dir);
  } catch (error) {
    throw writeError(error, dir);
  } finally {
    fs.rmSync(temp, { recursive: true, force: true });
  }
}
