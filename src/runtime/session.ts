/**
 * Executes a compiled wasm program: one WebAssembly.Memory holding the weights (placed once)
 * and an activation arena planned by liveness per input-shape signature (cached), kernels
 * launched with byte offsets, views aliasing buffers, host steps evaluated in JS.
 * Browser-safe: no `node:` imports.
 * Plans (shapes, buffers, actions per run signature) are built in plan.ts.
 */
import { LlmccError, describeNode } from '../../ir/errors.js';
import type { TensorType } from '../../ir/graph.js';
import { lookupOp } from '../../ir/ops/registry.js';
import { Tensor, sizeOf } from '../../ir/tensor.js';
import { WASM32_MAX_BYTES, WASM_PAGE, alignUp, arenaBytes, readFromArena, writeToArena } from '../../targets/wasm/arena.js';
import { wasmKernelTable } from '../../targets/wasm/links.js';
import { type WasmProgram, type WeightEntry, deserializeNode } from '../../targets/wasm/program.js';
import { decodeWeight } from '../../targets/wasm/weights.js';
import { type WeightStream, placeWeight } from './weight-placement.js';
import { type CarriedInput, type Plan, type PlanContext, type PreparedStep, type StepMemo, PlanBuilder } from './plan.js';
import { splitterOf } from './plan-steps.js';
import { reshapePlan } from './plan-update.js';
import type { WasmThreadPool } from './threads.js';

export type Feeds = Record<string, Tensor> | ReadonlyMap<string, Tensor>;

export interface RuntimeSession {
  readonly inputNames: string[];
  readonly outputNames: string[];
  /** Declared dtype and shape of each graph input and output (what generate() binds by). */
  readonly signature: Pick<WasmProgram, 'inputs' | 'outputs'>;
  run(feeds: Feeds): Promise<Map<string, Tensor>>;
  /** Bytes of the wasm memory now: weights plus the largest activation plan so far. */
  readonly memoryBytes: number;
  /**
   * Keeps each pair's output in the wasm memory as its input of the next run (a KV cache):
   * the returned state's `run` takes feeds without those inputs and returns outputs without
   * those outputs. One state per session: a new one replaces (and invalidates) the last.
   */
  carry(pairs: CarriedPair[]): CarriedState;
  /** Bytes copied between JS and the wasm memory by all runs so far: feeds and host results in, outputs out. */
  readonly boundaryBytes: { readonly written: number; readonly read: number };
  /** Threads that run kernels: 1 unless loaded with `threads` (and not closed since). */
  readonly threads: number;
  /** Stops the worker threads (idle ones never keep the process alive); later runs use one thread. */
  close(): Promise<void>;
}

export interface SessionOptions {
  /**
   * Threads for the kernels that split their output rows (LutMatMul): worker threads on a
   * shared memory, Node only; the result is bit-identical to one thread. Default 1.
   */
  threads?: number;
}

/** A graph output that becomes a graph input of the next run without leaving the wasm memory. */
export interface CarriedPair {
  input: string;
  output: string;
  /** The input's shape on the first run (zero-filled). */
  initialShape: number[];
  /** The largest shape the output reaches: sizes the buffers reserved for the pair. */
  capacityShape: number[];
}

export interface CarriedState {
  run(feeds: Feeds): Promise<Map<string, Tensor>>;
  /** Back to the first run: carried inputs of their initial shapes, zero-filled. */
  reset(): void;
}

/** One carried pair as placed: the buffer the input reads now and the one the output writes. */
interface CarriedBuffer {
  pair: CarriedPair;
  dtype: TensorType['dtype'];
  capacity: number;
  /** Two buffers (ping-pong), or one when the output is written in place (TensorScatter). */
  buffers: [number, number];
  shape: number[];
}

/** Where the weight bytes come from: verified before use by the caller. */
export interface ProgramParts {
  program: WasmProgram;
  kernels: WebAssembly.Module;
  /** weights.bin, or (Node, from a file) a stream that places the arena weights itself. */
  weights: Uint8Array | WeightStream;
}

