import {
  KernelBuilder, add, and, bitcast, cast, constant, dotI8, extract, mul, shl, shr, splat, sub, xor, type BufferRef,
} from '../../../codegen/builder.js';
import type { Expr, Kernel } from '../../../codegen/kernel.js';
import type { Node } from '../../../ir/graph.js';
import { Attrs } from '../../../ir/ops/attrs.js';
import { describeNode } from '../../../ir/errors.js';
import { DOT_TILE_ROWS, dotLayout, type DotLayout } from '../../../passes/dot/layout.js';
import type { KernelBuildContext, LaunchShapes, WasmKernelDef } from '../kernel-def.js';
import { leadingDims } from './lut/common.js';

/**
 * llmcc.QuantMatMulQ8 on wasm and neon (semantics: passes/dot/q8-math.ts, layout:
 * passes/dot/layout.ts). Per activation row and 4-row tile, per group: each chunk's packed
 * vectors are loaded once and every quad's segments unpacked with one mask or one shift each
 * (8-bit: xor 0x80, i.e. code − 128); the quad's 4 activations (4 quads per 16-byte load) are
 * broadcast to all lanes and `dot_i8` (vdotq_s32) adds row r's 4 products to lane r, into one
 * accumulator per power of two the unpacked values carry. Per group: E = 2·Σ_acc acc·2^f −
 * offsets·Σq (exact i32), then f32x4: acc += (h·s_a)·f32(E), the
 * reference's order lane by lane. A group's chunks are unrolled (up to 32, else a loop of an
 * unrolled divisor). Scalar argument: M.
 */

const MAX_UNROLLED_CHUNKS = 32;

function layoutOf(node: Node): DotLayout {
  const attrs = new Attrs(node);
  const bits = attrs.int('bits');
  const ternary = attrs.int('ternary', 0) === 1;
  return dotLayout({ bits, ternary, groupSize: attrs.int('group_size'), K: attrs.int('K'), N: attrs.int('N') }, describeNode(node));
}

/** Chunks per unrolled step: all of a group's, or the largest divisor ≤ MAX_UNROLLED_CHUNKS. */
function chunksPerStep(chunks: number): number {
  for (let d = Math.min(chunks, MAX_UNROLLED_CHUNKS); d >= 1; d--) if (chunks % d === 0) return d;
  return 1;
}

interface Buffers {
  q: BufferRef;
  actScales: BufferRef;
  actSums: BufferRef;
  packed: BufferRef;
  scales: BufferRef;
  offsets: BufferRef;
  bias?: BufferRef;
  y: BufferRef;
}

/**
 * One segment's bits of quad `j`, as i8 weights `value` worth 2^factor each in the code: a
 * segment's top field is shifted down (value = bits, factor = the segment's shift); the
 * others are only masked in place (value = bits·2^bit < 128, factor = shift − bit), saving
 * the shift: each factor gets its own accumulator, scaled exactly once per group.
 */
interface QuadPart { value: Expr; factor: number }

function unpackQuad(l: DotLayout, vectors: Expr[][], j: number): QuadPart[] {
  if (l.codeOffset) return [{ value: bitcast(xor(vectors[0][j], constant('u8x16', l.codeOffset)), 'i8x16'), factor: 0 }];
  return l.segments.map((seg, s) => {
    const per = 8 / seg.width;
    const v = vectors[s][Math.floor(j / per)];
    const bit = (j % per) * seg.width;
    if (bit + seg.width === 8) return { value: bitcast(bit > 0 ? shr(v, bit) : v, 'i8x16'), factor: seg.shift };
    return { value: bitcast(and(v, constant('u8x16', ((1 << seg.width) - 1) << bit)), 'i8x16'), factor: seg.shift - bit };
  });
}

/** The factors unpackQuad uses over a chunk, ascending. */
function chunkFactors(l: DotLayout): number[] {
  const vectors = l.segments.map((seg) => Array.from({ length: (l.chunkQuads * seg.width) / 8 }, (): Expr => constant('u8x16', 0)));
  const factors = new Set<number>();
  for (let j = 0; j < l.chunkQuads; j++) for (const part of unpackQuad(l, vectors, j)) factors.add(part.factor);
  return [...factors].sort((x, y) => x - y);
}

