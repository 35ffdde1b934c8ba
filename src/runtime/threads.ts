import { Worker } from 'node:worker_threads';

/**
 * A pool of Node worker threads sharing one wasm module and one shared memory, for splitting a
 * kernel's independent work (e.g. LutMatMul's output rows) across cores. The calling thread
 * takes the first share itself; the workers wait on a shared control block (Atomics), so a
 * dispatch costs a notify and a wait instead of a postMessage round trip.
 *
 * Control block (Int32Array over a SharedArrayBuffer): [0] job generation, [1] workers still
 * running, [2] error flag; then per worker: the export index, the argument count and up to
 * MAX_ARGS arguments (as f64 in a separate Float64Array).
 */

const MAX_ARGS = 24;
const HEADER = 4;
const SLOT = 2;

const WORKER_SOURCE = `
const { workerData } = require('node:worker_threads');
const { module, memory, control, argBuffer, names, index, maxArgs } = workerData;
const instance = new WebAssembly.Instance(module, { env: { memory } });
const fns = names.map((n) => instance.exports[n]);
const ctl = new Int32Array(control);
const args = new Float64Array(argBuffer);
let seen = 0;
for (;;) {
  Atomics.wait(ctl, 0, seen);
  seen = Atomics.load(ctl, 0);
  if (seen < 0) break;
  const slot = ${HEADER} + index * ${SLOT};
  const fn = fns[ctl[slot]];
  const argc = ctl[slot + 1];
  try {
    if (argc >= 0) fn(...Array.from(args.subarray(index * maxArgs, index * maxArgs + argc)));
  } catch (error) {
    Atomics.store(ctl, 2, 1);
  }
  if (Atomics.sub(ctl, 1, 1) === 1) Atomics.notify(ctl, 1);
}
`;

export class WasmThreadPool {
  private readonly control: Int32Array;
  private readonly args: Float64Array;
  private readonly names: string[];
  private closed = false;

  private constructor(private readonly workers: Worker[], control: SharedArrayBuffer, argBuffer: SharedArrayBuffer, names: string[], private readonly local: Record<string, (...a: number[]) => void>) {
    this.control = new Int32Array(control);
    this.args = new Float64Array(argBuffer);
    this.names = names;
  }

  /**
   * Starts `threads − 1` workers instantiating `module` on `memory` (which must be shared);
   * `exports` are the calling thread's own instance exports.
   */
  static async create(
    module: WebAssembly.Module, memory: WebAssembly.Memory, exports: Record<string, (...a: number[]) => void>,
    names: string[], threads: number,
  ): Promise<WasmThreadPool> {
    if (!(memory.buffer instanceof SharedArrayBuffer)) throw new Error('thread pool: the wasm memory must be shared');
    const count = Math.max(0, threads - 1);
    const control = new SharedArrayBuffer(4 * (HEADER + SLOT * Math.max(1, count)));
    const argBuffer = new SharedArrayBuffer(8 * MAX_ARGS * Math.max(1, count));
    const workers: Worker[] = [];
    for (let index = 0; index < count; index++) {
      const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { module, memory, control, argBuffer, names, index, maxArgs: MAX_ARGS } });
      // Worker errors surface through the error flag; an exit before close is reported on the next run.
      worker.on('error', () => Atomics.store(new Int32Array(control), 2, 1));
      workers.push(worker);
    }
    // Wait until every worker has instantiated (one empty job).
    const pool = new WasmThreadPool(workers, control, argBuffer, names, exports);
    await pool.runAsyncWarmup();
    return pool;
  }

  get threads(): number {
    return this.workers.length + 1;
  }

  /**
   * Calls export `name` once per thread with `argsPerThread[i]` (thread 0 is the caller) and
   * returns when all calls have finished. Shares must write disjoint memory.
   */
  run(name: string, argsPerThread: number[][]): void {
    if (this.closed) throw new Error('thread pool: closed');
    if (argsPerThread.length !== this.threads) throw new Error(`thread pool: ${argsPerThread.length} shares for ${this.threads} threads`);
    const fnIndex = this.names.indexOf(name);
    if (fnIndex < 0) throw new Error(`thread pool: unknown export ${name}`);
    const ctl = this.control;
    this.workers.forEach((_, w) => {
      const a = argsPerThread[w + 1];
      if (a.length > MAX_ARGS) throw new Error(`thread pool: more than ${MAX_ARGS} arguments`);
      ctl[HEADER + w * SLOT] = fnIndex;
      ctl[HEADER + w * SLOT + 1] = a.length;
      this.args.set(a, w * MAX_ARGS);
    });
    this.dispatch();
    this.local[name](...argsPerThread[0]);
    this.join();
  }

  private dispatch(): void {
    Atomics.store(this.control, 1, this.workers.length);
    Atomics.add(this.control, 0, 1);
    Atomics.notify(this.control, 0);
  }

  private join(): void {
    const ctl = this.control;
    for (let spins = 0; Atomics.load(ctl, 1) !== 0 && Atomics.load(ctl, 2) === 0; spins++) {
      const left = Atomics.load(ctl, 1);
      if (left !== 0 && spins > 2000) Atomics.wait(ctl, 1, left, 1);
    }
    if (Atomics.load(ctl, 2) !== 0) {
      Atomics.store(ctl, 2, 0);
      throw new Error('thread pool: a worker failed');
    }
  }

  private async runAsyncWarmup(): Promise<void> {
    const ctl = this.control;
    this.workers.forEach((_, w) => { ctl[HEADER + w * SLOT + 1] = -1; });
    this.dispatch();
    // Workers start asynchronously: poll without blocking the event loop that spawns them.
    while (Atomics.load(ctl, 1) !== 0) {
      if (Atomics.load(ctl, 2) !== 0) throw new Error('thread pool: a worker failed to start');
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    Atomics.store(this.control, 0, -1);
    Atomics.notify(this.control, 0);
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}

/** Splits [0, count) into `parts` contiguous ranges aligned to `step` (the last takes the rest). */
export function splitRange(count: number, parts: number, step = 1): [number, number][] {
  const units = Math.ceil(count / step);
  const ranges: [number, number][] = [];
  for (let i = 0; i < parts; i++) {
    const begin = Math.min(count, Math.round((units * i) / parts) * step);
    const end = Math.min(count, Math.round((units * (i + 1)) / parts) * step);
    ranges.push([begin, end]);
  }
  return ranges;
}
