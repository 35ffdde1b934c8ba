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
 * the few host steps that read those values (ValueFreeSteps, refreshPlan).
 */
import { LlmccError, describeNode } from '../../ir/errors.js';
import { inferConcreteShapes } from '../../ir/concrete-shapes.js';
import type { Node } from '../../ir/graph.js';
import { Attrs } from '../../ir/ops/attrs.js';
import type { OpDef } from '../../ir/ops/types.js';
import { Tensor, sizeOf } from '../../ir/tensor.js';
import { ARENA_ALIGN, type LiveBuffer, alignUp, arenaBytes, placeByLiveness } from '../../targets/wasm/arena.js';
import type { LaunchShapes, WasmKernelDef } from '../../targets/wasm/kernel-def.js';
import type { RowSplitKernel } from '../../targets/wasm/kernels/lut/common.js';
import type { WasmProgram, WeightEntry } from '../../targets/wasm/program.js';
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

function sameShape(a: readonly number[] | undefined, b: readonly number[] | undefined): boolean {
  if (a === b) return true;
  if (!a || !b || a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function sameValue(a: Tensor | undefined, b: Tensor | undefined): boolean {
  if (a === b) return true;
  if (!a || !b || a.dtype !== b.dtype || !sameShape(a.shape, b.shape)) return false;
  const x = a.data, y = b.data;
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return false;
  return true;
}

function memoHolds(memo: StepMemo | undefined, shapes: readonly (readonly number[] | undefined)[], values: readonly (Tensor | undefined)[]): memo is StepMemo {
  if (!memo) return false;
  for (let i = 0; i < shapes.length; i++) {
    if (!sameShape(memo.inputShapes[i], shapes[i]) || !sameValue(memo.inputValues[i], values[i])) return false;
  }
  return true;
}

/** The kernel's row-split hook, when it has one (threads share such launches). */
export function splitterOf(kernel: WasmKernelDef | undefined): RowSplitKernel | undefined {
  const candidate = kernel as (WasmKernelDef & Partial<RowSplitKernel>) | undefined;
  return candidate?.rowSplit ? (candidate as WasmKernelDef & RowSplitKernel) : undefined;
}

function evaluateHost(ctx: PlanContext, node: Node, op: OpDef, inputs: (Tensor | undefined)[]): Tensor[] {
  return op.evaluate({
    node, opset: ctx.opsets.get(node.domain) ?? 1, attrs: new Attrs(node), inputs,
    runSubgraph: () => { throw new LlmccError('subgraphs are not supported on wasm', describeNode(node)); },
  });
}

/** A host step's results for these inputs: the memo's when it holds, else evaluated and memoized. */
function hostResults(
  ctx: PlanContext, step: PreparedStep, index: number, evalInputs: (Tensor | undefined)[],
  inputShapes: (number[] | undefined)[], inputValues: (Tensor | undefined)[],
): StepMemo {
  const memo = ctx.stepMemos[index];
  if (memoHolds(memo, inputShapes, inputValues)) return memo;
  const hostOutputs = evaluateHost(ctx, step.node, step.op, evalInputs);
  const fresh: StepMemo = { inputShapes, inputValues, outputShapes: hostOutputs.map((t) => (t ? [...t.shape] : [])), hostOutputs };
  ctx.stepMemos[index] = fresh;
  return fresh;
}

/**
 * A kernel or view step's output shapes for these inputs (`constant` gives the host value of an
 * input its shape inference reads): the memo's when it holds, else inferred and memoized.
 */
function deviceResults(
  ctx: PlanContext, step: PreparedStep, index: number, present: (string | undefined)[],
  inputShapes: (number[] | undefined)[], inputValues: (Tensor | undefined)[], constant: (name: string) => Tensor | undefined,
): StepMemo {
  const memo = ctx.stepMemos[index];
  if (memoHolds(memo, inputShapes, inputValues)) return memo;
  const values = ctx.program.values;
  const constantsRead: number[] = [];
  const outputShapes = inferConcreteShapes({
    node: step.node,
    op: step.op,
    opset: ctx.opsets.get(step.node.domain) ?? 1,
    inputs: present.map((n, i) => (n ? { dtype: values[n].dtype, shape: inputShapes[i]! } : undefined)),
    constant: (i) => {
      if (!present[i]) return undefined;
      constantsRead.push(i);
      return constant(present[i]!);
    },
    target: 'wasm',
    dataDependent: (name, shape) => `output '${name}' has a data-dependent shape ${shape}, which the wasm target cannot size`,
  });
  const fresh: StepMemo = { inputShapes, inputValues, outputShapes, constantsRead };
  ctx.stepMemos[index] = fresh;
  return fresh;
}

/** Fills a kernel step's memo with its launch scalars, scratch size and thread split. */
function launchOf(ctx: PlanContext, step: PreparedStep, memo: StepMemo, inputShapes: (number[] | undefined)[]): void {
  if (memo.scalars !== undefined) return;
  const launch: LaunchShapes = { inputs: inputShapes.map((s) => (s ? [...s] : undefined)), outputs: memo.outputShapes };
  memo.scratchBytes = step.kernel!.scratchBytes ? step.kernel!.scratchBytes(step.node, launch) : undefined;
  memo.scalars = step.kernel!.args(step.node, launch);
  const split = ctx.pool ? splitterOf(step.kernel)?.rowSplit(step.node, launch) : undefined;
  if (split) memo.split = split;
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

/**
 * Makes a value-free plan fit new values of the host-read inputs: re-runs its value-reading
 * host steps and swaps their results into the uploads and outputs. False (plan untouched)
 * when a result's shape differs from the plan's: then the plan does not hold.
 */
export function refreshPlan(ctx: PlanContext, plan: Plan, inputs: ReadonlyMap<string, Tensor>): boolean {
  const free = plan.valueFree!;
  const fresh = new Map<string, Tensor>();
  for (const name of ctx.program.memory.hostReadInputs) fresh.set(name, inputs.get(name)!);
  for (const { index, inputs: built, outputShapes } of free.steps) {
    const { node, op } = ctx.steps[index];
    const results = evaluateHost(ctx, node, op, node.inputs.map((n, i) => (n ? fresh.get(n) ?? built[i] : undefined)));
    for (let k = 0; k < node.outputs.length; k++) {
      const name = node.outputs[k];
      if (!name) continue;
      if (!sameShape(results[k]?.shape, outputShapes[k])) return false;
      fresh.set(name, results[k]);
    }
  }
  for (const [name, at] of free.uploads) for (const i of at) (plan.actions[i] as Extract<Action, { kind: 'upload' }>).tensor = fresh.get(name)!;
  for (const [name, at] of free.outputs) for (const i of at) plan.outputs[i].tensor = fresh.get(name)!;
  return true;
}

/**
 * Makes a plan fit a run whose input shapes or host-read values differ (the next decode step:
 * one more cached position, new positions): re-works only the steps that read something that
 * changed, in schedule order, and keeps the plan's buffers. False (plan untouched) when a value
 * outgrows its buffer, the carried buffers moved, or threads split the launches; the caller
 * then builds a new plan (PlanBuilder gives grown buffers room to grow again).
 */
export function reshapePlan(ctx: PlanContext, plan: Plan, inputs: ReadonlyMap<string, Tensor>, carried: ReadonlyMap<string, CarriedInput>): boolean {
  if (ctx.pool) return false;
  const { record } = plan;
  const values = ctx.program.values;
  const shapes = new Map<string, number[]>();
  const hostValues = new Map<string, Tensor>();
  const changed = new Set<string>();
  const shapeOf = (name: string): number[] => shapes.get(name) ?? record.shapes.get(name) ?? ctx.weightsByName.get(name)!.shape;
  const hostValue = (name: string): Tensor | undefined => {
    const known = hostValues.get(name) ?? record.hostValues.get(name);
    if (known) return known;
    const w = ctx.weightsByName.get(name);
    return w && !inputs.has(name) && !carried.has(name) ? ctx.weightTensor(w) : undefined;
  };
  const needs = new Map<string | number, number>();
  /** A value's new bytes fit its buffer (a carried output: its reservation). */
  const fits = (name: string, bytes: number): boolean => {
    needs.set(name, bytes);
    const storage = record.storages.get(name);
    if (!storage) return true;
    if (!storage.fixed) return bytes <= storage.bytes;
    const pair = [...carried.values()].find((c) => c.output === name);
    return pair ? storage.offset === pair.outputOffset && bytes <= pair.capacity : true;
  };

  for (const input of ctx.program.inputs) {
    const { name } = input;
    const fed = inputs.get(name);
    const c = carried.get(name);
    if (c && record.storages.get(name)?.offset !== c.offset) return false;
    const shape = fed ? fed.shape : c?.shape;
    if (!shape) return false;
    if (!sameShape(shape, record.shapes.get(name))) {
      if (fed && !fits(name, arenaBytes(fed.dtype, fed.size))) return false;
      shapes.set(name, [...shape]);
      changed.add(name);
    }
    if (fed && record.hostValues.has(name) && !sameValue(fed, record.hostValues.get(name))) {
      hostValues.set(name, fed);
      changed.add(name);
    }
  }

  const scalars = new Map<number, number[]>();
  const uploads = new Map<string, Tensor>();
  for (let index = 0; index < ctx.steps.length; index++) {
    const step = ctx.steps[index];
    const { node } = step;
    if (!node.inputs.some((n) => n && changed.has(n))) continue;
    const present = node.inputs.map((n) => n || undefined);
    const inputShapes = present.map((n) => (n ? shapeOf(n) : undefined));
    const inputValues = present.map((n) => (n ? hostValues.get(n) ?? record.hostValues.get(n) : undefined));
    if (step.kind === 'host') {
      const evalInputs = present.map((n, i) => (n ? hostValue(n) ?? Tensor.zeros(values[n].dtype, inputShapes[i]!) : undefined));
      const memo = hostResults(ctx, step, index, evalInputs, inputShapes, inputValues);
      for (let k = 0; k < node.outputs.length; k++) {
        const name = node.outputs[k];
        if (!name) continue;
        const t = memo.hostOutputs![k];
        if (!sameShape(t.shape, record.shapes.get(name))) { shapes.set(name, memo.outputShapes[k]); changed.add(name); }
        if (!sameValue(t, record.hostValues.get(name))) { hostValues.set(name, t); changed.add(name); }
        if (record.uploads.has(name)) {
          if (!fits(name, arenaBytes(t.dtype, t.size))) return false;
          uploads.set(name, t);
        }
      }
      continue;
    }
    const memo = deviceResults(ctx, step, index, present, inputShapes, inputValues, hostValue);
    for (let k = 0; k < node.outputs.length; k++) {
      const name = node.outputs[k];
      if (!name || sameShape(memo.outputShapes[k], record.shapes.get(name))) continue;
      if (step.kind === 'kernel' && !fits(name, arenaBytes(values[name].dtype, sizeOf(memo.outputShapes[k])))) return false;
      shapes.set(name, memo.outputShapes[k]);
      changed.add(name);
    }
    if (step.kind === 'view') continue;
    const call = record.calls.get(index);
    // A launch skipped for empty outputs (or one that now would be): the plan's actions differ.
    const empty = memo.outputShapes.every((shape) => sizeOf(shape) === 0) && node.outputs.some((n) => n);
    if (!call || empty) return false;
    launchOf(ctx, step, memo, inputShapes);
    if ((memo.scratchBytes ?? 0) > (call.scratch?.bytes ?? 0) || (memo.scratchBytes === undefined) !== (call.scratch === undefined)) return false;
    if (memo.scratchBytes !== undefined) needs.set(index, memo.scratchBytes);
    scalars.set(index, memo.scalars!);
  }

  // Everything fits: the plan takes the new shapes, values, scalars and uploads.
  for (const [name, shape] of shapes) record.shapes.set(name, shape);
  for (const [name, value] of hostValues) record.hostValues.set(name, value);
  for (const [key, bytes] of needs) record.needs.set(key, bytes);
  for (const [index, launch] of scalars) {
    const call = record.calls.get(index)!;
    const action = plan.actions[call.action] as Extract<Action, { kind: 'call' }>;
    plan.actions[call.action] = { ...action, args: [...action.args.slice(0, call.buffers), ...launch] };
  }
  for (const [name, t] of uploads) for (const i of record.uploads.get(name)!) (plan.actions[i] as Extract<Action, { kind: 'upload' }>).tensor = t;
  for (const out of plan.outputs) {
    out.shape = shapeOf(out.name);
    const value = hostValues.get(out.name);
    if (value && out.tensor) out.tensor = value;
  }
  // Its value-free steps were recorded for the old shapes.
  plan.valueFree = undefined;
  return true;
}