function emitTile(k: KernelBuilder, l: DotLayout, b: Buffers, m: Expr, tile: Expr, rows: number): void {
  const padded = l.groups * l.groupSize;
  const chunks = l.groupSize / (4 * l.chunkQuads);
  const step = chunksPerStep(chunks);
  const result = k.mut('yacc', constant('f32x4', 0));
  k.loop('g', 0, l.groups, (g) => {
    const accs = new Map(chunkFactors(l).map((f) => [f, k.mut('acc', constant('i32x4', 0))]));
    const tileGroup = k.let('tg', add(mul(tile, l.groups), g));
    const wBase = k.let('wbase', mul(tileGroup, l.groupBytes));
    // q is read as i32: one element is a quad of 4 activations.
    const qBase = k.let('qbase', add(mul(m, padded / 4), mul(g, l.groupSize / 4)));
    k.loop('c', 0, chunks, (c) => {
      // The step's activations, 4 quads per 16-byte load, each quad broadcast from its lane
      // (SDOT by element on neon); a step of fewer than 4 quads loads each quad as an i32.
      const stepQuads = step * l.chunkQuads;
      const stepQuad0 = k.let('sq', add(qBase, mul(c, l.chunkQuads)));
      const quadVectors = stepQuads % 4 === 0
        ? Array.from({ length: stepQuads / 4 }, (_, v) => k.let('av', b.q.loadVec(add(stepQuad0, 4 * v), 'i32x4')))
        : undefined;
      const quadAt = (j: number): Expr => bitcast(
        splat(quadVectors ? extract(quadVectors[j >> 2], j & 3) : b.q.load(add(stepQuad0, j)), 'i32x4'), 'i8x16');
      for (let u = 0; u < step; u++) {
        const chunk = add(c, u);
        const chunkByte = k.let('cb', add(wBase, mul(chunk, l.chunkBytes)));
        let byte = 0;
        const vectors = l.segments.map((seg) => {
          const count = (l.chunkQuads * seg.width) / 8;
          return Array.from({ length: count }, () => {
            const v = k.let('pv', b.packed.loadVec(add(chunkByte, byte), 'u8x16'));
            byte += 16;
            return v;
          });
        });
        for (let j = 0; j < l.chunkQuads; j++) {
          const quad = quadAt(u * l.chunkQuads + j);
          for (const part of unpackQuad(l, vectors, j)) {
            const acc = accs.get(part.factor)!;
            k.set(acc, dotI8(acc, part.value, quad));
          }
        }
      }
    }, { step });
    const actAt = k.let('aat', add(mul(m, l.groups), g));
    // Σ code·q: each accumulator scaled by its factor, exactly (a negative factor's sums are
    // multiples of 2^−factor: the masked values were).
    let dot: Expr | undefined;
    for (const [factor, acc] of accs) {
      const scaled = factor > 0 ? shl(acc, factor) : factor < 0 ? shr(acc, -factor) : acc;
      dot = dot ? add(dot, scaled) : scaled;
    }
    const exact = sub(shl(dot as Expr, 1), mul(b.offsets.loadVec(mul(tileGroup, DOT_TILE_ROWS), 'i32x4'), splat(b.actSums.load(actAt), 'i32x4')));
    const scale = mul(b.scales.loadVec(mul(tileGroup, DOT_TILE_ROWS), 'f32x4'), splat(b.actScales.load(actAt), 'f32x4'));
    k.set(result, add(result, mul(scale, cast(exact, 'f32x4'))));
  });
  const first = k.let('n0', mul(tile, DOT_TILE_ROWS));
  const yAt = add(mul(m, l.N), first);
  if (rows === DOT_TILE_ROWS) {
    b.y.storeVec(yAt, b.bias ? add(result, b.bias.loadVec(first, 'f32x4')) : result);
    return;
  }
  for (let r = 0; r < rows; r++) {
    const value = extract(result, r);
    b.y.store(add(yAt, r), b.bias ? add(value, b.bias.load(add(first, r))) : value);
  }
}

export function buildQuantMatMulQ8(ctx: KernelBuildContext): Kernel {
  const l = layoutOf(ctx.node);
  const k = new KernelBuilder(ctx.name);
  // Calling convention: the inputs in order (q read as i32 quads), then the output.
  const inputs = {
    q: k.buffer('q', 'i32', 'read'),
    actScales: k.buffer('act_scales', 'f32', 'read'),
    actSums: k.buffer('act_sums', 'i32', 'read'),
    packed: k.buffer('packed', 'u8', 'read'),
    scales: k.buffer('scales', 'f32', 'read'),
    offsets: k.buffer('offsets', 'i32', 'read'),
    bias: ctx.inputs[6] ? k.buffer('bias', 'f32', 'read') : undefined,
  };
  const b: Buffers = { ...inputs, y: k.buffer('y', 'f32', 'write') };
  const M = k.scalar('M');
  const fullTiles = Math.floor(l.N / DOT_TILE_ROWS);
  k.loop('m', 0, M, (m) => {
    k.loop('t', 0, fullTiles, (t) => emitTile(k, l, b, m, t, DOT_TILE_ROWS), { parallel: true });
    if (fullTiles < l.tiles) emitTile(k, l, b, m, constant('i32', fullTiles), l.N - fullTiles * DOT_TILE_ROWS);
  });
  return k.build();
}

export const quantMatMulQ8Kernel: WasmKernelDef = {
  domain: 'llmcc',
  op: 'QuantMatMulQ8',
  check(ctx) {
    const [q, actScales, actSums, packed, scales, offsets, bias] = ctx.inputs;
    if (!q || !actScales || !actSums || !packed || !scales || !offsets) return 'inputs q, act_scales, act_sums, packed, scales and offsets are required';
    if (q.dtype !== 'i8' || packed.dtype !== 'u8' || offsets.dtype !== 'i32' || actSums.dtype !== 'i32') return 'q i8, packed u8, offsets and act_sums i32 expected';
    if (bias && bias.dtype !== 'f32') return `bias of type ${bias.dtype}`;
    layoutOf(ctx.node);
    return undefined;
  },
  build: buildQuantMatMulQ8,
  args(_node: Node, shapes: LaunchShapes): number[] {
    return [leadingDims(shapes.inputs[0], 1)];
  },
};
