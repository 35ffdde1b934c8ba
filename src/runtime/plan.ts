/**
 * Activation plans of the wasm runtime (browser-safe): for one signature of a run (input shapes,
 * the host-read inputs' values, carried buffers), every step's shapes, its arena buffers placed
 * by liveness, and the list of actions that execute it (uploads of host values, kernel calls
 * with their byte offsets and scalars).
 *
 * A decode loop asks for a new plan at every step (new positions; with a growing cache, new
 * shapes). Two things keep that cheap: each step's inference and launch scalars are memoized
 * against its input shapes and host values (StepMemo), and the last plan is reshaped for the
 * next step rather than built anew, re-working only the steps that read what changed
 * (reshapePlan). Steps are worked out in plan-steps.ts, plans updated in plan-update.ts.
 */
import { LlmccError } from '../../ir/errors.js';
import type { Node } from '../../ir/graph.js';
import type { OpDef } from '../../ir/ops/types.js';
import { Tensor, sizeOf } from '../../ir/tensor.js';
import { ARENA_ALIGN, type LiveBuffer, alignUp, arenaBytes, placeByLiveness } from '../../targets/wasm/arena.js';
import type { WasmKernelDef } from '../../targets/wasm/kernel-def.js';
import type { WasmProgram, WeightEntry } from '../../targets/wasm/program.js';
import { callAction, deviceResults, hostResults, launchOf } from './plan-steps.js';
import type { WasmThreadPool } from './threads.js';

/** A buffer in the arena, shared by a value and the views aliasing it. */
export interface Storage extends LiveBuffer {
  /** Placed once, outside the liveness plan (weights, carried caches). */
  fixed: boolean;
}

export type Action =
  | { kind: 'call'; fn: (...args: number[]) => unknown; args: number[]; node: Node }
  | { kind: 'upload'; storage: Storage; tensor: Tensor; what: string };

export interface Plan {
  inputs: { name: string; storage: Storage }[];
  actions: Action[];
  /** Graph outputs: a JS tensor, or where to read it. */
  outputs: { name: string; tensor?: Tensor; storage?: Storage; shape: number[] }[];
  /** What the plan was built with, for reshapePlan. */
  record: PlanRecord;
}

/** A plan's build: every value's shape, host value and buffer, and where each step's actions are. */
export interface PlanRecord {
  shapes: Map<string, number[]>;
  hostValues: Map<string, Tensor>;
  storages: Map<string, Storage>;
  /** Per kernel step: its call's action index, its buffers (argument order; scalars follow), its scratch. */
  calls: Map<number, { action: number; buffers: Storage[]; scratch?: Storage }>;
  /** Per host value written to the arena: the upload actions. */
  uploads: Map<string, number[]>;
  /** Bytes each buffer needs for the shapes the plan holds now (by value; scratch by step index). */
  needs: Map<string | number, number>;
}

/** A carried input as one run sees it: where it is read and where its output goes. */
export interface CarriedInput {
  output: string;
  shape: number[];
  capacity: number;
  offset: number;
  outputOffset: number;
}

export interface PreparedStep {
  kind: 'kernel' | 'view' | 'host';
  node: Node;
  op: OpDef;
  kernel?: WasmKernelDef;
  fn?: (...args: number[]) => unknown;
  /** The kernel's export name (what worker threads call). */
  exportName?: string;
}

/**
 * What one step worked out the last time a plan was built: its output shapes, host outputs and
 * launch scalars. Reused when the step's inputs have the same shapes and host values again,
 * which in a decode loop is most steps (only those near the cache and positions change).
 */
export interface StepMemo {
  inputShapes: (readonly number[] | undefined)[];
  /** Host values of the inputs (graph inputs read on the host, host-step results); weights are constant. */
  inputValues: (Tensor | undefined)[];
  outputShapes: number[][];
  hostOutputs?: Tensor[];
  scalars?: number[];
  scratchBytes?: number;
  /** How threads share the launch (kernels with a row split, when the session has threads). */
  split?: { units: number; step: number };
}

/** What a plan is built from: the session's program, prepared steps and memory. */
export interface PlanContext {
  readonly program: WasmProgram;
  readonly steps: readonly PreparedStep[];
  readonly opsets: ReadonlyMap<string, number>;
  readonly weightsByName: ReadonlyMap<string, WeightEntry>;
  readonly weightBase: number;
  readonly stepMemos: (StepMemo | undefined)[];
  readonly pool: WasmThreadPool | undefined;
  /** Where activations start: after the weights and the carried reservations. */
  readonly activationBase: number;
  weightTensor(w: WeightEntry): Tensor;
  ensureBytes(bytes: number): void;
}

/** A kernel call before placement. */
interface PendingCall {
  step: PreparedStep;
  buffers: Storage[];
  scalars: number[];
  split?: { units: number; step: number };
}