const PLAN_CACHE_LIMIT = 32;

/** Adds to a cache of at most PLAN_CACHE_LIMIT plans, dropping the oldest. */
function cacheBounded(cache: Map<string, Plan>, key: string, plan: Plan): void {
  if (!cache.has(key) && cache.size >= PLAN_CACHE_LIMIT) cache.delete(cache.keys().next().value as string);
  cache.set(key, plan);
}
const MAX_PAGES = WASM32_MAX_BYTES / WASM_PAGE;

export async function createSession(parts: ProgramParts, options: SessionOptions = {}): Promise<RuntimeSession> {
  const threads = options.threads ?? 1;
  if (!Number.isInteger(threads) || threads < 1) throw new LlmccError(`threads must be a positive integer, got ${threads}`);
  const session = new WasmSession(parts.program, parts.weights, threads);
  try {
    await session.instantiate(parts.kernels);
  } catch (error) {
    await session.close(); // streamed weights are verified after the threads start: stop them on a refusal
    throw error;
  }
  return session;
}

class WasmSession implements RuntimeSession {
  readonly inputNames: string[];
  readonly outputNames: string[];
  readonly signature: Pick<WasmProgram, 'inputs' | 'outputs'>;
  private memory!: WebAssembly.Memory;
  private steps: PreparedStep[] = [];
  private weightBase = 0;
  private readonly weightsByName = new Map<string, WeightEntry>();
  /** Graph inputs used as Gather indices into weights, checked on every feed. */
  private readonly indexBounds: Map<string, IndexBound[]>;
  private readonly hostWeights = new Map<string, Tensor>();
  private readonly plans = new Map<string, Plan>();
  /** Per carried-buffer placement, the plan the last run used: the next decode step reshapes it. */
  private readonly lastPlans = new Map<string, Plan>();
  /** Per step, what the last plan built computed (see StepMemo). */
  private stepMemos: (StepMemo | undefined)[] = [];
  private readonly opsets: Map<string, number>;
  /** Bytes reserved after the weights for carried values; activation plans start after them. */
  private carriedBytes = 0;
  private carried?: { buffers: CarriedBuffer[]; parity: 0 | 1 };
  readonly boundaryBytes = { written: 0, read: 0 };
  /** Worker threads (threads > 1) that share the splittable kernels' launches. */
  private pool?: WasmThreadPool;

  /** Streamed weights: the bytes of those not placed as-is (the rest are read back from the arena). */
  private keptWeights?: Map<string, Uint8Array>;

  constructor(private readonly program: WasmProgram, private readonly weightBytes: Uint8Array | WeightStream, private readonly requestedThreads = 1) {
    this.inputNames = program.inputs.map((i) => i.name);
    this.outputNames = program.outputs.map((o) => o.name);
    this.signature = { inputs: program.inputs, outputs: program.outputs };
    this.opsets = new Map(program.opsets);
    for (const w of program.weights) this.weightsByName.set(w.name, w);
    this.indexBounds = gatherIndexBounds(program, this.weightsByName);
  }

