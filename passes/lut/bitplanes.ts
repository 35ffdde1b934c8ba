import { LlmccError } from '../../ir/errors.js';
import type { IndicesPerByte } from '../../ir/quant.js';
import { checkGroupLayout } from './tables.js';

/**
 * Offline weight re-layout for LUT matmul.
 *
 * Symmetrization: an unsigned b-bit code q ∈ [0, 2^b − 1] becomes the odd integer
 * q' = 2q − (2^b − 1) = Σ_i 2^i·(2·bit_i(q) − 1), so every bit-plane holds ±1 weights and
 * indexes the symmetric tables. The real weight is unchanged:
 *   w = (q − z)·s = (s/2)·q' + (s/2)·(2^b − 1 − 2z),
 * hence scales' = s/2 and offsets = (s/2)·(2^b − 1 − 2z), the constant that multiplies the
 * activation sum of the group.
 *
 * Bit-planes: plane i of row n packs, for each activation group j, the bits i of the g codes
 * q[n, g·j + t] into one g-bit index (bit t ← weight g·j + t): planes[i, n, j].
 *
 * Row interleaving (`rowsPerTile` R > 1): the logical shape stays [bits, N, K/g] but the
 * elements are stored tile by tile, rows of a tile innermost: element (i, n, j) lives at
 * ((i·N/R + ⌊n/R⌋)·K/g + j)·R + n mod R, so one load gives the same index j for R rows.
 *
 * Two indices per byte (`indicesPerByte` 2, g ≤ 4, K/g even; attribute indices_per_byte): the
 * byte that would hold element (i, n, j) in a tensor of K/(2g) groups holds groups 2j (low
 * nibble) and 2j + 1 (high nibble) of the same plane and row, so with rows interleaved one
 * 16-byte load gives two groups' indices of 16 rows, and a 2-bit weight costs 2 bits of memory
 * instead of 4. Stored shape [bits, N, K/(2g)].
 *
 * Tiled scales (`tiledScales`, the LutMatMul/LutPackWeights attribute tiled_scales = 1): the
 * scales and offsets [N, K/group_size] are stored the same way, element (n, blk) at
 * (⌊n/R⌋·blocks + blk)·R + n mod R, so a kernel reads the scales of R rows of one block with
 * vector loads.
 */

/** q' = 2q − (2^b − 1). */
export function symmetrizeCode(q: number, bits: number): number {
  return 2 * q - (2 ** bits - 1);
}

/** The default zero point: 2^(b−1) (offset-binary symmetric codes); ternary codes {0,1,2}: 1. */
export function defaultZeroPoint(bits: number, ternary: boolean): number {
  return ternary ? 1 : 2 ** (bits - 1);
}

/** Bit `plane` of each code, as 0/1, row-major like `codes`. */
export function bitPlane(codes: ArrayLike<number>, plane: number): Uint8Array {
  const out = new Uint8Array(codes.length);
  for (let i = 0; i < codes.length; i++) out[i] = (codes[i] >> plane) & 1;
  return out;
}

/** Offset of logical element (plane, n, j) in the stored planes tensor. */
export function planeOffset(plane: number, n: number, j: number, N: number, groups: number, rowsPerTile: number): number {
  if (rowsPerTile === 1) return (plane * N + n) * groups + j;
  const tile = Math.floor(n / rowsPerTile);
  return ((plane * (N / rowsPerTile) + tile) * groups + j) * rowsPerTile + (n % rowsPerTile);
}

/** Checks an indices-per-byte choice for g-bit indices and `groups` groups per row. */
export function checkIndicesPerByte(g: number, groups: number, indicesPerByte: number, where?: string): asserts indicesPerByte is IndicesPerByte {
  if (indicesPerByte !== 1 && indicesPerByte !== 2) throw new LlmccError(`indices_per_byte must be 1 or 2, got ${indicesPerByte}`, where);
  if (indicesPerByte === 2 && g > 4) throw new LlmccError(`indices_per_byte = 2 needs g ≤ 4, got g = ${g}`, where);
  if (indicesPerByte === 2 && groups % 2 !== 0) throw new LlmccError(`indices_per_byte = 2 needs an even K/g, got ${groups}`, where);
}

/**
 * Plane bytes (at one index per byte) above which a model's planes are packed two indices per
 * byte under 'auto' (passes/lut-lower.ts): a 32 MiB last-level cache (measured in
 * targets/wasm/kernels/lut/common.ts).
 */
export const DEFAULT_PACK_ABOVE_PLANE_BYTES = 32 * 2 ** 20;

/** Whether two indices per byte suit these weights (g ≤ 4 and an even K/g). */
export function canPackTwoPerByte(g: number, groups: number): boolean {
  return g <= 4 && groups % 2 === 0;
}

/** The g-bit index (plane, n, j) of stored planes holding `indicesPerByte` indices per byte. */
export function readPlaneIndex(
  planes: ArrayLike<number>, plane: number, n: number, j: number, N: number, groups: number, rowsPerTile: number,
  indicesPerByte: IndicesPerByte = 1,
): number {
  if (indicesPerByte === 1) return planes[planeOffset(plane, n, j, N, groups, rowsPerTile)];
  const byte = planes[planeOffset(plane, n, j >> 1, N, groups / 2, rowsPerTile)];
  return (j & 1) === 0 ? byte & 0x0f : byte >> 4;
}

/** Offset of element (n, blk) of the scales/offsets [N, blocks] (see the file comment). */
export function scaleOffset(n: number, blk: number, blocks: number, rowsPerTile: number, tiledScales: boolean): number {
  if (!tiledScales || rowsPerTile === 1) return n * blocks + blk;
  return (Math.floor(n / rowsPerTile) * blocks + blk) * rowsPerTile + (n % rowsPerTile);
}

