import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { LlmccError } from '../../ir/errors.js';
import type { CompiledWasm } from '../../targets/wasm/program.js';
import { bundleLayout, bundleParts } from './format.js';

/**
 * Writes bytes so that `target` is either absent/unchanged or complete: a sibling temp
 * file is written then renamed over it. On an error, SIGINT or SIGTERM the temp file is
 * removed (signals then exit 130/143 as usual), so nothing half-written is left behind.
 */
export async function writeFileAtomicAsync(target: string, data: Uint8Array): Promise<void> {
  await writeAtomically(target, (temp) => fs.promises.writeFile(temp, data));
}

/**
 * Runs `write(temp)` on a sibling temp file, then renames it over `target`. On an error,
 * SIGINT or SIGTERM the temp file is removed (signals then exit 130/143 as usual).
 */
async function writeAtomically(target: string, write: (temp: string) => Promise<void>): Promise<void> {
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
    await write(temp);
    await fs.promises.rename(temp, target);
  } finally {
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
    fs.rmSync(temp, { force: true });
  }
}

const WRITE_CHUNK = 1 << 30;

/**
 * Writes a compiled program as a bundle file (see README.md), atomically. The parts are hashed
 * and written where they lie, never copied into one file-sized buffer: a 1B-parameter model's
 * weights are not held twice.
 */
export async function writeBundle(file: string, compiled: CompiledWasm): Promise<number> {
  const parts = bundleParts(compiled);
  const layout = await bundleLayout(compiled, parts.map(([, bytes]) => createHash('sha256').update(bytes).digest('hex')));
  await writeAtomically(file, async (temp) => {
    const handle = await fs.promises.open(temp, 'w');
    try {
      await handle.write(layout.head, 0, layout.head.byteLength, 0);
      for (const [i, [, bytes]] of parts.entries()) {
        const start = layout.partsStart + layout.parts[i]!.offset;
        // One write call takes at most 2 GiB.
        for (let done = 0; done < bytes.byteLength; done += WRITE_CHUNK) {
          const length = Math.min(WRITE_CHUNK, bytes.byteLength - done);
          await handle.write(bytes, done, length, start + done);
        }
      }
      await handle.truncate(layout.totalBytes);
    } finally {
      await handle.close();
    }
  });
  return layout.totalBytes;
}