/** One plan, walked step by step (see the file comment). */
export class PlanBuilder {
  private readonly values: WasmProgram['values'];
  private readonly shapes = new Map<string, number[]>();
  private readonly hostValues = new Map<string, Tensor>();
  private readonly storages = new Map<string, Storage>();
  private readonly planned: Storage[] = [];
  private readonly planInputs: Plan['inputs'] = [];
  /** Kernel calls wait for the placement for their offsets. */
  private readonly actions: (Action | PendingCall)[] = [];

  private readonly calls: PlanRecord['calls'] = new Map();
  private readonly uploads: PlanRecord['uploads'] = new Map();
  private readonly needs: PlanRecord['needs'] = new Map();

  /**
   * `previous`: the last plan built for these carried buffers. A buffer that has grown since
   * (a decode step's mask, attention scratch) is given twice its size, so that the next steps'
   * plans fit in this one's buffers (reshapePlan) and a rebuild happens once per doubling.
   */
  constructor(
    private readonly ctx: PlanContext,
    private readonly inputs: ReadonlyMap<string, Tensor>,
    private readonly carried: ReadonlyMap<string, CarriedInput>,
    private readonly previous?: PlanRecord,
  ) {
    this.values = ctx.program.values;
  }

  build(): Plan {
    for (const [name, tensor] of this.inputs) {
      this.shapes.set(name, [...tensor.shape]);
      if (this.values[name]?.host) this.hostValues.set(name, tensor);
      if (this.values[name]?.inArena) {
        const s = this.newStorage(this.allot(arenaBytes(tensor.dtype, tensor.size), name, this.previous?.storages.get(name)), -1);
        this.storages.set(name, s);
        this.planInputs.push({ name, storage: s });
      }
    }
    for (const [name, c] of this.carried) {
      this.shapes.set(name, c.shape);
      this.storages.set(name, { bytes: 0, first: -1, last: -1, offset: c.offset, fixed: true });
    }
    const steps = this.ctx.steps;
    for (let index = 0; index < steps.length; index++) this.step(steps[index], index);
    return this.finish();
  }

  /**
   * Bytes for the buffer of `key` (a value, or a step's scratch): twice its need when it needs
   * more than in the previous plan (all growing values at once, so rebuilds come once per
   * doubling), else at least the previous plan's buffer (the room it keeps between rebuilds).
   */
  private allot(bytes: number, key: string | number, before: Storage | undefined): number {
    this.needs.set(key, bytes);
    if (!before || before.fixed) return bytes;
    return bytes > (this.previous!.needs.get(key) ?? before.bytes) ? 2 * bytes : Math.max(bytes, before.bytes);
  }

  private newStorage(bytes: number, first: number): Storage {
    const s: Storage = { bytes: alignUp(bytes, ARENA_ALIGN), first, last: first, offset: 0, fixed: false };
    this.planned.push(s);
    return s;
  }

  private hostValue(name: string): Tensor | undefined {
    const known = this.hostValues.get(name);
    if (known) return known;
    const w = this.ctx.weightsByName.get(name);
    return w && !this.inputs.has(name) && !this.carried.has(name) ? this.ctx.weightTensor(w) : undefined;
  }

  private shapeOf(name: string): number[] {
    const known = this.shapes.get(name);
    if (known) return known;
    const w = this.ctx.weightsByName.get(name);
    if (w) return w.shape;
    throw new LlmccError(`internal error: no shape for value '${name}'`);
  }

  private storageOf(name: string): Storage {
    let s = this.storages.get(name);
    if (!s) {
      const w = this.ctx.weightsByName.get(name);
      if (w?.arenaOffset === undefined) throw new LlmccError(`internal error: value '${name}' has no arena buffer`);
      s = { bytes: 0, first: -1, last: -1, offset: this.ctx.weightBase + w.arenaOffset, fixed: true };
      this.storages.set(name, s);
    }
    return s;
  }

  private step(step: PreparedStep, index: number): void {
    const present = step.node.inputs.map((n) => n || undefined);
    const inputShapes: (number[] | undefined)[] = [];
    const inputValues: (Tensor | undefined)[] = [];
    for (const n of present) {
      inputShapes.push(n ? this.shapeOf(n) : undefined);
      inputValues.push(n ? this.hostValues.get(n) : undefined);
    }
    if (step.kind === 'host') this.hostStep(step, index, present, inputShapes, inputValues);
    else this.deviceStep(step, index, present, inputShapes, inputValues);
  }