export function checkRowsPerTile(N: number, rowsPerTile: number, where?: string): void {
  if (!Number.isInteger(rowsPerTile) || rowsPerTile < 1) {
    throw new LlmccError(`rows_per_tile must be a positive integer, got ${rowsPerTile}`, where);
  }
  if (N % rowsPerTile !== 0) throw new LlmccError(`N = ${N} is not a multiple of rows_per_tile = ${rowsPerTile}`, where);
}

/** Checks that every code fits its bit width (ternary: {0, 1, 2}). */
export function checkCodes(codes: ArrayLike<number>, bits: number, ternary: boolean, where?: string): void {
  const max = ternary ? 2 : 2 ** bits - 1;
  for (let i = 0; i < codes.length; i++) {
    const q = codes[i];
    if (!Number.isInteger(q) || q < 0 || q > max) {
      throw new LlmccError(`weight code ${q} at element ${i} is outside [0, ${max}] for ${ternary ? 'ternary' : `${bits}-bit`} weights`, where);
    }
  }
}

/** Packs codes [N, K] into g-bit plane indices [bits, N, K/(g·indicesPerByte)] (interleaved by rowsPerTile). */
export function packPlanes(
  codes: ArrayLike<number>, N: number, K: number, bits: number, g: number, rowsPerTile = 1, indicesPerByte: IndicesPerByte = 1,
): Uint8Array {
  const groups = K / g;
  checkIndicesPerByte(g, groups, indicesPerByte);
  const out = new Uint8Array((bits * N * groups) / indicesPerByte);
  for (let i = 0; i < bits; i++) {
    for (let n = 0; n < N; n++) {
      for (let j = 0; j < groups; j++) {
        let index = 0;
        for (let t = 0; t < g; t++) index |= ((codes[n * K + j * g + t] >> i) & 1) << t;
        if (indicesPerByte === 1) out[planeOffset(i, n, j, N, groups, rowsPerTile)] = index;
        else out[planeOffset(i, n, j >> 1, N, groups / 2, rowsPerTile)] |= index << (4 * (j & 1));
      }
    }
  }
  return out;
}

/** The inverse of packPlanes: codes [N, K] (for tests and debugging). */
export function unpackPlanes(
  planes: ArrayLike<number>, N: number, K: number, bits: number, g: number, rowsPerTile = 1, indicesPerByte: IndicesPerByte = 1,
): Uint8Array {
  const groups = K / g;
  checkIndicesPerByte(g, groups, indicesPerByte);
  const codes = new Uint8Array(N * K);
  for (let i = 0; i < bits; i++) {
    for (let n = 0; n < N; n++) {
      for (let j = 0; j < groups; j++) {
        const index = readPlaneIndex(planes, i, n, j, N, groups, rowsPerTile, indicesPerByte);
        for (let t = 0; t < g; t++) codes[n * K + j * g + t] |= ((index >> t) & 1) << i;
      }
    }
  }
  return codes;
}

export interface LutWeightSource {
  /** [N, K], one code per weight. */
  codes: ArrayLike<number>;
  /** [N, K/groupSize]. */
  scales: ArrayLike<number>;
  /** [N, K/groupSize] real-valued zero points; undefined = the default. */
  zeroPoints?: ArrayLike<number>;
  bits: number;
  ternary: boolean;
  N: number;
  K: number;
  groupSize: number;
}

export interface LutWeights {
  /** [bits, N, K/(g·indicesPerByte)] g-bit indices (interleaved by rowsPerTile). */
  planes: Uint8Array;
  /** [N, K/groupSize]: s/2 (tiled when asked, see scaleOffset). */
  scales: Float32Array;
  /** [N, K/groupSize]: (s/2)·(2^b − 1 − 2z) (tiled like the scales). */
  offsets: Float32Array;
}

/** Re-lays a QuantMatMul weight for LutMatMul (see the file comment). */
export function relayoutWeights(
  src: LutWeightSource, g: number, rowsPerTile: number, where?: string, tiledScales = false, indicesPerByte: IndicesPerByte = 1,
): LutWeights {
  const { codes, scales, zeroPoints, bits, ternary, N, K, groupSize } = src;
  checkGroupLayout(K, g, groupSize, where);
  checkRowsPerTile(N, rowsPerTile, where);
  checkIndicesPerByte(g, K / g, indicesPerByte, where);
  if (codes.length !== N * K) throw new LlmccError(`codes have ${codes.length} elements, expected N·K = ${N * K}`, where);
  const blocks = K / groupSize;
  if (scales.length !== N * blocks) throw new LlmccError(`scales have ${scales.length} elements, expected ${N * blocks}`, where);
  if (zeroPoints && zeroPoints.length !== N * blocks) {
    throw new LlmccError(`zero_points have ${zeroPoints.length} elements, expected ${N * blocks}`, where);
  }
  checkCodes(codes, bits, ternary, where);
  const planes = packPlanes(codes, N, K, bits, g, rowsPerTile, indicesPerByte);
  const halfScales = new Float32Array(N * blocks);
  const offsets = new Float32Array(N * blocks);
  const top = 2 ** bits - 1;
  const fallbackZero = defaultZeroPoint(bits, ternary);
  for (let i = 0; i < N * blocks; i++) {
    const half = scales[i] / 2;
    const z = zeroPoints ? zeroPoints[i] : fallbackZero;
    const at = scaleOffset(Math.floor(i / blocks), i % blocks, blocks, rowsPerTile, tiledScales);
    halfScales[at] = half;
    offsets[at] = half * (top - 2 * z);
  }
  return { planes, scales: halfScales, offsets };
}
