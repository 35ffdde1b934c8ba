import { KernelBuilder, add, and, div, f32, mul, or, rem, shl, shr, sub } from '../../../../codegen/builder.js';
import type { Expr, Kernel } from '../../../../codegen/kernel.js';
import type { Node } from '../../../../ir/graph.js';
import { Attrs } from '../../../../ir/ops/attrs.js';
import { defaultZeroPoint } from '../../../../passes/lut/bitplanes.js';
import type { KernelBuildContext, WasmKernelDef } from '../../kernel-def.js';

/**
 * llmcc.LutPackWeights(codes, scales, zero_points?) → (planes, half_scales, offsets) on wasm
 * (semantics: ir/ops/llmcc/LutPackWeights.ts, layout: passes/lut/bitplanes.ts): the LUT
 * re-layout of weights computed at run time. Plane i of row n packs bit i of the g codes of
 * activation group j into one index, stored at planeOffset(i, n, j) (rows interleaved by
 * rows_per_tile); half_scales = s/2 and offsets = (s/2)·(2^b − 1 − 2z), each one f32
 * operation on exact operands, as the reference rounds them, stored at scaleOffset(n, blk)
 * (tiled like the planes when tiled_scales = 1). With indices_per_byte = 2 one step packs groups
 * 2j (low nibble) and 2j + 1 (high nibble) into one byte. Sizes are attributes: no scalars.
 */

interface Params {
  bits: number; ternary: boolean; g: number; groupSize: number; K: number; N: number; rowsPerTile: number; tiledScales: boolean;
  indicesPerByte: number;
}

function params(node: Node): Params {
  const attrs = new Attrs(node);
  return {
    bits: attrs.int('bits'), ternary: attrs.int('ternary', 0) === 1, g: attrs.int('g', 4),
    groupSize: attrs.int('group_size'), K: attrs.int('K'), N: attrs.int('N'), rowsPerTile: attrs.int('rows_per_tile', 1),
    tiledScales: attrs.int('tiled_scales', 0) === 1,
    indicesPerByte: attrs.int('indices_per_byte', 1),
  };
}

export function buildLutPackWeights(ctx: KernelBuildContext): Kernel {
  const p = params(ctx.node);
  const perByte = p.indicesPerByte;
  // Stored bytes per row and plane: one per index, or one per pair of groups.
  const groups = p.K / p.g / perByte;
  const blocks = p.K / p.groupSize;
  const R = p.rowsPerTile;
  const k = new KernelBuilder(ctx.name);
  const codes = k.buffer('codes', 'u8', 'read');
  const scales = k.buffer('scales', 'f32', 'read');
  const zeroPoints = ctx.node.inputs[2] ? k.buffer('zero_points', 'f32', 'read') : undefined;
  const planes = k.buffer('planes', 'u8', 'write');
  const halfScales = k.buffer('half_scales', 'f32', 'write');
  const offsets = k.buffer('offsets', 'f32', 'write');
  const planeOffset = (plane: number, n: Expr, j: Expr): Expr => {
    if (R === 1) return add(mul(add(n, plane * p.N), groups), j);
    const tile = div(n, R);
    return add(mul(add(mul(add(tile, plane * (p.N / R)), groups), j), R), rem(n, R));
  };
  k.loop('n', 0, p.N, (n) => {
    const row = k.let('row', mul(n, p.K));
    k.loop('j', 0, groups, (j) => {
      const first = k.let('c0', add(row, mul(j, p.g * perByte)));
      // Codes of the byte's groups, bit t of nibble h ← code g·h + t.
      const q = Array.from({ length: p.g * perByte }, (_, t) => k.let(`q${t}`, codes.load(add(first, t))));
      for (let plane = 0; plane < p.bits; plane++) {
        let index: Expr | undefined;
        q.forEach((code, c) => {
          const bit = shl(and(shr(code, plane), 1), 4 * Math.floor(c / p.g) + (c % p.g));
          index = index ? or(index, bit) : bit;
        });
        planes.store(planeOffset(plane, n, j), index!);
      }
    });
    const top = 2 ** p.bits - 1;
    k.loop('blk', 0, blocks, (blk) => {
      const i = k.let('pi', add(mul(n, blocks), blk));
      const half = k.let('half', div(scales.load(i), f32(2)));
      const zero = zeroPoints ? zeroPoints.load(i) : f32(defaultZeroPoint(p.bits, p.ternary));
      const at = p.tiledScales && R > 1 ? add(mul(add(mul(div(n, R), blocks), blk), R), rem(n, R)) : i;
      halfScales.store(at, half);
      offsets.store(at, mul(half, sub(f32(top), mul(f32(2), zero))));
    });
  });
  return k.build();
}

export const lutPackWeightsKernel: WasmKernelDef = {
  domain: 'llmcc',
  op: 'LutPackWeights',
  check(ctx) {
    const [codes, scales, zeroPoints] = ctx.inputs;
    if (!codes || !scales) return 'inputs codes and scales are required';
    if (codes.dtype !== 'u8') return `codes of type ${codes.dtype}`;
    if (!['f32', 'f16'].includes(scales.dtype)) return `scales of type ${scales.dtype}`;
    if (zeroPoints && zeroPoints.dtype !== 'f32') return `zero points of type ${zeroPoints.dtype}`;
    const p = params(ctx.node);
    if (p.K % p.g !== 0 || p.K % p.groupSize !== 0) return `K = ${p.K} is not a multiple of g and group_size`;
    if (p.N % p.rowsPerTile !== 0) return `N = ${p.N} is not a multiple of rows_per_tile = ${p.rowsPerTile}`;
    if (p.indicesPerByte !== 1 && (p.indicesPerByte !== 2 || p.g > 4 || (p.K / p.g) % 2 !== 0)) {
      return `indices_per_byte = ${p.indicesPerByte} with g = ${p.g}, K/g = ${p.K / p.g}`;
    }
    return undefined;
  },
  build: buildLutPackWeights,
  args: () => [],
};