  async instantiate(module: WebAssembly.Module): Promise<void> {
    const kernels = wasmKernelTable();
    // Memory: ours when the module imports one, else the module's own (its static data first).
    let imported: WebAssembly.Memory | undefined;
    const imports: Record<string, Record<string, WebAssembly.ImportValue>> = {};
    for (const imp of WebAssembly.Module.imports(module)) {
      imports[imp.module] ??= {};
      if (imp.kind === 'memory') {
        // Threads share the memory (the module's import must then be shared: index.ts rewrites it).
        imported ??= new WebAssembly.Memory({ initial: this.pagesFor(64 + this.program.memory.weightBytes), maximum: MAX_PAGES, shared: this.requestedThreads > 1 });
        imports[imp.module][imp.name] = imported;
      } else if (imp.kind === 'function' && typeof (Math as unknown as Record<string, unknown>)[imp.name] === 'function') {
        imports[imp.module][imp.name] = (Math as unknown as Record<string, WebAssembly.ImportValue>)[imp.name];
      } else {
        throw new LlmccError(`the kernel module imports ${imp.kind} '${imp.module}.${imp.name}', which the runtime does not provide`);
      }
    }
    const instance = await WebAssembly.instantiate(module, imports);
    const exported = Object.values(instance.exports).find((e): e is WebAssembly.Memory => e instanceof WebAssembly.Memory);
    const memory = imported ?? exported ?? new WebAssembly.Memory({ initial: 1, maximum: MAX_PAGES });
    this.memory = memory;
    // Anything below the memory's size at instantiation may be the module's own data.
    this.weightBase = imported || !exported ? 64 : alignUp(memory.buffer.byteLength, 64);
    this.ensureBytes(this.weightBase + this.program.memory.weightBytes);

    this.steps = this.program.steps.map((step) => {
      const node = deserializeNode(this.program.nodes[step.node]);
      const op = lookupOp(node.domain, node.op);
      if (!op) throw new LlmccError('op unknown to this runtime', describeNode(node));
      if (step.kind !== 'kernel') return { kind: step.kind, node, op };
      const kernel = kernels.get(`${node.domain}::${node.op}`);
      if (!kernel) throw new LlmccError('this runtime has no wasm kernel definition for the op', describeNode(node));
      const fn = instance.exports[step.kernel];
      if (typeof fn !== 'function') throw new LlmccError(`the kernel module does not export '${step.kernel}'`, describeNode(node));
      return { kind: 'kernel', node, op, kernel, fn: fn as (...args: number[]) => unknown, exportName: step.kernel };
    });
    if (this.requestedThreads > 1) await this.startThreads(module, instance, imported);

    // Weights read by kernels go into the arena once, straight from their bytes where the
    // encoding allows; no JS tensor is kept (host steps decode the few they read on demand).
    if (this.weightBytes instanceof Uint8Array) {
      for (const w of this.program.weights) {
        if (w.arenaOffset === undefined) continue;
        placeWeight(this.memory.buffer, this.weightBase + w.arenaOffset, w, this.weightBytes.subarray(w.offset, w.offset + w.byteLength));
      }
    } else {
      this.keptWeights = await this.weightBytes.place(this.memory, this.weightBase);
    }
  }

  get memoryBytes(): number {
    return this.memory.buffer.byteLength;
  }

  private async startThreads(module: WebAssembly.Module, instance: WebAssembly.Instance, memory: WebAssembly.Memory | undefined): Promise<void> {
    if (!memory) throw new LlmccError('threads need a kernel module that imports its memory');
    const names = this.steps.filter((s) => s.exportName && splitterOf(s.kernel)).map((s) => s.exportName!);
    // Node only (worker_threads): imported on demand so that the browser build never sees it.
    const { WasmThreadPool } = await import('./threads.js');
    this.pool = await WasmThreadPool.create(module, memory, instance.exports as Record<string, (...a: number[]) => void>, [...new Set(names)], this.requestedThreads);
  }

  get threads(): number {
    return this.pool?.threads ?? 1;
  }

  async close(): Promise<void> {
    const pool = this.pool;
    this.pool = undefined;
    this.plans.clear(); // plans hold calls into the pool
    this.lastPlans.clear();
    await pool?.close();
  }

  private pagesFor(bytes: number): number {
    return Math.max(1, Math.ceil(bytes / WASM_PAGE));
  }

  /** Grows the memory to hold `bytes`; refuses past wasm32's 4 GiB. */
  private ensureBytes(bytes: number): void {
    if (bytes > WASM32_MAX_BYTES) {
      throw new LlmccError(
        `the model needs ${(bytes / 2 ** 30).toFixed(2)} GiB of wasm memory (weights + activations), more than wasm32's 4 GiB; lower the weights to fewer bits (--lower --bits 4 or 2) or use shorter inputs`);
    }
    const have = this.memory.buffer.byteLength;
    if (bytes <= have) return;
    try {
      this.memory.grow(this.pagesFor(bytes - have));
    } catch {
      throw new LlmccError(`cannot grow the wasm memory to ${(bytes / 2 ** 20).toFixed(1)} MiB (this engine refused); lower the weights to fewer bits or use shorter inputs`);
    }
  }

