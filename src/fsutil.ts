import * as fs from 'node:fs';
import * as path from 'node:path';

/**
 * Writes a file so that readers see either nothing or the whole file: write a sibling
 * temp file, then rename over the target (atomic on one file system).
 */
export function writeFileAtomic(target: string, data: string | Uint8Array): void {
  const temp = path.join(path.dirname(target), `.${path.basename(target)}.${process.pid}.tmp`);
  try {
    fs.writeFileSync(temp, data);
    fs.renameSync(temp, target);
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
  fs.mkdirSync(path.dirname(path.resolve(dir)), { recursive: true });
  const temp = `${path.resolve(dir)}.${process.pid}.tmp`;
  try {
    fs.mkdirSync(temp);
    for (const [name, bytes] of files) fs.writeFileSync(path.join(temp, name), bytes);
    fs.renameSync(temp, dir);
  } finally {
    fs.rmSync(temp, { recursive: true, force: true });
  }
}
