/**
 * Activation plans of the wasm runtime (browser-safe): for one signature of a run (input shapes,
 * the host-read inputs' values, carried buffers), every step's shapes, its arena buffers placed
 * by liveness, and the list of actions that execute it (uploads of host values, kernel calls
 * with their byte offsets and scalars).
 *
 * A decode loop asks for a new plan at every step (new positions; with a growing cache, new
 * shapes). Two things keep that cheap: each step's inference and launch scalars are memoized
 * against its input shapes and host values (StepMemo), and a plan whose kernels never took a
 * shape from the host-read inputs' values is kept by shapes alone and refreshed by re-running
 * the few host steps that read those values (ValueFreeSteps, refreshPlan), and otherwise the
 * last plan is reshaped for the next step (reshapePlan). Steps are worked out in
 * plan-steps.ts, plans updated in plan-update.ts.
 */
import { LlmccError } from '../../ir/errors.js';
import type { Node } from '../../ir/graph.js';
import type { OpDef } from '../../ir/ops/types.js';
import { Tensor, sizeOf } from '../../ir/tensor.js';
import { ARENA_ALIGN, type LiveBuffer, alignUp, arenaBytes, placeByLiveness } from '../../targets/wasm/arena.js';
import type { WasmKernelDef } from '../../targets/wasm/kernel-def.js';
import type { WasmProgram, WeightEntry } from '../../targets/wasm/program.js';
import { deviceResults, hostResults, launchOf } from './plan-steps.js';
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
  /** Present when the plan holds for other values of the host-read inputs (see refreshPlan). */
  valueFree?: ValueFreeSteps;
  /** What the plan was built with, for reshapePlan. */
  record: PlanRecord;
}

/** A plan's build: every value's shape, host value and buffer, and where each step's actions are. */
export interface PlanRecord {
  shapes: Map<string, number[]>;
  hostValues: Map<string, Tensor>;
  storages: Map<string, Storage>;
  /** Per kernel step: its call's action index, how many buffer offsets lead its arguments, its scratch. */
  calls: Map<number, { action: number; buffers: number; scratch?: Storage }>;
  /** Per host value written to the arena: the upload actions. */
  uploads: Map<string, number[]>;
  /** Bytes each buffer needs for the shapes the plan holds now (by value; scratch by step index). */
  needs: Map<string | number, number>;
}

/**
 * The host steps of a plan that read the host-read inputs' values (directly or through other
 * host steps) when nothing else in the plan does: no kernel's shapes came from those values.
 * A decode step of a static-cache model differs from the last one only there (positions,
 * write index), so the plan is reused after re-running these few steps (refreshPlan).
 */
interface ValueFreeSteps {
  steps: { index: number; inputs: (Tensor | undefined)[]; outputShapes: number[][] }[];
  /** Per value these steps make: the upload actions that write it and the graph outputs that return it. */
  uploads: Map<string, number[]>;
  outputs: Map<string, number[]>;
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
  /** Inputs whose values the op's shape inference read. */
  constantsRead?: number[];
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
  /** Host values that come from the host-read inputs' values, and the steps that make them. */
  private readonly dynamic: Set<string>;
  private readonly dynamicSteps: ValueFreeSteps['steps'] = [];
  private readonly dynamicUploads = new Map<string, number[]>();
  private readsValues = false;

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
    this.dynamic = new Set(ctx.program.memory.hostReadInputs.filter((name) => inputs.has(name)));
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
    const fromValues = present.some((n) => n !== undefined && this.dynamic.has(n));
    if (fromValues) this.dynamicSteps.push({ index, inputs: evalInputs, outputShapes: memo.outputShapes });
    for (let k = 0; k < node.outputs.length; k++) {
      const name = node.outputs[k];
      if (!name) continue;
      const t = outputs[k];
      this.hostValues.set(name, t);
      this.shapes.set(name, memo.outputShapes[k]);
      if (fromValues) this.dynamic.add(name);
      if (this.values[name]?.inArena) {
        const s = this.newStorage(this.allot(arenaBytes(t.dtype, t.size), name, this.previous?.storages.get(name)), index);
        this.storages.set(name, s);
        if (fromValues) this.dynamicUploads.set(name, [...(this.dynamicUploads.get(name) ?? []), this.actions.length]);
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
    // Shapes from the host-read inputs' values: the plan holds for these values only.
    if (memo.constantsRead!.some((i) => this.dynamic.has(present[i]!))) this.readsValues = true;
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
    this.calls.set(index, { action: this.actions.length, buffers: buffers.length, scratch });
    this.actions.push({ step, buffers, scalars: memo.scalars!, split: this.ctx.pool ? memo.split : undefined });
  }

  private finish(): Plan {
    const dynamicOutputs = new Map<string, number[]>();
    const outputs: Plan['outputs'] = this.ctx.program.outputs.map(({ name }, i) => {
      const shape = this.shapeOf(name);
      if (this.dynamic.has(name) && this.hostValues.has(name)) dynamicOutputs.set(name, [...(dynamicOutputs.get(name) ?? []), i]);
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
      actions: this.actions.map((a) => ('kind' in a ? a : this.callOf(a))),
      outputs,
      valueFree: this.readsValues ? undefined : { steps: this.dynamicSteps, uploads: this.dynamicUploads, outputs: dynamicOutputs },
      record: { shapes: this.shapes, hostValues: this.hostValues, storages: this.storages, calls: this.calls, uploads: this.uploads, needs: this.needs },
    };
  }

  /** A kernel call of a placed plan: its buffers' offsets, then its scalars. */
  private callOf({ step, buffers, scalars, split }: PendingCall): Action {
    const args = new Array<number>(buffers.length + scalars.length);
    for (let i = 0; i < buffers.length; i++) args[i] = buffers[i].offset;
    for (let i = 0; i < scalars.length; i++) args[buffers.length + i] = scalars[i];
    const pool = this.ctx.pool;
    if (!pool || !split) return { kind: 'call', node: step.node, fn: step.fn!, args };
    // Each thread computes its share of the rows; the shares are fixed per plan.
    const shares = pool.shareArgs(args, split.units, split.step);
    return { kind: 'call', node: step.node, fn: () => pool.run(step.exportName!, shares), args };
  }
}
