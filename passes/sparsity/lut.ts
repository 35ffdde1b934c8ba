import { LlmccError } from '../../ir/errors.js';
import { TABLE_CODE_MAX, tableCode, tableScale, type TableKind } from '../lut/tables.js';
import { planeOffset } from '../lut/bitplanes.js';
import { checkSparseLayout, keptPerRow, type NMPattern } from './pattern.js';

/**
 * Sparse + LUT: T-MAC style lookups over N:M sparse weights, with tables built only over the
 * activation positions a row can select (notes/techniques.md §4, "build tables only from the
 * selected activations").
 *
 * Tables. For each group of M consecutive activations and each choice c of N positions (the
 * C(M,N) N-subsets of 0..M−1 in lexicographic order), the N kept weights' bits of one plane
 * form a sign pattern j ∈ [0, 2^N) over the chosen activations, T[c, j] = Σ_t s_t(j)·a[p_c(t)]
 * (s_t(j) = +1 when bit t of j is set, else −1; summed in f32 in t order). As in the dense
 * tables (passes/lut/tables.ts) T[c, ~j] = −T[c, j], so only j < 2^(N−1) is stored: entry
 * e = c·2^(N−1) + j. A group's E = C(M,N)·2^(N−1) entries are stored in S slots, S the power
 * of two ≥ E (2:4: 12 entries in 16 slots, 1:4: 4 in 4, 2:8: 56 in 64); slots ≥ E hold 0.
 * int8 tables: one scale per quant block over the block's entries, exactly as the dense ones.
 *
 * Weight indices. Plane i of row n, group j holds one byte: e | (negated ? S : 0), where j's
 * sign pattern comes from bit i of the group's N kept codes (kept positions ascending) and
 * negated means the pattern's top bit was set (e is then its complement's entry). A lookup is
 * T[e] or −T[e]. The codes are symmetrized (passes/lut/bitplanes.ts): w = (s/2)·q' + offset,
 * q' = Σ_i 2^i·(±1). The offset multiplies the sum of the *kept* activations of the row,
 * which differs per row: it is the all-ones pattern of the row's choice, so it is looked up
 * like one more plane: J = Σ_j lookup(c_j·2^(N−1) | S).
 *
 *   I[m,n,blk] = Σ_i 2^i Σ_{j∈blk} lookup(T[m,j], planes[i,n,j])
 *   J[m,n,blk] = Σ_{j∈blk} lookup(T[m,j], ones(planes[0,n,j]))           (only with offsets)
 *   Y[m,n]     = Σ_blk table_scales[m,blk]·(scales[n,blk]·I + offsets[n,blk]·J) + bias[n]
 * I and J are exact integers for int8 tables (|I| ≤ 127·(group_size/M)·(2^bits − 1)).
 */

/** The N-subsets of 0..M−1 in lexicographic order. */
export function choices(p: NMPattern): number[][] {
  const out: number[][] = [];
  const pick = (start: number, chosen: number[]): void => {
    if (chosen.length === p.n) { out.push([...chosen]); return; }
    for (let t = start; t < p.m; t++) pick(t + 1, [...chosen, t]);
  };
  pick(0, []);
  return out;
}

/** Facts of the sparse table layout for a pattern. */
export interface SparseTableLayout {
  pattern: NMPattern;
  /** C(M,N) choices, each its ascending positions. */
  choices: number[][];
  /** Stored entries per choice: 2^(N−1). */
  half: number;
  /** Entries per group, C(M,N)·2^(N−1). */
  entries: number;
  /** Slots per group (power of two ≥ entries); also the sign bit of an index. */
  slots: number;
}

export function sparseTableLayout(p: NMPattern): SparseTableLayout {
  const list = choices(p);
  const half = 1 << (p.n - 1);
  const entries = list.length * half;
  let slots = 1;
  while (slots < entries) slots <<= 1;
  if (slots * 2 > 256) throw new LlmccError(`sparsity ${p.n}:${p.m}: ${entries} table entries do not fit a byte index`);
  return { pattern: p, choices: list, half, entries, slots };
}

export function checkSparseLutLayout(p: NMPattern, K: number, groupSize: number, where?: string): void {
  checkSparseLayout(p, K, groupSize, where);
  if (K % groupSize !== 0) throw new LlmccError(`K = ${K} is not a multiple of group_size = ${groupSize}`, where);
}