  private hostStep(
    step: PreparedStep, index: number, present: (string | undefined)[],
    inputShapes: (number[] | undefined)[], inputValues: (Tensor | undefined)[],
  ): void {
    const { node } = step;
    const evalInputs = present.map((n, i) => {
      if (!n) return undefined;
      return this.hostValue(n) ?? Tensor.zeros(this.values[n].dtype, inputShapes[i]!); // Shape/Size read only the shape
    });
    const memo = hostResults(this.ctx, step, index, evalInputs, inputShapes, inputValues);
    const outputs = memo.hostOutputs!;
    for (let k = 0; k < node.outputs.length; k++) {
      const name = node.outputs[k];
      if (!name) continue;
      const t = outputs[k];
      this.hostValues.set(name, t);
      this.shapes.set(name, memo.outputShapes[k]);
      if (this.values[name]?.inArena) {
        const s = this.newStorage(this.allot(arenaBytes(t.dtype, t.size), name, this.previous?.storages.get(name)), index);
        this.storages.set(name, s);
        this.uploads.set(name, [...(this.uploads.get(name) ?? []), this.actions.length]);
        this.actions.push({ kind: 'upload', storage: s, tensor: t, what: `value '${name}'` });
      }
    }
  }

  /** A kernel or view step. */
  private deviceStep(
    step: PreparedStep, index: number, present: (string | undefined)[],
    inputShapes: (number[] | undefined)[], inputValues: (Tensor | undefined)[],
  ): void {
    const { node } = step;
    const memo = deviceResults(this.ctx, step, index, present, inputShapes, inputValues, (name) => this.hostValue(name));
    const outTypes = memo.outputShapes;
    for (let k = 0; k < node.outputs.length; k++) if (node.outputs[k]) this.shapes.set(node.outputs[k], outTypes[k]);
    for (const n of present) if (n && this.values[n]?.inArena) this.storageOf(n).last = index;
    if (step.kind === 'view') {
      const s = this.storageOf(node.inputs[0]);
      for (const name of node.outputs) if (name) this.storages.set(name, s);
      return;
    }
    const outStorages: Storage[] = [];
    for (const name of node.outputs) {
      if (!name) continue;
      const s = this.newStorage(this.allot(arenaBytes(this.values[name].dtype, sizeOf(this.shapes.get(name)!)), name, this.previous?.storages.get(name)), index);
      this.storages.set(name, s);
      outStorages.push(s);
    }
    if (outTypes.every((s) => sizeOf(s) === 0) && node.outputs.some((n) => n)) return; // nothing to compute
    launchOf(this.ctx, step, memo, inputShapes);
    const scratch = memo.scratchBytes !== undefined
      ? this.newStorage(this.allot(memo.scratchBytes, index, this.previous?.calls.get(index)?.scratch), index)
      : undefined;
    // Buffers in argument order (the offsets are known once placed), then the scalars.
    const buffers: Storage[] = [];
    for (const n of present) if (n) buffers.push(this.storageOf(n));
    for (const s of outStorages) buffers.push(s);
    if (scratch) buffers.push(scratch);
    this.calls.set(index, { action: this.actions.length, buffers, scratch });
    this.actions.push({ step, buffers, scalars: memo.scalars!, split: this.ctx.pool ? memo.split : undefined });
  }

  private finish(): Plan {
    const outputs: Plan['outputs'] = this.ctx.program.outputs.map(({ name }) => {
      const shape = this.shapeOf(name);
      const tensor = this.hostValues.get(name) ?? (this.ctx.weightsByName.has(name) && !this.inputs.has(name) ? this.hostValue(name) : undefined);
      if (tensor) return { name, tensor, shape };
      const storage = this.storages.get(name);
      if (storage) storage.last = this.ctx.steps.length;
      return storage ? { name, storage, shape } : { name, shape };
    });
    // Carried outputs are written straight into their reserved buffer.
    for (const c of this.carried.values()) {
      const storage = this.storages.get(c.output);
      const bytes = arenaBytes(this.values[c.output].dtype, sizeOf(this.shapeOf(c.output)));
      if (!storage || (storage.fixed && storage.offset !== c.outputOffset)) {
        throw new LlmccError(`output '${c.output}' is not written by a kernel, so it cannot stay in the wasm memory between runs`);
      }
      if (bytes > c.capacity) throw new LlmccError(`output '${c.output}' needs ${bytes} bytes, more than the ${c.capacity} reserved for it (raise the capacity shape)`);
      storage.fixed = true;
      storage.offset = c.outputOffset;
    }
    const end = placeByLiveness(this.planned.filter((s) => !s.fixed), this.ctx.activationBase);
    this.ctx.ensureBytes(end);
    return {
      inputs: this.planInputs,
      actions: this.actions.map((a) => ('kind' in a ? a : callAction(this.ctx, a.step, a.buffers.map((b) => b.offset), a.scalars, a.split))),
      outputs,
      record: { shapes: this.shapes, hostValues: this.hostValues, storages: this.storages, calls: this.calls, uploads: this.uploads, needs: this.needs },
    };
  }
}
