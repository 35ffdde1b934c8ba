/**
 * One step of an activation plan (plan.ts), worked out for given input shapes and host values:
 * host evaluation, shape inference and launch scalars, memoized per step (StepMemo). Shared by
 * the builder and by the updates of existing plans (plan-update.ts).
 */
import { LlmccError, describeNode } from '../../ir/errors.js';
import { inferConcreteShapes } from '../../ir/concrete-shapes.js';
import type { Node } from '../../ir/graph.js';
import { Attrs } from '../../ir/ops/attrs.js';
import type { OpDef } from '../../ir/ops/types.js';
import type { Tensor } from '../../ir/tensor.js';
import type { LaunchShapes, WasmKernelDef } from '../../targets/wasm/kernel-def.js';
import type { RowSplitKernel } from '../../targets/wasm/kernels/lut/common.js';
import type { Action, PlanContext, PreparedStep, StepMemo } from './plan.js';

export function sameShape(a: readonly number[] | undefined, b: readonly number[] | undefined): boolean {
  if (a === b) return true;
  if (!a || !b || a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

export function sameValue(a: Tensor | undefined, b: Tensor | undefined): boolean {
  if (a === b) return true;
  if (!a || !b || a.dtype !== b.dtype || !sameShape(a.shape, b.shape)) return false;
  const x = a.data, y = b.data;
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return false;
  return true;
}

export function memoHolds(memo: StepMemo | undefined, shapes: readonly (readonly number[] | undefined)[], values: readonly (Tensor | undefined)[]): memo is StepMemo {
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

export function evaluateHost(ctx: PlanContext, node: Node, op: OpDef, inputs: (Tensor | undefined)[]): Tensor[] {
  return op.evaluate({
    node, opset: ctx.opsets.get(node.domain) ?? 1, attrs: new Attrs(node), inputs,
    runSubgraph: () => { throw new LlmccError('subgraphs are not supported on wasm', describeNode(node)); },
  });
}

/** A host step's results for these inputs: the memo's when it holds, else evaluated and memoized. */
export function hostResults(
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
export function deviceResults(
  ctx: PlanContext, step: PreparedStep, index: number, present: (string | undefined)[],
  inputShapes: (number[] | undefined)[], inputValues: (Tensor | undefined)[], constant: (name: string) => Tensor | undefined,
): StepMemo {
  const memo = ctx.stepMemos[index];
  if (memoHolds(memo, inputShapes, inputValues)) return memo;
  const values = ctx.program.values;
  const outputShapes = inferConcreteShapes({
    node: step.node,
    op: step.op,
    opset: ctx.opsets.get(step.node.domain) ?? 1,
    inputs: present.map((n, i) => (n ? { dtype: values[n].dtype, shape: inputShapes[i]! } : undefined)),
    constant: (i) => (present[i] ? constant(present[i]!) : undefined),
    target: 'wasm',
    dataDependent: (name, shape) => `output '${name}' has a data-dependent shape ${shape}, which the wasm target cannot size`,
  });
  const fresh: StepMemo = { inputShapes, inputValues, outputShapes };
  ctx.stepMemos[index] = fresh;
  return fresh;
}

/** Fills a kernel step's memo with its launch scalars, scratch size and thread split. */
export function launchOf(ctx: PlanContext, step: PreparedStep, memo: StepMemo, inputShapes: (number[] | undefined)[]): void {
  if (memo.scalars !== undefined) return;
  const launch: LaunchShapes = { inputs: inputShapes.map((s) => (s ? [...s] : undefined)), outputs: memo.outputShapes };
  memo.scratchBytes = step.kernel!.scratchBytes ? step.kernel!.scratchBytes(step.node, launch) : undefined;
  memo.scalars = step.kernel!.args(step.node, launch);
  const split = ctx.pool ? splitterOf(step.kernel)?.rowSplit(step.node, launch) : undefined;
  if (split) memo.split = split;
}

/** A kernel call with these arguments (buffer offsets, then scalars); with threads, its row shares. */
export function callAction(
  ctx: PlanContext, step: PreparedStep, offsets: number[], scalars: readonly number[], split: StepMemo['split'],
): Extract<Action, { kind: 'call' }> {
  const args = [...offsets, ...scalars];
  const pool = ctx.pool;
  if (!pool || !split) return { kind: 'call', node: step.node, fn: step.fn!, args };
  // Each thread computes its share of the rows; the shares are fixed per call.
  const shares = pool.shareArgs(args, split.units, split.step);
  return { kind: 'call', node: step.node, fn: () => pool.run(step.exportName!, shares), args };
}
