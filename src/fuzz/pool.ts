/**
 * Worker threads with a per-case time bound. A case that runs past the deadline, or
 * kills its worker (uncaught exception, out of memory), is reported as a finding and the
 * worker is replaced.
 */
import * as os from 'node:os';
import { Worker, type WorkerOptions } from 'node:worker_threads';
import type { Outcome } from './case.js';
import type { SeedSpec } from './seeds.js';

export interface CaseRequest {
  index: number;
  seedIndex: number;
  caseSeed: number;
  pristine: boolean;
  lower: boolean;
  /** Targets besides the reference; undefined: all registered. */
  targets?: string[];
}

export interface CaseResult {
  index: number;
  outcome: Outcome;
  mutations: string[];
}

export interface PoolOptions {
  shared: string;
  workDir: string;
  seeds: SeedSpec[];
  workers: number;
  timeoutMs: number;
  /** Heap limit per worker, so a runaway case fails its worker, not the run. */
  heapMb: number;
  /** Targets besides the reference; undefined: all registered. */
  targets?: string[];
}

/** The worker entry next to this file: `.ts` under tsx, `.js` when built. */
function workerUrl(): URL {
  const ext = import.meta.url.endsWith('.ts') ? '.ts' : '.js';
  return new URL(`./worker${ext}`, import.meta.url);
}

/** Where binaryen (the wasm target's code generator) resolves from here, if installed. */
function binaryenUrl(): string | undefined {
  try {
    return import.meta.resolve('binaryen');
  } catch {
    return undefined;
  }
}

class Slot {
  private worker: Worker | undefined;
  private isReady = false;
  private current: { request: CaseRequest; resolve: (r: CaseResult) => void; timer: NodeJS.Timeout | undefined } | undefined;

  constructor(private readonly options: PoolOptions, private readonly id: number) {}

  private start(): Worker {
    const isTs = import.meta.url.endsWith('.ts');
    // Under tsx (npm run fuzz) the worker registers the TypeScript loader itself first.
    // It loads binaryen (15 MB of JS) before that: through tsx's hooks the import takes
    // ~50 s instead of ~3 s, and the later import from the wasm target hits the module cache.
    const preload = binaryenUrl();
    const bootstrap = `${preload ? `import(${JSON.stringify(preload)}).catch(() => undefined).then(() => ` : 'Promise.resolve().then(() => '}` +
      `import('tsx/esm/api')).then((tsx) => { tsx.register(); return import(${JSON.stringify(workerUrl().href)}); });`;
    const entry = isTs
      ? new Worker(bootstrap, { eval: true, ...this.workerOptions() })
      : new Worker(workerUrl(), this.workerOptions());
    return this.attach(entry);
  }

  private workerOptions(): WorkerOptions {
    return {
      workerData: {
        shared: this.options.shared, workDir: `${this.options.workDir}/w${this.id}`, seeds: this.options.seeds,
        ...(this.options.targets ? { targets: this.options.targets } : {}),
      },
      resourceLimits: { maxOldGenerationSizeMb: this.options.heapMb },
      stdout: true,
      stderr: true,
    };
  }

  private attach(worker: Worker): Worker {
    // Ops must not print; drain so a chatty case cannot block.
    worker.stdout.resume();
    worker.stderr.resume();
    worker.on('message', (message: CaseResult | 'ready') => {
      if (message === 'ready') this.ready(worker);
      else this.finish(message);
    });
    worker.on('error', (error) => {
      if (this.worker === worker) this.worker = undefined;
      this.fail(`worker crashed: ${error.name}: ${error.message}`, error.stack);
    });
    worker.on('exit', (code) => {
      if (this.worker === worker) {
        this.worker = undefined;
        this.fail(`worker exited with code ${code}`);
      }
    });
    return worker;
  }

  run(request: CaseRequest): Promise<CaseResult> {
    return new Promise((resolve) => {
      this.current = { request, resolve, timer: undefined };
      if (this.worker && this.isReady) this.send();
      else if (!this.worker) {
        this.isReady = false;
        this.worker = this.start();
      }
    });
  }

  private ready(worker: Worker): void {
    if (worker !== this.worker) return;
    this.isReady = true;
    if (this.current) this.send();
  }

  private send(): void {
    const current = this.current!;
    current.timer = setTimeout(() => this.timeout(), this.options.timeoutMs);
    this.worker!.postMessage(current.request);
  }

  private finish(result: CaseResult): void {
    const current = this.current;
    if (!current || current.request.index !== result.index) return;
    clearTimeout(current.timer);
    this.current = undefined;
    current.resolve(result);
  }

  private fail(message: string, stack?: string): void {
    const current = this.current;
    if (!current) return;
    this.finish({
      index: current.request.index,
      outcome: { status: 'finding', stage: 'run', message, ...(stack ? { stack } : {}) },
      mutations: [],
    });
  }

  private timeout(): void {
    const worker = this.worker;
    this.worker = undefined;
    this.fail(`timeout: no result within ${this.options.timeoutMs} ms (hang or runaway computation)`);
    void worker?.terminate();
  }

  async close(): Promise<void> {
    const worker = this.worker;
    this.worker = undefined;
    await worker?.terminate();
  }
}

export class Pool {
  private readonly slots: Slot[];

  constructor(options: PoolOptions) {
    const count = Math.max(1, Math.min(options.workers, os.availableParallelism()));
    this.slots = Array.from({ length: count }, (_, i) => new Slot(options, i));
  }

  get size(): number {
    return this.slots.length;
  }

  /**
   * Runs requests from `next` (undefined: no more) on every worker until it runs dry,
   * calling `onResult` as each finishes.
   */
  async drain(next: () => CaseRequest | undefined, onResult: (r: CaseResult) => void): Promise<void> {
    await Promise.all(this.slots.map(async (slot) => {
      for (let request = next(); request; request = next()) onResult(await slot.run(request));
    }));
  }

  async close(): Promise<void> {
    await Promise.all(this.slots.map((s) => s.close()));
  }
}