  /** A weight's bytes as weights.bin holds them (decodeWeight copies them). */
  private bytesOfWeight(w: WeightEntry): Uint8Array {
    if (this.weightBytes instanceof Uint8Array) return this.weightBytes.subarray(w.offset, w.offset + w.byteLength);
    // Streamed: weights placed as-is are their arena bytes (kernels never write the weight region).
    return this.keptWeights?.get(w.name) ?? new Uint8Array(this.memory.buffer, this.weightBase + w.arenaOffset!, w.byteLength);
  }

  private weightTensor(w: WeightEntry): Tensor {
    const cached = this.hostWeights.get(w.name);
    if (cached) return cached;
    const tensor = decodeWeight(w.dtype, w.shape, w.encoding, this.bytesOfWeight(w));
    // Keep JS copies only of what host steps read (arena weights are decoded once for placement).
    if (w.arenaOffset === undefined || this.program.values[w.name]?.host) this.hostWeights.set(w.name, tensor);
    return tensor;
  }

  run(feeds: Feeds): Promise<Map<string, Tensor>> {
    return this.execute(feeds, undefined);
  }

  carry(pairs: CarriedPair[]): CarriedState {
    const values = this.program.values;
    const inputs = new Set(this.inputNames);
    const outputs = new Set(this.outputNames);
    const layout: CarriedBuffer[] = [];
    let offset = this.weightsEnd();
    for (const pair of pairs) {
      const where = `carried pair '${pair.input}' <- '${pair.output}'`;
      if (!inputs.has(pair.input) || !outputs.has(pair.output)) throw new LlmccError(`${where}: not a graph input and a graph output`);
      const input = values[pair.input];
      const output = values[pair.output];
      // Only kernel-read inputs and kernel-written outputs live in the arena.
      if (!input?.inArena || input.host || this.program.memory.hostReadInputs.includes(pair.input)) {
        throw new LlmccError(`${where}: the input is not read by kernels alone, so it cannot stay in the wasm memory`);
      }
      if (!output?.inArena || output.host || input.dtype !== output.dtype) {
        throw new LlmccError(`${where}: the output is not a kernel result of the input's dtype, so it cannot stay in the wasm memory`);
      }
      const capacity = alignUp(arenaBytes(input.dtype, sizeOf(pair.capacityShape)));
      if (arenaBytes(input.dtype, sizeOf(pair.initialShape)) > capacity) throw new LlmccError(`${where}: the initial shape is larger than the capacity shape`);
      const first = offset;
      const second = this.writesInPlace(pair) ? first : first + capacity;
      offset = second + capacity;
      layout.push({ pair, dtype: input.dtype, capacity, buffers: [first, second], shape: [...pair.initialShape] });
    }
    this.carriedBytes = offset - this.weightsEnd();
    this.plans.clear(); // every plan's activations move past the new reservation
    this.lastPlans.clear();
    this.ensureBytes(offset);
    const state = { buffers: layout, parity: 0 as 0 | 1 };
    const reset = (): void => {
      state.parity = 0;
      for (const c of state.buffers) {
        c.shape = [...c.pair.initialShape];
        new Uint8Array(this.memory.buffer, c.buffers[0], arenaBytes(c.dtype, sizeOf(c.shape))).fill(0);
      }
    };
    reset();
    this.carried = state;
    const live = (): void => {
      if (this.carried !== state) throw new LlmccError('this carried state was replaced by a newer carry() on the same session');
    };
    return {
      run: async (feeds) => { live(); return this.execute(feeds, state); },
      reset: () => { live(); reset(); },
    };
  }

