import * as fs from 'node:fs';
import * as path from 'node:path';
import { LlmccError } from '../../ir/errors.js';
import type { CompiledWasm } from '../../targets/wasm/program.js';
import { encodeBundle } from './format.js';

/**
 * Writes bytes so that `target` is either absent/unchanged or complete: a sibling temp
 * file is written then renamed over it. On an error, SIGINT or SIGTERM the temp file is
 * removed (signals then exit 130/143 as usual), so nothing half-written is left behind.
 */
export async function writeFileAtomicAsync(target: string, data: Uint8Array): Promise<void> {
  const dir = path.dirname(path.resolve(target));
  if (!fs.existsSync(dir)) throw new LlmccError('output folder does not exist', dir);
  const temp = path.join(dir, `.${path.basename(target)}.${process.pid}.tmp`);
  const onSignal = (signal: NodeJS.Signals): void => {
    fs.rmSync(temp, { force: true });
    process.exit(signal === 'SIGINT' ? 130 : 143);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    await fs.promises.writeFile(temp, data);
    await fs.promises.rename(temp, target);
  } finally {
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
    fs.rmSync(temp, { force: true });
  }
}

/** Encodes a compiled program as a bundle file (see README.md), atomically. */
export async function writeBundle(file: string, compiled: CompiledWasm): Promise<number> {
  const bytes = await encodeBundle(compiled);
  await writeFileAtomicAsync(file, bytes);
  return bytes.byteLength;
}
