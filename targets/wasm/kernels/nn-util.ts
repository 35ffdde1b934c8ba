/**
 * Helpers shared by the wasm matmul / attention / data-movement kernels: arena element
 * types, the buffer calling convention, strided copy nests and small integer helpers.
 */
import type { Expr } from '../../../codegen/kernel.js';
import { type BufferRef, type ExprLike, KernelBuilder, add, gt, i32, lt, mul, select, sub } from '../../../codegen/builder.js';
import type { ScalarType } from '../../../codegen/kernel.js';
import { type DType, isFloat } from '../../../ir/dtype.js';
import type { Dim, Node, TensorType } from '../../../ir/graph.js';
import type { ArenaDtype, KernelBuildContext, LaunchShapes } from '../kernel-def.js';
import { Attrs } from '../../../ir/ops/attrs.js';

/** The arena storage type of a tensor dtype, or undefined when the wasm target cannot hold it. */
export function arenaElem(dtype: DType): ArenaDtype | undefined {
  if (isFloat(dtype)) return 'f32';
  if (dtype === 'bool') return 'u8';
  if (dtype === 'string' || dtype === 'i4' || dtype === 'u4' || dtype === 'i2' || dtype === 'u2') return undefined;
  return 'i32';
}

/** Buffers of a kernel in calling-convention order, by input/output position. */
export interface KernelIO {
  k: KernelBuilder;
  inputs: (BufferRef | undefined)[];
  outputs: (BufferRef | undefined)[];
  scratch?: BufferRef;
}

/**
 * Declares the buffer params: present inputs, present outputs, then (optionally) scratch.
 * Element types come from the arena type of each tensor unless `elems` overrides one
 * (e.g. a scratch region viewed as f32).
 */
export function declareIO(ctx: KernelBuildContext, scratch?: ScalarType): KernelIO {
  const k = new KernelBuilder(ctx.name);
  const inputs = ctx.node.inputs.map((name, i) => {
    if (!name) return undefined;
    const type = ctx.inputs[i];
    return k.buffer(`in${i}`, (type && arenaElem(type.dtype)) ?? 'f32', 'read');
  });
  const outputs = ctx.node.outputs.map((name, i) => {
    if (!name) return undefined;
    return k.buffer(`out${i}`, arenaElem(ctx.outputs[i].dtype) ?? 'f32', 'write');
  });
  return { k, inputs, outputs, scratch: scratch ? k.buffer('scratch', scratch, 'readwrite') : undefined };
}

/** Why the node's tensors cannot live in the arena, or undefined. */
export function checkArenaTypes(ctx: KernelBuildContext): string | undefined {
  for (const [i, t] of ctx.inputs.entries()) {
    if (t && !arenaElem(t.dtype)) return `input ${i} has dtype ${t.dtype}, which the wasm arena cannot hold`;
  }
  for (const [i, t] of ctx.outputs.entries()) {
    if (t && ctx.node.outputs[i] && !arenaElem(t.dtype)) return `output ${i} has dtype ${t.dtype}, which the wasm arena cannot hold`;
  }
  return undefined;
}

/** The static rank of a tensor type, or undefined when unknown. */
export function rankOf(type: TensorType | undefined): number | undefined {
  return type?.shape?.length;
}

/** Row-major element strides. */
export function stridesOf(shape: readonly number[]): number[] {
  const strides = new Array<number>(shape.length).fill(1);
  for (let d = shape.length - 2; d >= 0; d--) strides[d] = strides[d + 1] * shape[d + 1];
  return strides;
}

