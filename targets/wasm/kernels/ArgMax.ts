/**
 * ArgMax / ArgMin on wasm: the index of the largest (smallest) element along `axis`, as i32 in
 * the arena (int64 at the boundary). The kernel is rank-independent: the launch passes the
 * input split at the axis as outer × length × inner, so one kernel serves every node with the
 * same element type and flags. NaN counts as the extreme, first occurrence unless
 * select_last_index (the reference op's rule).
 */
import { KernelBuilder, add, eq, gt, i32, lt, mul, ne, or, select, type Expr } from '../../../codegen/builder.js';
import type { Node } from '../../../ir/graph.js';
import type { KernelBuildContext, LaunchShapes, WasmKernelDef } from '../kernel-def.js';
import { checkArity, checkElems, computeOf, elemOf } from './elementwise.js';
import { intAttr } from './nn-util.js';

type Kind = 'ArgMax' | 'ArgMin';


/** The input shape split at the (normalised) axis: [outer, length, inner]. */
export function splitAtAxisArgs(shape: readonly number[], axis: number): [number, number, number] {
  const at = axis < 0 ? axis + shape.length : axis;
  const product = (dims: readonly number[]): number => dims.reduce((a, b) => a * b, 1);
  return [product(shape.slice(0, at)), shape[at], product(shape.slice(at + 1))];
}

/** Why the axis does not fit the input's static rank, or undefined. */
export function checkAxis(axis: number, rank: number): string | undefined {
  return axis < -rank || axis >= rank ? `axis ${axis} is out of range for rank ${rank}` : undefined;
}

function checkArg(ctx: KernelBuildContext, kind: Kind): string | undefined {
  const input = ctx.inputs[0];
  if (!input || input.dtype === 'string') return `${kind} does not accept ${input?.dtype ?? 'unknown'} inputs`;
  const reason = checkArity(ctx, 1, 1) ?? checkElems(ctx);
  if (reason) return reason;
  if (!input.shape) return 'input rank is unknown';
  const axis = intAttr(ctx.node, 'axis', 0);
  const axisReason = checkAxis(axis, input.shape.length);
  if (axisReason) return axisReason;
  const length = input.shape[axis < 0 ? axis + input.shape.length : axis];
  if (length === 0) return `${kind} over an empty axis ${axis}`;
  return undefined;
}

function buildArg(ctx: KernelBuildContext, kind: Kind): ReturnType<WasmKernelDef['build']> {
  const dtype = ctx.inputs[0]!.dtype;
  const selectLast = (ctx.opset ?? 13) >= 12 && intAttr(ctx.node, 'select_last_index', 0) === 1;
  const k = new KernelBuilder(ctx.name);
  const input = k.buffer('in0', elemOf(dtype)!, 'read');
  const out = k.buffer('out0', 'i32', 'write');
  const outer = k.scalar('outer');
  const length = k.scalar('length');
  const inner = k.scalar('inner');
  const float = computeOf(dtype) === 'f32';
  const better = (a: Expr, b: Expr): Expr => (kind === 'ArgMax' ? gt(a, b) : lt(a, b));
  k.loop('o', 0, outer, (o) => {
    const rowBase = k.let('row', mul(o, mul(length, inner)));
    k.loop('i', 0, inner, (i) => {
      const base = k.let('base', add(rowBase, i));
      const best = k.mut('best', i32(0));
      const bestValue = k.mut('best_value', input.load(base));
      k.loop('j', 1, length, (j) => {
        const v = k.let('v', input.load(add(base, mul(j, inner))));
        let take = better(v, bestValue);
        if (selectLast) take = or(take, eq(v, bestValue));
        if (float) {
          // A NaN wins over numbers, and once held only a later NaN (select_last_index) replaces it.
          const vNaN = ne(v, v);
          const heldNaN = ne(bestValue, bestValue);
          const whileHeld = selectLast ? vNaN : i32(0);
          take = select(heldNaN, whileHeld, or(take, vNaN));
        }
        k.if(take, () => {
          k.set(best, j);
          k.set(bestValue, v);
        });
      });
      out.store(add(mul(o, inner), i), best);
    });
  });
  return k.build();
}

function argArgs(node: Node, shapes: LaunchShapes): number[] {
  return splitAtAxisArgs(shapes.inputs[0] ?? [], intAttr(node, 'axis', 0));
}

function define(kind: Kind): WasmKernelDef {
  return {
    domain: '',
    op: kind,
    check: (ctx) => checkArg(ctx, kind),
    build: (ctx) => buildArg(ctx, kind),
    args: argArgs,
  };
}

export const argMaxKernel = define('ArgMax');
export const argMinKernel = define('ArgMin');
