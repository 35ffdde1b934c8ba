import type { Node } from '../../../../ir/graph.js';
import type { LaunchShapes } from '../../kernel-def.js';
import { Attrs } from '../../../../ir/ops/attrs.js';
import { storedEntries } from '../../../../passes/lut/tables.js';
import { DEFAULT_PACK_ABOVE_PLANE_BYTES } from '../../../../passes/lut/bitplanes.js';

/**
 * Shared facts of the LUT kernels on wasm.
 *
 * The fast LutMatMul path wants the planes laid out with rows_per_tile = 16: one 16-byte load
 * then holds the g-bit indices of 16 consecutive rows for one activation group of one plane,
 * and one `i8x16.swizzle` looks all 16 up in that group's table. The lowering passes take this
 * layout from `WASM_LUT_LAYOUT` (the target chooses it; the IR records it on the planes type),
 * with the scales and offsets tiled the same way (attribute tiled_scales) so the per-block
 * epilogue reads 16 rows' scales with four vector loads, and two plane indices per byte
 * (indices_per_byte = 2) for models whose planes outgrow the cache (wasmIndicesPerByte).
 */
export const WASM_LUT_LAYOUT = {
  g: 4, rowsPerTile: 16, tiledScales: true, indicesPerByte: 'auto', packAbovePlaneBytes: DEFAULT_PACK_ABOVE_PLANE_BYTES,
} as const;

/**
 * Plane indices per byte for a model whose planes take `planeBytes` at one index per byte
 * (the 'auto' of WASM_LUT_LAYOUT, passes/lut-lower.ts): two once they outgrow a last-level
 * cache and stream from memory every token, where half the bytes win; one while they stay
 * in cache, where the kernel is bound by vector ops and the nibble split costs. Measured
 * (2-bit, Zen 5 with a 32 MiB L3, V8 11.3, shared machine; matmul-fast.ts): two per byte
 * 3–10% faster at K = N = 8192 streamed (1.51–1.56 vs 1.59–1.70 ms), 8% slower at 4096 in
 * cache (0.335 vs 0.31 ms) and 5% slower at 8192 resident (1.43 vs 1.36 ms).
 */
export function wasmIndicesPerByte(planeBytes: number): 1 | 2 {
  return planeBytes > WASM_LUT_LAYOUT.packAbovePlaneBytes ? 2 : 1;
}

/** Rows one SIMD lookup covers: the 16 byte lanes of a v128. */
export const TILE_ROWS = 16;

/** Lookups an int16 lane can add (|code| ≤ 127) before it could overflow: floor(32767 / 127). */
export const INT16_LOOKUPS = 258;

export interface LutMatMulParams {
  bits: number;
  g: number;
  groupSize: number;
  K: number;
  N: number;
  rowsPerTile: number;
  tiledScales: boolean;
  /** g-bit plane indices per stored byte (attribute indices_per_byte, passes/lut/bitplanes.ts). */
  indicesPerByte: 1 | 2;
  /** Table groups along K (K/g) and quant blocks (K/group_size). */
  groups: number;
  blocks: number;
  /** Table lookups per plane per block: group_size/g. */
  lookups: number;
  /** Stored (symmetrized) entries per table: 2^(g−1). */
  half: number;
}

export function lutMatMulParams(node: Node): LutMatMulParams {
  const attrs = new Attrs(node);
  const bits = attrs.int('bits');
  const g = attrs.int('g', 4);
  const groupSize = attrs.int('group_size');
  const K = attrs.int('K');
  const N = attrs.int('N');
  const rowsPerTile = attrs.int('rows_per_tile', 1);
  const perByte = attrs.int('indices_per_byte', 1);
  if (perByte !== 1 && perByte !== 2) throw new Error(`LutMatMul ${node.name}: indices_per_byte = ${perByte} (1 or 2)`);
  return {
    bits, g, groupSize, K, N, rowsPerTile,
    tiledScales: attrs.int('tiled_scales', 0) === 1,
    indicesPerByte: perByte,
    groups: K / g,
    blocks: K / groupSize,
    lookups: groupSize / g,
    half: storedEntries(g),
  };
}

/** Product of all dims but the last `trailing` ones (the M rows of a [..., X] tensor). */
export function leadingDims(shape: readonly number[] | undefined, trailing = 1): number {
  if (!shape) return 1;
  return shape.slice(0, Math.max(0, shape.length - trailing)).reduce((a, b) => a * b, 1);
}

/**
 * A kernel whose last two scalar args are a range [begin, end) of independent output units
 * (LutMatMul: 16-row tiles), so threads on one shared memory can each compute a share of one
 * launch (src/runtime/session.ts). Shares write disjoint output; scratch writes are identical.
 */
export interface RowSplitKernel {
  /** The units of this launch and the multiple a share's bounds must be; undefined: not splittable. */
  rowSplit(node: Node, shapes: LaunchShapes): { units: number; step: number } | undefined;
}
