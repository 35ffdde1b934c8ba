import type { DType } from '../../dtype.js';
import type { Dim, TensorType } from '../../graph.js';
import { Tensor, sizeOf } from '../../tensor.js';
import type { EvalContext, InferContext, OpContextBase, OutputInfo } from '../types.js';
import { broadcastIndex, broadcastShapes, shapesEqual } from '../util/shape.js';
import { LlmccError } from '../../errors.js';

/** Helpers shared by the elementwise group's ops. */

/** Input i of an evaluation, or a node-naming error when it is missing. */
export function requireInput(ctx: EvalContext, index: number): Tensor {
  const t = ctx.inputs[index];
  if (!t) throw ctx.attrs.error(`missing required input ${index}`);
  return t;
}

/** Type of input i at inference, or a node-naming error when it is missing. */
export function requireType(ctx: InferContext, index: number): TensorType {
  const t = ctx.inputs[index];
  if (!t) throw ctx.attrs.error(`missing required input ${index}`);
  return t;
}

/** Rethrows shape errors (raw LlmccError without a location) so they name the node. */
export function withNode<T>(ctx: OpContextBase, f: () => T): T {
  try {
    return f();
  } catch (error) {
    if (error instanceof LlmccError && !error.where) throw ctx.attrs.error(error.message);
    throw error;
  }
}

/** Output type: the broadcast of every present input's shape (unknown rank if any is unknown). */
export function broadcastType(
  ctx: InferContext, dtype: DType, types: readonly (TensorType | undefined)[] = ctx.inputs,
): TensorType {
  const shapes: Dim[][] = [];
  for (const t of types) {
    if (!t) continue;
    if (!t.shape) return { dtype, shape: undefined };
    shapes.push(t.shape);
  }
  return { dtype, shape: withNode(ctx, () => broadcastShapes(...shapes)) };
}

/** Broadcast of evaluated input shapes plus, per input, its flat index for each output element. */
export function broadcastMaps(ctx: OpContextBase, inputs: readonly Tensor[]): { shape: number[]; maps: (Int32Array | undefined)[] } {
  const shape = withNode(ctx, () => broadcastShapes(...inputs.map((t) => t.shape))) as number[];
  const maps = inputs.map((t) => (shapesEqual(t.shape, shape) ? undefined : broadcastIndex(shape, t.shape)));
  return { shape, maps };
}

/** Whether a dtype's storage holds plain numbers (everything but string). */
export function isNumeric(dtype: DType): boolean {
  return dtype !== 'string';
}

/** Rejects string inputs to numeric ops with a clear message. */
export function requireNumeric(ctx: OpContextBase, dtype: DType): void {
  if (!isNumeric(dtype)) throw ctx.attrs.error(`${ctx.node.op} does not accept string tensors`);
}

/**
 * Elementwise combination of the symbolic values of two small integer inputs, with numpy
 * broadcasting of their (rank ≤ 1) lengths. undefined when either value is unknown or any
 * element cannot be expressed.
 */
export function combineShapeValues(
  ctx: InferContext,
  f: (a: Dim, b: Dim) => Dim | undefined,
): Dim[] | undefined {
  const a = ctx.shapeValue(0);
  const b = ctx.shapeValue(1);
  if (!a || !b) return undefined;
  if (a.length !== b.length && a.length !== 1 && b.length !== 1) return undefined;
  const n = Math.max(a.length, b.length);
  const out: Dim[] = [];
  for (let i = 0; i < n; i++) {
    const d = f(a.length === 1 ? a[0] : a[i], b.length === 1 ? b[0] : b[i]);
    if (d === undefined) return undefined;
    out.push(d);
  }
  return out;
}

/** An OutputInfo with an optional shapeValue, only attached when the output is small and integer. */
export function withShapeValue(type: TensorType, shapeValue: Dim[] | undefined): OutputInfo {
  if (!shapeValue || !type.shape || type.shape.length > 1) return { type };
  return { type, shapeValue };
}

/** Row-major strides. */
export function strides(shape: readonly number[]): number[] {
  const out = new Array<number>(shape.length);
  let s = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    out[i] = s;
    s *= shape[i];
  }
  return out;
}

/**
 * Splits a shape around one axis into (outer, axis length, inner) so that element
 * (o, k, i) sits at flat offset (o * len + k) * inner + i.
 */
export function splitAtAxis(shape: readonly number[], axis: number): { outer: number; length: number; inner: number } {
  return {
    outer: sizeOf(shape.slice(0, axis)),
    length: shape[axis],
    inner: sizeOf(shape.slice(axis + 1)),
  };
}

/** Reads a constant or evaluated integer input as plain numbers (axes, k, …). */
export function integerValues(t: Tensor): number[] {
  return t.toArray().map((v) => Math.trunc(v));
}

/**
 * Before opset 7 binary ops broadcast only when `broadcast` = 1, and then align B with A
 * starting at `axis` (default: suffix alignment, which numpy broadcasting already does).
 * Returns B's shape padded with 1s so numpy broadcasting gives the legacy result.
 */
export function legacyAlignedShape<D extends Dim>(ctx: OpContextBase, a: readonly D[], b: readonly D[]): D[] {
  if (ctx.opset >= 7) return [...b];
  const broadcast = ctx.attrs.int('broadcast', 0) === 1;
  if (!broadcast) {
    const same = a.length === b.length && a.every((d, i) => d === b[i] || typeof d === 'string' || typeof b[i] === 'string');
    if (!same) throw ctx.attrs.error(`shapes [${a.join(',')}] and [${b.join(',')}] differ and broadcast is not set (opset ${ctx.opset})`);
    return [...b];
  }
  const axis = ctx.attrs.optionalInt('axis');
  if (axis === undefined) return [...b];
  const start = axis < 0 ? axis + a.length : axis;
  if (start < 0 || start + b.length > a.length) throw ctx.attrs.error(`broadcast axis ${axis} does not fit B's rank ${b.length} into A's rank ${a.length}`);
  return [...b, ...new Array<D>(a.length - start - b.length).fill(1 as D)];
}

/** The two inputs of a binary op after legacy (opset < 7) alignment; a no-op from opset 7. */
export function alignBinary(ctx: OpContextBase, a: Tensor, b: Tensor): [Tensor, Tensor] {
  if (ctx.opset >= 7) return [a, b];
  return [a, b.reshape(legacyAlignedShape(ctx, a.shape, b.shape))];
}

/** Input types of a binary op after legacy alignment, for inference. */
export function alignBinaryTypes(ctx: InferContext, a: TensorType, b: TensorType): (TensorType | undefined)[] {
  if (ctx.opset >= 7 || !a.shape || !b.shape) return [a, b];
  return [a, { dtype: b.dtype, shape: legacyAlignedShape(ctx, a.shape, b.shape) }];
}
