import { LlmccError } from '../../ir/errors.js';

/**
 * LUT math for T-MAC style mixed-precision matmul (see notes/techniques.md §1–2).
 *
 * Activations are taken in groups of g consecutive elements a_0..a_{g-1}. The table of a
 * group holds every signed sum T[j] = Σ_t s_t(j)·a_t with s_t(j) = +1 when bit t of j is set
 * and −1 otherwise. Because the signs are ±1, T[~j] = −T[j] (~j = 2^g − 1 − j): only the half
 * with the top bit clear (j < 2^(g−1)) is stored, and the top bit of an index selects
 * negation. Entries are accumulated in f32, t = 0..g−1 in order, so the value of every entry
 * is fixed (targets reproduce it) and negation symmetry holds exactly: IEEE rounding is
 * symmetric, so the sum of the negated terms in the same order is the negated sum.
 *
 * int8 tables: one scale per weight quant group (group_size activations = group_size/g tables):
 * scale = fround(max|T| / 127) over the group's stored entries, code = roundHalfEven(fround(T /
 * scale)) clamped to ±127 (0 when scale is 0). Ties-to-even keeps code(−T) = −code(T), so the
 * stored half stays an exact description of the full table.
 */

export type TableKind = 'i8' | 'f32';

export const MAX_G = 8;
/** Largest int8 table code: ±127 keeps the table symmetric (−128 has no partner). */
export const TABLE_CODE_MAX = 127;
const INT16_MAX = 32767;
const INT32_MAX = 2 ** 31 - 1;

/** Stored entries per activation group: 2^(g−1). */
export function storedEntries(g: number): number {
  return 1 << (g - 1);
}

export function checkG(g: number, where?: string): void {
  if (!Number.isInteger(g) || g < 1 || g > MAX_G) {
    throw new LlmccError(`LUT group size g must be an integer in 1..${MAX_G}, got ${g}`, where);
  }
}

/** Sign of activation t in the sum indexed by j: +1 when bit t of j is set, else −1. */
export function signOf(j: number, t: number): 1 | -1 {
  return (j >> t) & 1 ? 1 : -1;
}

/** One table entry: Σ_t s_t(j)·a[offset + t], accumulated in f32 in t order. */
export function tableEntry(a: ArrayLike<number>, offset: number, g: number, j: number): number {
  let acc = 0;
  for (let t = 0; t < g; t++) acc = Math.fround(acc + signOf(j, t) * a[offset + t]);
  return acc;
}

/** The full (unsymmetrized) table of 2^g entries for the group a[offset .. offset+g). */
export function fullTable(a: ArrayLike<number>, offset: number, g: number): Float32Array {
  const table = new Float32Array(1 << g);
  for (let j = 0; j < table.length; j++) table[j] = tableEntry(a, offset, g, j);
  return table;
}

/** The stored (symmetrized) half: entries j < 2^(g−1). */
export function symmetricTable(a: ArrayLike<number>, offset: number, g: number): Float32Array {
  const table = new Float32Array(storedEntries(g));
  for (let j = 0; j < table.length; j++) table[j] = tableEntry(a, offset, g, j);
  return table;
}

/**
 * Looks a g-bit index up in a symmetrized table stored at table[base .. base + 2^(g−1)):
 * an index with the top bit set reads its complement's entry negated.
 */
export function lookupSymmetric(table: ArrayLike<number>, base: number, index: number, g: number): number {
  const half = storedEntries(g);
  return index >= half ? -table[base + (2 * half - 1 - index)] : table[base + index];
}

/** Round half to even: symmetric under negation (Math.round is not: it rounds −0.5 up). */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** The int8 scale of a set of table entries: fround(max|T| / 127). */
export function tableScale(entries: ArrayLike<number>, start = 0, end = entries.length): number {
  let maxAbs = 0;
  for (let i = start; i < end; i++) maxAbs = Math.max(maxAbs, Math.abs(entries[i]));
  return Math.fround(maxAbs / TABLE_CODE_MAX);
}

/** The int8 code of a table entry under `scale` (see the file comment). */
export function tableCode(entry: number, scale: number): number {
  if (scale === 0) return 0;
  const code = roundHalfEven(Math.fround(entry / scale));
  return Math.max(-TABLE_CODE_MAX, Math.min(TABLE_CODE_MAX, code));
}

/**
 * Worst |T − code·scale| of one int8 entry, relative to the scale: half a step from rounding,
 * plus the f32 rounding of the quotient T/scale (|T/scale| ≤ 127·(1 + 2^−24)² < 128, so that
 * rounding moves it by at most 128·2^−24 = 2^−17 before the integer rounding).
 */
export const TABLE_ENTRY_ERROR = 0.5 + 2 ** -17;

export interface PrecomputedTables {
  /** [M, K/g, 2^(g−1)]: i8 codes (Int8Array) or f32 entries. */
  tables: Int8Array | Float32Array;
  /** [M, K/group_size]: int8 scale per quant group, 1 for f32 tables. */
  tableScales: Float32Array;
  /** [M, K/group_size]: Σ a over each quant group, f64-summed and rounded to f32 once. */
  actSums: Float32Array;
}

