import { KernelBuilder, add, cast, f32, i32, mul, reduce, splat, sub, widen, type BufferRef } from '../../../codegen/builder.js';
import type { Expr, Kernel } from '../../../codegen/kernel.js';
import type { Node } from '../../../ir/graph.js';
import { Attrs } from '../../../ir/ops/attrs.js';
import { defaultZeroPoint } from '../../../ir/ops/llmcc/QuantMatMul.js';
import type { KernelBuildContext, LaunchShapes, WasmKernelDef } from '../kernel-def.js';
import { leadingDims } from './lut/common.js';

/**
 * llmcc.QuantMatMul(A, codes, scales, zero_points?, bias?) on wasm (semantics:
 * ir/ops/llmcc/QuantMatMul.ts): Y[m, n] = Σ_k A[m, k]·w[n, k] + bias[n] with each weight
 * dequantized in f32 exactly as the reference does, w = fround((q − z)·s): q − z is exact in
 * f32 (small integer codes, integer or half-integer zero points), so one f32 multiply rounds
 * like fround of the exact product. The sum runs in f32x4 lanes over K (the reference sums in
 * f64: results differ by f32 accumulation error only). Codes are u8 (one per weight, any of
 * 1–8 bits or ternary), scales arrive as f32 (f16 scales are widened at the arena boundary).
 * K and group_size are attributes, so each group's strips of 16 codes are laid out statically.
 * Scalar argument: M, the rows of A.
 */

interface Params { K: number; N: number; groupSize: number; groups: number; defaultZero: number }

function params(node: Node): Params {
  const attrs = new Attrs(node);
  const K = attrs.int('K');
  const groupSize = attrs.int('group_size');
  const bits = attrs.int('bits');
  const ternary = attrs.int('ternary', 0) === 1;
  return { K, N: attrs.int('N'), groupSize, groups: Math.ceil(K / groupSize), defaultZero: defaultZeroPoint(bits, ternary) };
}

/**
 * Adds Σ a[aBase + k]·w[n, k] over one group's codes [k0, k0 + length) (length static) to the
 * vector accumulator (strips of 16) and the scalar one (the tail).
 */
function emitGroup(
  k: KernelBuilder, b: { a: BufferRef; codes: BufferRef }, aRow: Expr, codeRow: Expr, length: number,
  scale: Expr, zero: Expr, acc: Expr, tailAcc: Expr,
): void {
  const vectorEnd = length - (length % 16);
  if (vectorEnd > 0) {
    const scaleVec = k.let('sv', splat(scale, 'f32x4'));
    const zeroVec = k.let('zv', splat(zero, 'f32x4'));
    k.loop('kk', 0, vectorEnd, (kk) => {
      const q = k.let('q', b.codes.loadVec(add(codeRow, kk), 'u8x16'));
      const halves = [widen('low', false, q), widen('high', false, q)].map((h, i) => k.let(`q16_${i}`, h));
      halves.forEach((half, h) => {
        for (const part of ['low', 'high'] as const) {
          const lane = h * 8 + (part === 'low' ? 0 : 4);
          const codes = cast(widen(part, false, half), 'f32x4');
          const w = mul(sub(codes, zeroVec), scaleVec);
          k.set(acc, add(acc, mul(b.a.loadVec(add(aRow, add(kk, lane)), 'f32x4'), w)));
        }
      });
    }, { step: 16 });
  }
  if (vectorEnd < length) {
    k.loop('kt', vectorEnd, length, (kt) => {
      const q = cast(b.codes.load(add(codeRow, kt)), 'f32');
      k.set(tailAcc, add(tailAcc, mul(b.a.load(add(aRow, kt)), mul(sub(q, zero), scale))));
    });
  }
}

export function buildQuantMatMul(ctx: KernelBuildContext): Kernel {
  const p = params(ctx.node);
  const present = (i: number): boolean => !!ctx.node.inputs[i];
  const k = new KernelBuilder(ctx.name);
  // Calling convention: present inputs in order, then the output.
  const a = k.buffer('a', 'f32', 'read');
  const codes = k.buffer('codes', 'u8', 'read');
  const scales = k.buffer('scales', 'f32', 'read');
  const zeroPoints = present(3) ? k.buffer('zero_points', 'f32', 'read') : undefined;
  const bias = present(4) ? k.buffer('bias', 'f32', 'read') : undefined;
  const y = k.buffer('y', 'f32', 'write');
  const M = k.scalar('M');
  const fullGroups = Math.floor(p.K / p.groupSize);
  const partial = p.K % p.groupSize;
  k.loop('m', 0, M, (m) => {
    const aBase = k.let('abase', mul(m, p.K));
    k.loop('n', 0, p.N, (n) => {
      const codeBase = k.let('cbase', mul(n, p.K));
      const paramBase = k.let('pbase', mul(n, p.groups));
      const acc = k.mut('acc', splat(f32(0), 'f32x4'));
      const tailAcc = k.mut('tacc', f32(0));
      const group = (g: Expr, length: number): void => {
        const k0 = k.let('k0', mul(g, p.groupSize));
        const index = k.let('gi', add(paramBase, g));
        const scale = k.let('s', scales.load(index));
        const zero = zeroPoints ? k.let('z', zeroPoints.load(index)) : f32(p.defaultZero);
        emitGroup(k, { a, codes }, k.let('arow', add(aBase, k0)), k.let('crow', add(codeBase, k0)), length, scale, zero, acc, tailAcc);
      };
      if (fullGroups > 0) k.loop('g', 0, fullGroups, (g) => group(g, p.groupSize));
      // K need not be a multiple of group_size: the last group is partial.
      if (partial) group(i32(fullGroups), partial);
      let sum = add(reduce('add', acc), tailAcc);
      if (bias) sum = add(sum, bias.load(n));
      y.store(add(mul(m, p.N), n), sum);
    });
  }, { parallel: true });
  return k.build();
}

const FLOAT_ACTIVATIONS = ['f32', 'f16', 'bf16'];

export const quantMatMulKernel: WasmKernelDef = {
  domain: 'llmcc',
  op: 'QuantMatMul',
  check(ctx) {
    const [a, codes, scales, zeroPoints, bias] = ctx.inputs;
    if (!a || !codes || !scales) return 'inputs A, codes and scales are required';
    if (!FLOAT_ACTIVATIONS.includes(a.dtype)) return `activations of type ${a.dtype}`;
    if (codes.dtype !== 'u8') return `codes of type ${codes.dtype} (expected unpacked u8 codes)`;
    if (codes.quant && codes.quant.layout.kind !== 'codes-nk') return `codes in the ${codes.quant.layout.kind} layout`;
    if (!['f32', 'f16'].includes(scales.dtype)) return `scales of type ${scales.dtype}`;
    if (zeroPoints && zeroPoints.dtype !== 'f32') return `zero points of type ${zeroPoints.dtype}`;
    if (bias && bias.dtype !== 'f32') return `bias of type ${bias.dtype}`;
    params(ctx.node);
    return undefined;
  },
  build: buildQuantMatMul,
  args(_node: Node, shapes: LaunchShapes): number[] {
    return [leadingDims(shapes.inputs[0], 1)];
  },
};