export function product(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** The concrete shape of launch input i (an error when the runtime did not give it). */
export function shapeIn(shapes: LaunchShapes, i: number): number[] {
  const s = shapes.inputs[i];
  if (!s) throw new Error(`kernel launch: missing shape of input ${i}`);
  return s;
}

/** A constant input's values (as numbers), or undefined when not known at compile time. */
export function constantValues(ctx: KernelBuildContext, index: number): number[] | undefined {
  if (!ctx.node.inputs[index]) return undefined;
  const t = ctx.constant(index);
  return t ? t.toArray() : undefined;
}

/** Clamps an int64 constant into the i32 range (ONNX uses INT64_MAX for "to the end"). */
export function toI32(value: number): number {
  return Math.max(-(2 ** 31) + 1, Math.min(2 ** 31 - 1, value));
}

/** Declares `count` i32 scalar params named `${base}0..` and returns them. */
export function scalars(k: KernelBuilder, base: string, count: number): Expr[] {
  return Array.from({ length: count }, (_, i) => k.scalar(`${base}${i}`));
}

export const imax = (a: ExprLike, b: ExprLike): Expr => {
  const ea = typeof a === 'number' ? i32(a) : a;
  const eb = typeof b === 'number' ? i32(b) : b;
  return select(gt(ea, eb), ea, eb);
};
export const imin = (a: ExprLike, b: ExprLike): Expr => {
  const ea = typeof a === 'number' ? i32(a) : a;
  const eb = typeof b === 'number' ? i32(b) : b;
  return select(lt(ea, eb), ea, eb);
};
export const clampI = (x: Expr, lo: ExprLike, hi: ExprLike): Expr => imin(imax(x, lo), hi);

/**
 * A loop nest over `dims` that carries a source and a destination element offset
 * (offset += index * stride per level, hoisted out of inner loops); `leaf` gets the final
 * offsets. Rank 0 runs the leaf once.
 */
export function copyNest(
  k: KernelBuilder, dims: Expr[], srcStrides: Expr[], dstStrides: Expr[], srcBase: Expr, dstBase: Expr,
  leaf: (src: Expr, dst: Expr) => void, level = 0,
): void {
  if (level === dims.length) {
    leaf(srcBase, dstBase);
    return;
  }
  k.loop(`i${level}`, 0, dims[level], (i) => {
    const s = k.let(`s${level}`, add(srcBase, mul(i, srcStrides[level])));
    const d = k.let(`d${level}`, add(dstBase, mul(i, dstStrides[level])));
    copyNest(k, dims, srcStrides, dstStrides, s, d, leaf, level + 1);
  }, { parallel: true });
}

/** Copies one element (arena types copy as themselves). */
export function copyElement(k: KernelBuilder, from: BufferRef, src: Expr, to: BufferRef, dst: Expr): void {
  k.store(to, dst, from.load(src));
}

/** A fill of `count` elements starting at `start` with `value`. */
export function fill(k: KernelBuilder, buf: BufferRef, start: ExprLike, count: ExprLike, value: ExprLike): void {
  const s = typeof start === 'number' ? i32(start) : start;
  k.loop('f', 0, count, (i) => k.store(buf, add(s, i), value));
}

/** Numbers of a dim list, with symbolic dims as undefined. */
export function staticDims(shape: readonly Dim[] | undefined): (number | undefined)[] | undefined {
  return shape?.map((d) => (typeof d === 'number' ? d : undefined));
}

/** Present-input count helper: whether input i is given. */
export function hasInput(node: Node, i: number): boolean {
  return !!node.inputs[i];
}

export function hasOutput(node: Node, i: number): boolean {
  return !!node.outputs[i];
}

/** i - j as an expression with numbers lifted to i32. */
export const isub = (a: ExprLike, b: ExprLike): Expr => sub(typeof a === 'number' ? i32(a) : a, b);

/** Normalizes an axis attribute against a rank (no error: callers check ranges in `check`). */
export function normAxis(axis: number, rank: number): number {
  return axis < 0 ? axis + rank : axis;
}

/** Attribute reads for kernel templates, through the IR's typed accessor (errors name the node). */
export function intAttr(node: Node, name: string, fallback: number): number {
  return new Attrs(node).int(name, fallback);
}

export function floatAttr(node: Node, name: string, fallback: number): number {
  return new Attrs(node).float(name, fallback);
}

export function optionalFloatAttr(node: Node, name: string): number | undefined {
  const attrs = new Attrs(node);
  return attrs.has(name) ? attrs.float(name) : undefined;
}
