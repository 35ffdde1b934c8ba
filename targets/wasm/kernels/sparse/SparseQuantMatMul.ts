import { KernelBuilder, add, and, cast, div, f32, min, mul, or, shl, shr, sub, type BufferRef } from '../../../../codegen/builder.js';
import type { Expr, Kernel } from '../../../../codegen/kernel.js';
import type { Node } from '../../../../ir/graph.js';
import { Attrs } from '../../../../ir/ops/attrs.js';
import { defaultZeroPoint } from '../../../../ir/ops/llmcc/QuantMatMul.js';
import { sparseQuantParams, type SparseQuantParams } from '../../../../ir/ops/llmcc/SparseQuantMatMul.js';
import { indexBits } from '../../../../passes/sparsity/pattern.js';
import type { KernelBuildContext, LaunchShapes, WasmKernelDef } from '../../kernel-def.js';
import { leadingDims } from '../lut/common.js';

/**
 * llmcc.SparseQuantMatMul on wasm (semantics: ir/ops/llmcc/SparseQuantMatMul.ts), the
 * dequantize path: per output row, per kept weight f, its position is read from the packed
 * indices (log2(M)-bit fields), the activation at group(f)·M + position is loaded and
 * multiplied by fround((q − z)·s), which is exact in f32 as in the reference. Only the kept
 * weights are touched: N/M of the dense multiply-adds and code bytes. Sums run in f32 (the
 * reference sums in f64: results differ by f32 accumulation error only).
 * Scalar argument: M, the rows of A.
 */

function params(node: Node): SparseQuantParams {
  return sparseQuantParams(new Attrs(node));
}

/** Position (0..M−1) of kept weight `f` of the row whose packed indices start at byte `rowByte`. */
function positionOf(k: KernelBuilder, indices: BufferRef, rowByte: Expr, f: Expr, p: SparseQuantParams, lastByte: number): Expr {
  const bits = indexBits(p.pattern);
  const bit = k.let('bit', mul(f, bits));
  const at = k.let('at', add(rowByte, shr(bit, 3)));
  const shift = k.let('sh', and(bit, 7));
  let word: Expr = indices.load(at);
  // 3-bit fields can straddle two bytes; the second load is clamped inside the tensor.
  if (8 % bits !== 0) word = or(word, shl(indices.load(min(add(at, 1), lastByte)), 8));
  return and(shr(word, shift), p.pattern.m - 1);
}

export function buildSparseQuantMatMul(ctx: KernelBuildContext): Kernel {
  const p = params(ctx.node);
  const present = (i: number): boolean => !!ctx.node.inputs[i];
  const k = new KernelBuilder(ctx.name);
  // Calling convention: present inputs in order, then the output.
  const a = k.buffer('a', 'f32', 'read');
  const values = k.buffer('values', 'u8', 'read');
  const indices = k.buffer('indices', 'u8', 'read');
  const scales = k.buffer('scales', 'f32', 'read');
  const zeroPoints = present(4) ? k.buffer('zero_points', 'f32', 'read') : undefined;
  const bias = present(5) ? k.buffer('bias', 'f32', 'read') : undefined;
  const y = k.buffer('y', 'f32', 'write');
  const M = k.scalar('M');
  const keptPerGroup = (p.groupSize / p.pattern.m) * p.pattern.n;
  const lastByte = p.N * p.indexBytes - 1;
  const bytewise = indexBits(p.pattern) === 2 && keptPerGroup % 4 === 0;
  k.loop('m', 0, M, (m) => {
    const aBase = k.let('abase', mul(m, p.K));
    k.loop('n', 0, p.N, (n) => {
      const valueBase = k.let('vbase', mul(n, p.kept));
      const rowByte = k.let('ibase', mul(n, p.indexBytes));
      const acc = k.mut('acc', f32(0));
      k.loop('g', 0, p.groups, (g) => {
        const index = k.let('gi', add(mul(n, p.groups), g));
        const scale = k.let('s', scales.load(index));
        const zero = zeroPoints ? k.let('z', zeroPoints.load(index)) : f32(defaultZeroPoint(p.bits, p.ternary));
        const first = k.let('f0', mul(g, keptPerGroup));
        const term = (f: Expr, position: Expr): void => {
          // The sparsity group of f along K: f / N.
          const group = p.pattern.n === 1 ? f : p.pattern.n === 2 ? shr(f, 1) : div(f, p.pattern.n);
          const col = add(mul(group, p.pattern.m), position);
          const w = mul(sub(cast(values.load(add(valueBase, f)), 'f32'), zero), scale);
          k.set(acc, add(acc, mul(a.load(add(aBase, col)), w)));
        };
        if (bytewise) {
          // 2-bit positions, 4 per byte: one index load per 4 kept weights, static shifts.
          k.loop('f', first, add(first, keptPerGroup), (f) => {
            const byte = k.let('ib', indices.load(add(rowByte, shr(f, 2))));
            for (let u = 0; u < 4; u++) term(k.let('fu', add(f, u)), and(shr(byte, 2 * u), 3));
          }, { step: 4 });
        } else {
          k.loop('f', first, add(first, keptPerGroup), (f) => term(f, k.let('pos', positionOf(k, indices, rowByte, f, p, lastByte))));
        }
      });
      y.store(add(mul(m, p.N), n), bias ? add(acc, bias.load(n)) : acc);
    });
  }, { parallel: true });
  return k.build();
}

const FLOAT_ACTIVATIONS = ['f32', 'f16', 'bf16'];

export const sparseQuantMatMulKernel: WasmKernelDef = {
  domain: 'llmcc',
  op: 'SparseQuantMatMul',
  check(ctx) {
    const [a, values, indices, scales, zeroPoints, bias] = ctx.inputs;
    if (!a || !values || !indices || !scales) return 'inputs A, values, indices and scales are required';
    if (!FLOAT_ACTIVATIONS.includes(a.dtype)) return `activations of type ${a.dtype}`;
    if (values.dtype !== 'u8' || indices.dtype !== 'u8') return 'values and indices must be u8';
    if (!['f32', 'f16'].includes(scales.dtype)) return `scales of type ${scales.dtype}`;
    if (zeroPoints && zeroPoints.dtype !== 'f32') return `zero points of type ${zeroPoints.dtype}`;
    if (bias && bias.dtype !== 'f32') return `bias of type ${bias.dtype}`;
    params(ctx.node);
    return undefined;
  },
  build: buildSparseQuantMatMul,
  args(_node: Node, shapes: LaunchShapes): number[] {
    return [leadingDims(shapes.inputs[0], 1)];
  },
};
