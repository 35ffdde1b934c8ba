import * as fs from 'node:fs';
import * as path from 'node:path';
import { writeFileAtomicAsync } from '../bundle/write.js';
import { type CompiledAsset, sourcesFingerprint } from './compile-model.js';

interface Entry {
  bytes: Uint8Array;
  sources: string[];
  fingerprint: string;
}

/**
 * The dev server's compiled bundles by cache key: in memory, and on disk under Vite's
 * `cacheDir` so a restarted server does not recompile. An entry is used only while none of
 * its sources (the model and its external data) changed size or mtime.
 */
export class DevBundleCache {
  private readonly memory = new Map<string, Entry>();
  private readonly pending = new Map<string, Promise<Entry>>();

  constructor(private readonly folder: string | undefined) {}

  /** The fresh entry for `key`, compiling (once, however many requests wait) when stale. */
  async get(key: string, compile: () => Promise<CompiledAsset>): Promise<Entry> {
    const fresh = this.fresh(key);
    if (fresh) return fresh;
    let job = this.pending.get(key);
    if (!job) {
      job = this.compileAndStore(key, compile).finally(() => this.pending.delete(key));
      this.pending.set(key, job);
    }
    return job;
  }

  /** The entry if it is still valid; undefined when never built or a source changed. */
  fresh(key: string): Entry | undefined {
    const entry = this.memory.get(key) ?? this.readDisk(key);
    if (!entry || sourcesFingerprint(entry.sources) !== entry.fingerprint) return undefined;
    this.memory.set(key, entry);
    return entry;
  }

  private async compileAndStore(key: string, compile: () => Promise<CompiledAsset>): Promise<Entry> {
    const asset = await compile();
    // Fingerprint after compiling: a source edited meanwhile makes the next request rebuild.
    const entry: Entry = { bytes: asset.bytes, sources: asset.sources, fingerprint: sourcesFingerprint(asset.sources) };
    this.memory.set(key, entry);
    await this.writeDisk(key, entry);
    return entry;
  }

  private readDisk(key: string): Entry | undefined {
    if (!this.folder) return undefined;
    try {
      const meta = JSON.parse(fs.readFileSync(path.join(this.folder, `${key}.json`), 'utf8')) as Omit<Entry, 'bytes'>;
      const bytes = new Uint8Array(fs.readFileSync(path.join(this.folder, `${key}.llmcc`)));
      return { bytes, sources: meta.sources, fingerprint: meta.fingerprint };
    } catch {
      return undefined;
    }
  }

  private async writeDisk(key: string, entry: Entry): Promise<void> {
    if (!this.folder) return;
    try {
      fs.mkdirSync(this.folder, { recursive: true });
      // Bundle first, then the metadata that makes it valid: a crash between leaves a miss.
      await writeFileAtomicAsync(path.join(this.folder, `${key}.llmcc`), entry.bytes);
      const meta = JSON.stringify({ sources: entry.sources, fingerprint: entry.fingerprint });
      await writeFileAtomicAsync(path.join(this.folder, `${key}.json`), new TextEncoder().encode(meta));
    } catch {
      // The disk cache is an optimisation; an unwritable cache folder only costs recompiles.
    }
  }
}