  /** The output is written by a TensorScatter of the input that nothing else reads: same buffer. */
  private writesInPlace(pair: CarriedPair): boolean {
    const readers = this.steps.filter((s) => s.node.inputs.includes(pair.input));
    const writer = this.steps.find((s) => s.node.outputs.includes(pair.output));
    return readers.length === 1 && readers[0] === writer && writer.kind === 'kernel' &&
      writer.node.domain === '' && writer.node.op === 'TensorScatter' && writer.node.inputs[0] === pair.input;
  }

  private weightsEnd(): number {
    return alignUp(this.weightBase + this.program.memory.weightBytes, 64);
  }

  private async execute(feeds: Feeds, state: { buffers: CarriedBuffer[]; parity: 0 | 1 } | undefined): Promise<Map<string, Tensor>> {
    const given = feeds instanceof Map ? feeds as ReadonlyMap<string, Tensor> : new Map(Object.entries(feeds as Record<string, Tensor>));
    const carried = new Map<string, CarriedInput>();
    for (const c of state?.buffers ?? []) {
      if (given.has(c.pair.input)) throw new LlmccError(`'${c.pair.input}' is carried between runs: do not feed it`);
      carried.set(c.pair.input, {
        output: c.pair.output, shape: c.shape, capacity: c.capacity,
        offset: c.buffers[state!.parity], outputOffset: c.buffers[1 - state!.parity],
      });
    }
    const inputs = new Map<string, Tensor>();
    for (const input of this.program.inputs) {
      if (carried.has(input.name)) continue;
      let value = given.get(input.name);
      if (!value) {
        const fallback = this.weightsByName.get(input.name);
        if (!fallback) throw new LlmccError(`missing value for graph input '${input.name}'`);
        value = this.weightTensor(fallback);
      }
      checkFeed(input, value);
      for (const bound of this.indexBounds.get(input.name) ?? []) checkIndices(input.name, value, bound);
      inputs.set(input.name, value);
    }
    for (const name of given.keys()) {
      if (!inputs.has(name)) throw new LlmccError(`'${name}' is not an input of the model (inputs: ${this.inputNames.join(', ')})`);
    }
    const plan = this.planFor(inputs, carried);
    let buffer = this.memory.buffer;
    const written = (t: Tensor): void => { this.boundaryBytes.written += arenaBytes(t.dtype, t.size); };
    for (const { name, storage } of plan.inputs) {
      writeToArena(buffer, storage.offset, inputs.get(name)!, `input '${name}'`);
      written(inputs.get(name)!);
    }
    for (const action of plan.actions) {
      if (action.kind === 'upload') {
        writeToArena(buffer, action.storage.offset, action.tensor, action.what);
        written(action.tensor);
      } else {
        try {
          action.fn(...action.args);
        } catch (error) {
          // A trap is a kernel bug (or a launch/argument mismatch): say which node.
          const message = error instanceof Error ? error.message : String(error);
          throw new Error(`wasm kernel trapped (${message}) with args [${action.args.join(', ')}], ${describeNode(action.node)}`);
        }
      }
    }
    buffer = this.memory.buffer;
    const result = new Map<string, Tensor>();
    const carriedOutputs = new Map(state?.buffers.map((c) => [c.pair.output, c]));
    for (const out of plan.outputs) {
      const dtype = this.program.values[out.name].dtype;
      const stays = carriedOutputs.get(out.name);
      if (stays) stays.shape = out.shape; // the next run's input shape; the bytes stay where they are
      else if (out.tensor) result.set(out.name, out.tensor);
      else if (inputs.has(out.name) && !out.storage) result.set(out.name, inputs.get(out.name)!);
      else {
        const tensor = readFromArena(buffer, out.storage!.offset, dtype, out.shape);
        this.boundaryBytes.read += arenaBytes(dtype, tensor.size);
        result.set(out.name, tensor);
      }
    }
    if (state) state.parity = state.parity === 0 ? 1 : 0;
    return result;
  }

