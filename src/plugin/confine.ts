import * as fs from 'node:fs';
import * as path from 'node:path';
import { LlmccError } from '../../ir/errors.js';

/** Which folders a build may read models from besides the project root. */
export type OutsideRootPolicy = boolean | readonly string[];

function isInsideOrSame(folder: string, file: string): boolean {
  const rel = path.relative(folder, file);
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
}

function realOrResolved(p: string): string {
  try {
    return fs.realpathSync(p);
  } catch {
    return path.resolve(p);
  }
}

/**
 * The real path of a model imported by a build, refusing one outside `root` (after resolving
 * `..` and symlinks, so a link inside the project cannot reach elsewhere) unless `allowed`
 * is true or lists a folder holding it. A build must not turn `import '../../x.onnx?llmcc'`
 * into a way of publishing arbitrary files.
 */
export function confineModelPath(file: string, root: string, allowed: OutsideRootPolicy, importer?: string): string {
  let real: string;
  try {
    real = fs.realpathSync(file);
  } catch {
    throw new LlmccError(`model file not found${importer ? ` (imported by ${importer})` : ''}`, file);
  }
  if (allowed === true) return real;
  const folders = [root, ...(Array.isArray(allowed) ? allowed : [])].map(realOrResolved);
  if (folders.some((folder) => isInsideOrSame(folder, real))) return real;
  const how = real === path.resolve(file) ? '' : ` (resolves through a symlink to ${real})`;
  throw new LlmccError(
    `model is outside the project root ${folders[0]}${how}; allow it with llmcc({ allowOutsideRoot: true }) ` +
    `or list its folder in allowOutsideRoot`, file);
}
