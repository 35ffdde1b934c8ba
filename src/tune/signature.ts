/**
 * Op signatures: the tuning database's key for one kernel instance. Two nodes with the same
 * signature build the same kernel for the same knobs, so they share a tuning result: the
 * op and domain, input/output dtypes and static shapes (symbolic dims normalised, below),
 * the attributes the kernel sees, and the knob space itself (a kernel that gains or changes
 * knobs misses its old entries instead of reading stale ones). Node and value names never
 * enter the key.
 */
import type { Attribute, Dim, TensorType } from '../../ir/graph.js';
import type { KernelBuildContext, TuningKnob } from '../../targets/wasm/kernel-def.js';

/**
 * Symbolic dims by role: a dim named like a batch is 'B', every other one (sequence, past
 * length, total length) is 'S'. Measurement gives B = 1 and S the regime's sequence length.
 */
export type NormalDim = number | 'B' | 'S';

export function normalDim(dim: Dim): NormalDim {
  if (typeof dim === 'number') return dim;
  return /batch/i.test(dim) ? 'B' : 'S';
}

function typeText(type: TensorType | undefined): string {
  if (!type) return '-';
  if (!type.shape) return `${type.dtype}[?]`;
  return `${type.dtype}[${type.shape.map(normalDim).join(',')}]`;
}

function attributeText(attr: Attribute): string {
  switch (attr.kind) {
    case 'int': case 'float': return String(attr.value);
    case 'string': return JSON.stringify(attr.value);
    case 'ints': case 'floats': return `[${attr.value.join(',')}]`;
    case 'strings': return JSON.stringify(attr.value);
    case 'tensor': return `tensor:${attr.value.dtype}[${attr.value.shape.join(',')}]`;
    case 'tensors': return `tensors:${attr.value.length}`;
    default: return attr.kind;
  }
}

function knobsText(space: readonly TuningKnob[]): string {
  return space.map((knob) => `${knob.name}=${knob.values.join('|')}@${knob.default}`).join(';');
}

/** The stable key of a node's kernel on a target (see the module comment for what enters it). */
export function opSignature(ctx: KernelBuildContext, space: readonly TuningKnob[]): string {
  const { node } = ctx;
  const attrs = [...node.attributes.entries()]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([name, attr]) => `${name}=${attributeText(attr)}`)
    .join(',');
  const inputs = ctx.inputs.map(typeText).join(',');
  const outputs = ctx.outputs.map(typeText).join(',');
  return `${node.domain || 'ai.onnx'}::${node.op} in(${inputs}) out(${outputs}) attrs(${attrs}) knobs(${knobsText(space)})`;
}

/** Whether every tensor's rank is known: measurement needs concrete shapes. */
export function hasStaticRanks(ctx: KernelBuildContext): boolean {
  return ctx.inputs.every((t) => !t || t.shape !== undefined) && ctx.outputs.every((t) => t.shape !== undefined);
}

/** A measurement regime: the value the 'S' dims take (batch dims are 1). */
export interface Regime {
  name: 'decode' | 'prefill' | 'static';
  seq: number;
}

/** Sequence length standing for prefill when measuring symbolic shapes. */
export const PREFILL_SEQ = 16;

/**
 * The regimes to measure a node in: decode (S = 1) and prefill (S = 16) when any shape is
 * symbolic, else its one static shape.
 */
export function regimesOf(ctx: KernelBuildContext): Regime[] {
  const symbolic = [...ctx.inputs, ...ctx.outputs].some((t) => t?.shape?.some((d) => typeof d === 'string'));
  return symbolic ? [{ name: 'decode', seq: 1 }, { name: 'prefill', seq: PREFILL_SEQ }] : [{ name: 'static', seq: 1 }];
}

/** A concrete shape for a regime. */
export function concreteShape(shape: readonly Dim[], regime: Regime): number[] {
  return shape.map((dim) => {
    const d = normalDim(dim);
    return d === 'B' ? 1 : d === 'S' ? regime.seq : d;
  });
}