  /**
   * The plan for a run: a cached one (by shapes and host-read values), else the last plan used
   * with these carried buffers reshaped to fit (a decode step after the previous one), else a
   * new one.
   */
  private planFor(inputs: ReadonlyMap<string, Tensor>, carried: ReadonlyMap<string, CarriedInput>): Plan {
    const carriedKey = JSON.stringify([...carried.values()].map((c) => [c.offset, c.outputOffset]));
    const key = JSON.stringify([
      this.program.inputs.map((i) => inputs.get(i.name)?.shape ?? carried.get(i.name)!.shape),
      this.program.memory.hostReadInputs.map((name) => Array.from(inputs.get(name)!.numbers())),
      carriedKey,
    ]);
    let plan = this.plans.get(key);
    if (!plan) {
      const ctx = this.planContext();
      const last = this.lastPlans.get(carriedKey);
      if (last && reshapePlan(ctx, last, inputs, carried)) {
        // Reshaped in place: no longer what it was cached as.
        for (const [k, p] of this.plans) if (p === last) this.plans.delete(k);
        plan = last;
      } else {
        plan = new PlanBuilder(ctx, inputs, carried, last?.record).build();
      }
      cacheBounded(this.plans, key, plan);
    }
    this.lastPlans.set(carriedKey, plan);
    return plan;
  }

  private planContext(): PlanContext {
    return {
      program: this.program, steps: this.steps, opsets: this.opsets, weightsByName: this.weightsByName,
      weightBase: this.weightBase, stepMemos: this.stepMemos, pool: this.pool,
      activationBase: this.weightsEnd() + this.carriedBytes,
      weightTensor: (w) => this.weightTensor(w),
      ensureBytes: (bytes) => this.ensureBytes(bytes),
    };
  }

}


/** A Gather whose indices are a graph input, over a weight axis of static length (token ids → embedding rows). */
interface IndexBound {
  node: string;
  length: number;
}

/**
 * The kernels clamp indices to stay inside memory; ONNX calls an out-of-range index an error,
 * and a token id beyond the vocabulary must not silently read another row: fed ids are checked.
 */
function gatherIndexBounds(program: WasmProgram, weights: ReadonlyMap<string, WeightEntry>): Map<string, IndexBound[]> {
  const inputs = new Set(program.inputs.map((i) => i.name));
  const bounds = new Map<string, IndexBound[]>();
  for (const step of program.steps) {
    const node = program.nodes[step.node]!;
    if (node.domain !== '' || node.op !== 'Gather') continue;
    const [data, indices] = node.inputs;
    const weight = data ? weights.get(data) : undefined;
    if (!indices || !inputs.has(indices) || !weight || inputs.has(weight.name)) continue;
    const axisAttr = deserializeNode(node).attributes.get('axis');
    const rank = weight.shape.length;
    const axis = axisAttr?.kind === 'int' ? (axisAttr.value < 0 ? axisAttr.value + rank : axisAttr.value) : 0;
    const length = weight.shape[axis];
    if (length === undefined) continue;
    bounds.set(indices, [...(bounds.get(indices) ?? []), { node: node.name || `Gather #${step.node}`, length }]);
  }
  return bounds;
}

function checkIndices(name: string, value: Tensor, bound: IndexBound): void {
  const values = value.numbers();
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (v < -bound.length || v >= bound.length) {
      throw new LlmccError(`input '${name}' holds ${v} at element ${i}, outside [${-bound.length}, ${bound.length}) of the axis it indexes in Gather '${bound.node}'`);
    }
  }
}

function checkFeed(input: WasmProgram['inputs'][number], value: Tensor): void {
  if (value.dtype !== input.dtype) {
    throw new LlmccError(`input '${input.name}' has dtype ${value.dtype} but the model declares ${input.dtype}`);
  }
  const shape = input.shape;
  if (!shape) return;
  if (shape.length !== value.rank || shape.some((d, i) => typeof d === 'number' && d !== value.shape[i])) {
    throw new LlmccError(`input '${input.name}' has shape [${value.shape.join(',')}] but the model declares [${shape.join(',')}]`);
  }
}