export interface SparseTables {
  /** [M, K/m, slots]: i8 codes or f32 entries. */
  tables: Int8Array | Float32Array;
  /** [M, K/groupSize]: int8 scale per quant block (1 for f32 tables). */
  tableScales: Float32Array;
}

/** The sparse tables of M rows of K activations (see the file comment). */
export function precomputeSparseTables(
  a: ArrayLike<number>, rows: number, K: number, p: NMPattern, groupSize: number, kind: TableKind,
): SparseTables {
  checkSparseLutLayout(p, K, groupSize);
  const layout = sparseTableLayout(p);
  const groups = K / p.m;
  const blocks = K / groupSize;
  const entries = new Float32Array(rows * groups * layout.slots);
  for (let r = 0; r < rows; r++) {
    for (let j = 0; j < groups; j++) {
      const base = (r * groups + j) * layout.slots;
      const act = r * K + j * p.m;
      layout.choices.forEach((chosen, c) => {
        for (let s = 0; s < layout.half; s++) {
          let acc = 0;
          for (let t = 0; t < p.n; t++) acc = Math.fround(acc + ((s >> t) & 1 ? 1 : -1) * a[act + chosen[t]]);
          entries[base + c * layout.half + s] = acc;
        }
      });
    }
  }
  const tableScales = new Float32Array(rows * blocks);
  if (kind === 'f32') {
    tableScales.fill(1);
    return { tables: entries, tableScales };
  }
  const codes = new Int8Array(entries.length);
  const perBlock = (groupSize / p.m) * layout.slots;
  for (let r = 0; r < rows; r++) {
    for (let blk = 0; blk < blocks; blk++) {
      const start = (r * blocks + blk) * perBlock;
      const scale = tableScale(entries, start, start + perBlock);
      tableScales[r * blocks + blk] = scale;
      for (let i = start; i < start + perBlock; i++) codes[i] = tableCode(entries[i], scale);
    }
  }
  return { tables: codes, tableScales };
}

/** Index of the choice with these ascending positions. */
function choiceIndex(layout: SparseTableLayout, positions: readonly number[]): number {
  const c = layout.choices.findIndex((chosen) => chosen.every((t, i) => t === positions[i]));
  if (c < 0) throw new LlmccError(`positions [${positions.join(',')}] are not a ${layout.pattern.n}:${layout.pattern.m} choice`);
  return c;
}

/** The plane byte for choice c and sign pattern j ∈ [0, 2^N). */
export function encodeIndex(layout: SparseTableLayout, c: number, j: number): number {
  const full = 2 * layout.half - 1;
  return j < layout.half ? c * layout.half + j : (c * layout.half + (full - j)) | layout.slots;
}

/** The all-ones (offset) index of the choice a plane byte belongs to. */
export function onesIndex(layout: SparseTableLayout, index: number): number {
  const e = index & (layout.slots - 1);
  return (e - (e % layout.half)) | layout.slots;
}

/** Looks an index up in the group table at tables[base .. base + slots). */
export function lookupSparse(tables: ArrayLike<number>, base: number, index: number, layout: SparseTableLayout): number {
  const value = tables[base + (index & (layout.slots - 1))];
  return index & layout.slots ? -value : value;
}

export interface SparseLutWeights {
  /** [bits, N, K/m] plane bytes, interleaved by rowsPerTile (planeOffset). */
  planes: Uint8Array;
  /** [N, K/groupSize]: s/2. */
  scales: Float32Array;
  /** [N, K/groupSize]: (s/2)·(2^b − 1 − 2z); undefined when every one is 0 (e.g. mid-rise 2-bit). */
  offsets?: Float32Array;
}

