import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { LlmccError } from '../../ir/errors.js';

/** Node only (imported on demand by index.ts): a bundle file's bytes. */
export async function readBundleFile(location: string | URL): Promise<{ bytes: Uint8Array; where: string }> {
  const file = location instanceof URL ? fileURLToPath(location) : location;
  try {
    return { bytes: new Uint8Array(await readFile(file)), where: file };
  } catch (error) {
    const code = (error as { code?: string }).code;
    throw new LlmccError(code === 'ENOENT' ? 'bundle file not found' : `cannot read bundle (${code ?? String(error)})`, file);
  }
}
