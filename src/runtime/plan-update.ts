/**
 * The last activation plan reshaped for the next run instead of a new one (plan.ts): a decode
 * step's new positions (a static cache: only the host steps on positions change) or one more
 * cached position (a growing cache: also the attention steps' shapes and scratch).
 */
import { Tensor, sizeOf } from '../../ir/tensor.js';
import { arenaBytes } from '../../targets/wasm/arena.js';
import type { Action, CarriedInput, Plan, PlanContext, StepMemo } from './plan.js';
import { callAction, deviceResults, hostResults, launchOf, sameShape, sameValue } from './plan-steps.js';

/**
 * Makes a plan fit a run whose input shapes or host-read values differ (the next decode step:
 * one more cached position, new positions): re-works only the steps that read something that
 * changed, in schedule order, and keeps the plan's buffers. False (plan untouched) when a value
 * outgrows its buffer or the carried buffers moved; the caller then builds a new plan
 * (PlanBuilder gives grown buffers room to grow again).
 */
export function reshapePlan(ctx: PlanContext, plan: Plan, inputs: ReadonlyMap<string, Tensor>, carried: ReadonlyMap<string, CarriedInput>): boolean {
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

  const launches = new Map<number, StepMemo>();
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
    launches.set(index, memo);
  }

  // Everything fits: the plan takes the new shapes, values, scalars and uploads.
  for (const [name, shape] of shapes) record.shapes.set(name, shape);
  for (const [name, value] of hostValues) record.hostValues.set(name, value);
  for (const [key, bytes] of needs) record.needs.set(key, bytes);
  for (const [index, memo] of launches) {
    const call = record.calls.get(index)!;
    plan.actions[call.action] = callAction(ctx, ctx.steps[index], call.buffers.map((b) => b.offset), memo.scalars!, memo.split);
  }
  for (const [name, t] of uploads) for (const i of record.uploads.get(name)!) (plan.actions[i] as Extract<Action, { kind: 'upload' }>).tensor = t;
  for (const out of plan.outputs) {
    out.shape = shapeOf(out.name);
    const value = hostValues.get(out.name);
    if (value && out.tensor) out.tensor = value;
  }
  return true;
}