/** Re-lays sparse codes (values [N, K·n/m], positions [N, K·n/m]) for SparseLutMatMul. */
export function relayoutSparseWeights(src: {
  values: ArrayLike<number>; positions: ArrayLike<number>; scales: ArrayLike<number>; zeroPoints?: ArrayLike<number>;
  bits: number; zeroPoint: number; N: number; K: number; groupSize: number; pattern: NMPattern;
}, rowsPerTile: number): SparseLutWeights {
  const { values, positions, scales, zeroPoints, bits, N, K, groupSize, pattern } = src;
  checkSparseLutLayout(pattern, K, groupSize);
  if (N % rowsPerTile !== 0) throw new LlmccError(`N = ${N} is not a multiple of rows_per_tile = ${rowsPerTile}`);
  const layout = sparseTableLayout(pattern);
  const groups = K / pattern.m;
  const kept = keptPerRow(K, pattern);
  const planes = new Uint8Array(bits * N * groups);
  for (let n = 0; n < N; n++) {
    for (let j = 0; j < groups; j++) {
      const at = n * kept + j * pattern.n;
      const c = choiceIndex(layout, Array.from({ length: pattern.n }, (_, t) => positions[at + t]));
      for (let i = 0; i < bits; i++) {
        let sign = 0;
        for (let t = 0; t < pattern.n; t++) sign |= ((values[at + t] >> i) & 1) << t;
        planes[planeOffset(i, n, j, N, groups, rowsPerTile)] = encodeIndex(layout, c, sign);
      }
    }
  }
  const blocks = K / groupSize;
  const half = new Float32Array(N * blocks);
  const offsets = new Float32Array(N * blocks);
  let anyOffset = false;
  for (let i = 0; i < N * blocks; i++) {
    half[i] = scales[i] / 2;
    offsets[i] = half[i] * (2 ** bits - 1 - 2 * (zeroPoints ? zeroPoints[i] : src.zeroPoint));
    if (offsets[i] !== 0) anyOffset = true;
  }
  return { planes, scales: half, offsets: anyOffset ? offsets : undefined };
}

export interface SparseLutArgs {
  tables: ArrayLike<number>;
  tableScales: ArrayLike<number>;
  planes: ArrayLike<number>;
  scales: ArrayLike<number>;
  offsets?: ArrayLike<number>;
  bias?: ArrayLike<number>;
  M: number;
  N: number;
  K: number;
  bits: number;
  pattern: NMPattern;
  groupSize: number;
  rowsPerTile: number;
}

/**
 * The integer block sums [M, N, blocks, 2]: I, and J (0 without offsets), planes outer and
 * groups inner as the file comment writes them.
 */
export function sparseLutBlockSums(args: SparseLutArgs): Float64Array {
  const { tables, planes, M, N, K, bits, pattern, groupSize, rowsPerTile } = args;
  const layout = sparseTableLayout(pattern);
  const groups = K / pattern.m;
  const blocks = K / groupSize;
  const perBlock = groupSize / pattern.m;
  const sums = new Float64Array(M * N * blocks * 2);
  for (let m = 0; m < M; m++) {
    for (let n = 0; n < N; n++) {
      for (let blk = 0; blk < blocks; blk++) {
        let total = 0;
        let ones = 0;
        for (let i = 0; i < bits; i++) {
          let plane = 0;
          for (let j = blk * perBlock; j < (blk + 1) * perBlock; j++) {
            const index = planes[planeOffset(i, n, j, N, groups, rowsPerTile)];
            const base = (m * groups + j) * layout.slots;
            plane += lookupSparse(tables, base, index, layout);
            if (i === 0 && args.offsets) ones += lookupSparse(tables, base, onesIndex(layout, index), layout);
          }
          total += plane * 2 ** i;
        }
        const at = ((m * N + n) * blocks + blk) * 2;
        sums[at] = total;
        sums[at + 1] = ones;
      }
    }
  }
  return sums;
}

/** Y [M, N] in f64 (the caller rounds once). */
export function sparseLutMatMul(args: SparseLutArgs): Float64Array {
  const { tableScales, scales, offsets, bias, M, N, K, groupSize } = args;
  const blocks = K / groupSize;
  const sums = sparseLutBlockSums(args);
  const y = new Float64Array(M * N);
  for (let m = 0; m < M; m++) {
    for (let n = 0; n < N; n++) {
      let acc = 0;
      for (let blk = 0; blk < blocks; blk++) {
        const w = n * blocks + blk;
        const at = ((m * N + n) * blocks + blk) * 2;
        acc += tableScales[m * blocks + blk] * (scales[w] * sums[at] + (offsets ? offsets[w] * sums[at + 1] : 0));
      }
      y[m * N + n] = acc + (bias ? bias[n] : 0);
    }
  }
  return y;
}

/** Largest |I| of a block with int8 tables: 127 · lookups · (2^bits − 1). */
export function sparseBlockBound(bits: number, p: NMPattern, groupSize: number): number {
  return TABLE_CODE_MAX * (groupSize / p.m) * (2 ** bits - 1);
}
