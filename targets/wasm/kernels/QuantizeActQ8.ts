import { KernelBuilder, abs, add, cast, constant, div, eq, f32, max, min, mul, nearest, select } from '../../../codegen/builder.js';
import type { Expr, Kernel } from '../../../codegen/kernel.js';
import type { Node } from '../../../ir/graph.js';
import { Attrs } from '../../../ir/ops/attrs.js';
import { TABLE_CODE_MAX } from '../../../passes/lut/tables.js';
import type { KernelBuildContext, LaunchShapes, WasmKernelDef } from '../kernel-def.js';
import { leadingDims } from './lut/common.js';

/**
 * llmcc.QuantizeActQ8(A) on wasm (semantics: passes/dot/q8-math.ts): per row and block, the
 * max |a| (f32 max, as the reference), s = max/127, q = nearest(a / s) clamped to ±127 (IEEE
 * division and ties-to-even: bit-exact with the reference), Σq in i32, and zeros up to the
 * padded length. Scalar: it runs once per call over M·K activations, against N·K weights.
 */

interface Params { K: number; groupSize: number; groups: number }

function params(ctx: KernelBuildContext): Params {
  const attrs = new Attrs(ctx.node);
  const shape = ctx.inputs[0]?.shape;
  const K = shape ? shape[shape.length - 1] : undefined;
  if (typeof K !== 'number') throw attrs.error('QuantizeActQ8 on wasm needs a static K');
  const groupSize = attrs.int('group_size');
  return { K, groupSize, groups: Math.ceil(K / groupSize) };
}

export function buildQuantizeActQ8(ctx: KernelBuildContext): Kernel {
  const { K, groupSize, groups } = params(ctx);
  const padded = groups * groupSize;
  const k = new KernelBuilder(ctx.name);
  const a = k.buffer('a', 'f32', 'read');
  const q = k.buffer('q', 'i8', 'write');
  const scales = k.buffer('scales', 'f32', 'write');
  const sums = k.buffer('sums', 'i32', 'write');
  const M = k.scalar('M');
  k.loop('m', 0, M, (m) => {
    const aRow = k.let('arow', mul(m, K));
    const qRow = k.let('qrow', mul(m, padded));
    /** One block at g (an expression), of `length` activations (static; the last may be partial). */
    const block = (g: Expr, length: number): void => {
      const start = k.let('start', mul(g, groupSize));
      const at = (i: Expr): Expr => add(start, i);
      const mx = k.mut('mx', f32(0));
      k.loop('ka', 0, length, (i) => k.set(mx, max(mx, abs(a.load(add(aRow, at(i)))))));
      const scale = k.let('scale', div(mx, f32(TABLE_CODE_MAX)));
      scales.store(add(mul(m, groups), g), scale);
      const zero = k.let('zs', eq(scale, f32(0)));
      const sum = k.mut('sum', constant('i32', 0));
      k.loop('kq', 0, length, (i) => {
        const code = min(max(nearest(div(a.load(add(aRow, at(i))), scale)), f32(-TABLE_CODE_MAX)), f32(TABLE_CODE_MAX));
        const c = k.let('c', select(zero, constant('i32', 0), cast(code, 'i32')));
        q.store(add(qRow, at(i)), c);
        k.set(sum, add(sum, c));
      });
      if (length < groupSize) k.loop('kp', length, groupSize, (i) => q.store(add(qRow, at(i)), 0));
      sums.store(add(mul(m, groups), g), sum);
    };
    const fullGroups = Math.floor(K / groupSize);
    k.loop('g', 0, fullGroups, (g) => block(g, groupSize));
    if (fullGroups < groups) block(constant('i32', fullGroups), K - fullGroups * groupSize);
  }, { parallel: true });
  return k.build();
}

export const quantizeActQ8Kernel: WasmKernelDef = {
  domain: 'llmcc',
  op: 'QuantizeActQ8',
  check(ctx) {
    const a = ctx.inputs[0];
    if (!a?.shape || typeof a.shape[a.shape.length - 1] !== 'number') return 'K (the last dim of A) must be static';
    return undefined;
  },
  build: buildQuantizeActQ8,
  args(_node: Node, shapes: LaunchShapes): number[] {
    return [leadingDims(shapes.inputs[0], 1)];
  },
};