export function checkGroupLayout(K: number, g: number, groupSize: number, where?: string): void {
  checkG(g, where);
  if (!Number.isInteger(groupSize) || groupSize < 1) {
    throw new LlmccError(`group_size must be a positive integer, got ${groupSize}`, where);
  }
  if (K % g !== 0) throw new LlmccError(`K = ${K} is not a multiple of the LUT group size g = ${g}`, where);
  if (K % groupSize !== 0) throw new LlmccError(`K = ${K} is not a multiple of group_size = ${groupSize}`, where);
  if (groupSize % g !== 0) {
    throw new LlmccError(`group_size = ${groupSize} is not a multiple of g = ${g}: a table would straddle two quant groups`, where);
  }
}

/**
 * Tables, table scales and activation sums for M rows of K activations (row-major a).
 * The rows are independent; each row's tables are built from its own activations only.
 */
export function precomputeTables(
  a: ArrayLike<number>, M: number, K: number, g: number, groupSize: number, kind: TableKind, where?: string,
): PrecomputedTables {
  checkGroupLayout(K, g, groupSize, where);
  const half = storedEntries(g);
  const groups = K / g;
  const blocks = K / groupSize;
  const tablesPerBlock = groupSize / g;
  const entries = new Float32Array(M * groups * half);
  const actSums = new Float32Array(M * blocks);
  for (let m = 0; m < M; m++) {
    for (let j = 0; j < groups; j++) {
      const base = (m * groups + j) * half;
      for (let e = 0; e < half; e++) entries[base + e] = tableEntry(a, m * K + j * g, g, e);
    }
    for (let blk = 0; blk < blocks; blk++) {
      let sum = 0;
      for (let k = blk * groupSize; k < (blk + 1) * groupSize; k++) sum += a[m * K + k];
      actSums[m * blocks + blk] = sum;
    }
  }
  const tableScales = new Float32Array(M * blocks);
  if (kind === 'f32') {
    tableScales.fill(1);
    return { tables: entries, tableScales, actSums };
  }
  const codes = new Int8Array(entries.length);
  for (let m = 0; m < M; m++) {
    for (let blk = 0; blk < blocks; blk++) {
      const start = (m * groups + blk * tablesPerBlock) * half;
      const end = start + tablesPerBlock * half;
      const scale = tableScale(entries, start, end);
      tableScales[m * blocks + blk] = scale;
      for (let i = start; i < end; i++) codes[i] = tableCode(entries[i], scale);
    }
  }
  return { tables: codes, tableScales, actSums };
}

/**
 * Integer accumulation bounds for int8 tables. Per plane, one block sums `groupSize/g`
 * lookups of |code| ≤ 127; the block total weights plane i by 2^i, Σ_i 2^i = 2^bits − 1.
 */
export interface AccumulationBounds {
  /** max |Σ_j lookup| of one plane over one block. */
  perPlane: number;
  /** max |I| of one block: perPlane · (2^bits − 1). */
  perBlock: number;
  /** Whether a plane's block sum fits int16 (the SIMD accumulator). */
  planeFitsInt16: boolean;
  /** Whether the whole block sum I fits int16. */
  blockFitsInt16: boolean;
  /** How many lookups int16 can add (weight 1) before it must widen: floor(32767/127) = 258. */
  int16LookupsBeforeWiden: number;
}

export function accumulationBounds(bits: number, g: number, groupSize: number): AccumulationBounds {
  const lookups = groupSize / g;
  const perPlane = TABLE_CODE_MAX * lookups;
  const perBlock = perPlane * (2 ** bits - 1);
  return {
    perPlane,
    perBlock,
    planeFitsInt16: perPlane <= INT16_MAX,
    blockFitsInt16: perBlock <= INT16_MAX,
    int16LookupsBeforeWiden: Math.floor(INT16_MAX / TABLE_CODE_MAX),
  };
}

/** Throws when a block's integer sum could overflow int32 (the accumulator the spec fixes). */
export function checkAccumulationFits(bits: number, g: number, groupSize: number, where?: string): AccumulationBounds {
  const bounds = accumulationBounds(bits, g, groupSize);
  if (bounds.perBlock > INT32_MAX) {
    throw new LlmccError(
      `int8-table accumulation could overflow int32: ${bits} planes × ${groupSize / g} lookups × 127 per block ` +
      `reaches ${bounds.perBlock}; use a smaller group_size or f32 tables`, where);
  }
  return bounds;
}

/**
 * Bound on |Y_int8 − Y_exact-tables| for one output (exact arithmetic): every lookup is off by
 * at most TABLE_ENTRY_ERROR·table_scale, a block has groupSize/g lookups per plane and plane i
 * weighs 2^i, so block blk contributes at most
 *   |scales[n,blk]| · table_scale[m,blk] · TABLE_ENTRY_ERROR · (groupSize/g) · (2^bits − 1).
 * `scales` are the symmetrized weight scales s/2 of row n, `tableScales` those of row m.
 */
export function int8OutputErrorBound(
  scales: ArrayLike<number>, tableScales: ArrayLike<number>, bits: number, g: number, groupSize: number,
): number {
  const perStep = TABLE_ENTRY_ERROR * (groupSize / g) * (2 ** bits - 1);
  let bound = 0;
  for (let blk = 0; blk < scales.length; blk++) bound += Math.abs(scales[blk]) * tableScales[blk] * perStep;
  return bound;
}
