import { Worker } from 'node:worker_threads';

/**
 * A pool of Node worker threads sharing one wasm module and one shared memory, for splitting a
 * kernel's independent work (e.g. LutMatMul's output rows) across cores. The calling thread
 * takes the first share itself; the workers wait on a shared control block (Atomics), so a
 * dispatch costs a notify and a wait instead of a postMessage round trip. A worker spins a
 * little before it sleeps: the kernels of one decode step follow each other within
 * microseconds, and a futex wake-up costs tens of them. Node only: the runtime imports this
 * module dynamically when a session asks for threads (browsers would need cross-origin
 * isolation and Web Workers).
 *
 * Control block (Int32Array over a SharedArrayBuffer): [0] job generation, [1] workers still
 * running, [2] error flag; then per worker: the export index, the argument count and up to
 * MAX_ARGS arguments (as f64 in a separate Float64Array).
 */

const MAX_ARGS = 24;
const HEADER = 4;
const SLOT = 2;

/** How long the caller waits for the workers' shares of one call before it gives up. */
const JOIN_LIMIT_MS = 120_000;

/** Polls of the job generation before a worker sleeps (tens of microseconds). */
const WORKER_SPINS = 20000;

const WORKER_SOURCE = `
const { workerData } = require('node:worker_threads');
const { module, memory, control, argBuffer, names, index, maxArgs } = workerData;
// The imports the runtime gives the module: the memory, and Math functions by name.
const imports = {};
for (const imp of WebAssembly.Module.imports(module)) {
  imports[imp.module] ??= {};
  imports[imp.module][imp.name] = imp.kind === 'memory' ? memory : Math[imp.name];
}
const instance = new WebAssembly.Instance(module, imports);
const fns = names.map((n) => instance.exports[n]);
const ctl = new Int32Array(control);
const args = new Float64Array(argBuffer);
let seen = 0;
for (;;) {
  for (let spin = 0; spin < ${WORKER_SPINS} && Atomics.load(ctl, 0) === seen; spin++);
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
      // A worker that exits before close would leave the caller waiting for its share.
      worker.on('exit', () => { if (!pool.closed) Atomics.store(new Int32Array(control), 2, 1); });
      // Idle workers do not keep the process alive (a session has no mandatory close).
      worker.unref();
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
    try {
      this.local[name](...argsPerThread[0]);
    } finally {
      // Even when the caller's share traps: the workers' count must be back at 0 before the next job.
      this.join();
    }
  }

  /**
   * One launch's arguments per thread: `args` with its last two (a [begin, end) range over
   * `units`) replaced by each thread's share, bounds multiples of `step`.
   */
  shareArgs(args: readonly number[], units: number, step: number): number[][] {
    const head = args.slice(0, -2);
    return splitRange(units, this.threads, step).map(([begin, end]) => [...head, begin, end]);
  }

  private dispatch(): void {
    Atomics.store(this.control, 1, this.workers.length);
    Atomics.add(this.control, 0, 1);
    Atomics.notify(this.control, 0);
  }

  private join(): void {
    const ctl = this.control;
    // The caller is blocked here, so worker 'exit' events cannot arrive: a share that has not
    // finished after JOIN_LIMIT_MS means a dead worker, and fails instead of hanging.
    // A failed share still waits for the others: returning early would let a straggler's
    // decrement land on the next job's counter, and that job would wait forever.
    let deadline = 0;
    for (let spins = 0; Atomics.load(ctl, 1) !== 0; spins++) {
      const left = Atomics.load(ctl, 1);
      if (left === 0 || spins <= 2000) continue;
      deadline ||= Date.now() + JOIN_LIMIT_MS;
      if (Atomics.wait(ctl, 1, left, 1) === 'timed-out' && Date.now() > deadline) {
        this.closed = true;
        throw new Error(`thread pool: a worker has not finished its share after ${JOIN_LIMIT_MS / 1000} s`);
      }
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

/**
 * The module's bytes with its imported memory declared shared (limits flag 0x03) with at most
 * `maximumPages` pages: threads need a shared memory, and a module that imports one must say
 * so. Bundles are compiled with a plain memory import (browsers without cross-origin isolation
 * cannot share memory), so the runtime rewrites the import section when asked for threads.
 */
export function withSharedMemoryImport(bytes: Uint8Array, maximumPages: number): Uint8Array {
  const module = new ByteReader(bytes, 8);
  const parts: Uint8Array[] = [bytes.subarray(0, 8)];
  while (!module.done) {
    const start = module.at;
    const id = module.byte();
    const size = module.u32();
    const body = module.take(size);
    if (id !== 2) {
      parts.push(bytes.subarray(start, module.at));
      continue;
    }
    const imports = rewriteImports(new ByteReader(body, 0), maximumPages);
    parts.push(Uint8Array.from([2, ...encodeU32(imports.length), ...imports]));
  }
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.length;
  }
  return out;
}

class ByteReader {
  constructor(private readonly bytes: Uint8Array, public at: number) {}
  get done(): boolean {
    return this.at >= this.bytes.length;
  }
  byte(): number {
    if (this.done) throw new Error('kernel module: truncated');
    return this.bytes[this.at++];
  }
  u32(): number {
    let result = 0;
    for (let shift = 0; ; shift += 7) {
      const byte = this.byte();
      result += (byte & 0x7f) * 2 ** shift;
      if (!(byte & 0x80)) return result;
    }
  }
  take(count: number): Uint8Array {
    if (this.at + count > this.bytes.length) throw new Error('kernel module: truncated');
    this.at += count;
    return this.bytes.subarray(this.at - count, this.at);
  }
  since(from: number): number[] {
    return Array.from(this.bytes.subarray(from, this.at));
  }
}

function encodeU32(value: number): number[] {
  const out: number[] = [];
  do {
    let byte = value & 0x7f;
    value = Math.floor(value / 128);
    if (value) byte |= 0x80;
    out.push(byte);
  } while (value);
  return out;
}

/** The import section's entries again, memories as shared with a maximum. */
function rewriteImports(body: ByteReader, maximumPages: number): number[] {
  const count = body.u32();
  const out = encodeU32(count);
  for (let i = 0; i < count; i++) {
    const from = body.at;
    body.take(body.u32()); // module name
    body.take(body.u32()); // field name
    const kind = body.byte();
    if (kind === 2) {
      out.push(...body.since(from));
      const flags = body.byte();
      if (flags > 3) throw new Error(`kernel module: memory limits flags ${flags}`);
      const minimum = body.u32();
      if (flags & 1) body.u32();
      out.push(0x03, ...encodeU32(minimum), ...encodeU32(maximumPages));
      continue;
    }
    if (kind === 0) body.u32(); // function: type index
    else if (kind === 1) { // table: reference type, limits
      body.byte();
      const flags = body.byte();
      body.u32();
      if (flags & 1) body.u32();
    } else if (kind === 3) body.take(2); // global: value type, mutability
    else throw new Error(`kernel module: import kind ${kind}`);
    out.push(...body.since(from));
  }
  if (!body.done) throw new Error('kernel module: import section has trailing bytes');
  return out;
}
