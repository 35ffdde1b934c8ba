import { lookupSymmetric, storedEntries } from './tables.js';
import type { IndicesPerByte } from '../../ir/quant.js';
import { readPlaneIndex, scaleOffset } from './bitplanes.js';

/**
 * The LUT matmul every target must reproduce:
 *   Y[m, n] = Σ_blk ( scales[n,blk]·table_scales[m,blk]·I[m,n,blk] + offsets[n,blk]·act_sums[m,blk] ) + bias[n]
 *   I[m,n,blk] = Σ_i 2^i Σ_{j ∈ blk} lookup(tables[m, j], planes[i, n, j])
 * I is summed planes outer, table groups inner. For int8 tables every term is an integer and
 * the sums stay below 2^31 (checkAccumulationFits), so I is exact; the epilogue is f64 here.
 */
export interface LutMatMulArgs {
  /** [M, K/g, 2^(g−1)]. */
  tables: ArrayLike<number>;
  /** [M, K/groupSize]. */
  tableScales: ArrayLike<number>;
  /** [M, K/groupSize]. */
  actSums: ArrayLike<number>;
  /** [bits, N, K/(g·indicesPerByte)], stored interleaved by rowsPerTile (bitplanes.ts). */
  planes: ArrayLike<number>;
  /** [N, K/groupSize] (tiled [N/R, blocks, R] when tiledScales). */
  scales: ArrayLike<number>;
  /** [N, K/groupSize], laid out like the scales. */
  offsets: ArrayLike<number>;
  /** [N]. */
  bias?: ArrayLike<number>;
  M: number;
  N: number;
  K: number;
  bits: number;
  g: number;
  groupSize: number;
  rowsPerTile: number;
  /** g-bit indices per stored byte (default 1). */
  indicesPerByte?: IndicesPerByte;
  /** Scales and offsets stored tile by tile like the planes (bitplanes.ts scaleOffset). */
  tiledScales?: boolean;
}

/** The block sums I[m, n, blk] ([M, N, K/groupSize]); integers for int8 tables. */
export function lutBlockSums(args: LutMatMulArgs): Float64Array {
  const { tables, planes, M, N, K, bits, g, groupSize, rowsPerTile } = args;
  const half = storedEntries(g);
  const groups = K / g;
  const blocks = K / groupSize;
  const perBlock = groupSize / g;
  const perByte = args.indicesPerByte ?? 1;
  const sums = new Float64Array(M * N * blocks);
  for (let m = 0; m < M; m++) {
    for (let n = 0; n < N; n++) {
      for (let blk = 0; blk < blocks; blk++) {
        let total = 0;
        for (let i = 0; i < bits; i++) {
          let plane = 0;
          for (let j = blk * perBlock; j < (blk + 1) * perBlock; j++) {
            const index = readPlaneIndex(planes, i, n, j, N, groups, rowsPerTile, perByte);
            plane += lookupSymmetric(tables, (m * groups + j) * half, index, g);
          }
          total += plane * 2 ** i;
        }
        sums[(m * N + n) * blocks + blk] = total;
      }
    }
  }
  return sums;
}

/** Y [M, N] in f64 (the caller rounds to the output dtype once). */
export function lutMatMul(args: LutMatMulArgs): Float64Array {
  const { tableScales, actSums, scales, offsets, bias, M, N, K, groupSize, rowsPerTile } = args;
  const tiled = args.tiledScales ?? false;
  const blocks = K / groupSize;
  const sums = lutBlockSums(args);
  const y = new Float64Array(M * N);
  for (let m = 0; m < M; m++) {
    for (let n = 0; n < N; n++) {
      let acc = 0;
      for (let blk = 0; blk < blocks; blk++) {
        const w = scaleOffset(n, blk, blocks, rowsPerTile, tiled);
        const a = m * blocks + blk;
        acc += scales[w] * tableScales[a] * sums[(m * N + n) * blocks + blk] + offsets[w] * actSums[a];
      }
      y[m * N + n] = acc + (bias ? bias[n] : 0);
    }
  }
  return y;
}
