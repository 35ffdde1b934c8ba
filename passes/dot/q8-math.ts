import { tableCode, tableScale } from '../lut/tables.js';
import { DOT_TILE_ROWS, unpackDotWeights, type DotLayout } from './layout.js';

/**
 * The math of the int8-activation dot path (llmcc.QuantizeActQ8 + llmcc.QuantMatMulQ8), in
 * the exact order every target reproduces.
 *
 * Activations, per row and per block of group_size along K (the last block may be partial):
 *   s_a = fround(max|a| / 127), q = roundHalfEven(fround(a / s_a)) clamped to ±127 (0 when
 *   s_a = 0): the LUT tables' int8 rule (passes/lut/tables.ts), ties to even. Σq per block is
 *   kept as an int32. q is padded with zeros to whole blocks.
 * Weights (dot layout, layout.ts), per row n and block b, with h = s_w/2 and o2 = 2·(z − c),
 * c = 128 for 8-bit codes else 0:
 *   E = 2·Σ_k (code − c)·q  −  o2·Σq          (an exact int32: 2·Σ (code − z)·q)
 *   y = Σ_b fround(fround(h·s_a)·fround(E))    (f32, b ascending, starting from +0)
 *   Y = fround(y + bias)                        (when a bias is given)
 */

export interface QuantizedActivations {
  /** q [M, groups·group_size] (zero padded), s_a and Σq [M, groups]. */
  q: Int8Array;
  scales: Float32Array;
  sums: Int32Array;
}

export function quantizeActivationsQ8(a: ArrayLike<number>, M: number, K: number, groupSize: number): QuantizedActivations {
  const groups = Math.ceil(K / groupSize);
  const padded = groups * groupSize;
  const q = new Int8Array(M * padded);
  const scales = new Float32Array(M * groups);
  const sums = new Int32Array(M * groups);
  for (let m = 0; m < M; m++) {
    for (let g = 0; g < groups; g++) {
      const start = m * K + g * groupSize;
      const end = m * K + Math.min(K, (g + 1) * groupSize);
      const scale = tableScale(a, start, end);
      scales[m * groups + g] = scale;
      let sum = 0;
      for (let i = start; i < end; i++) {
        const code = tableCode(a[i], scale);
        q[m * padded + g * groupSize + (i - start)] = code;
        sum += code;
      }
      sums[m * groups + g] = sum;
    }
  }
  return { q, scales, sums };
}

/** The exact integers E [M, N, groups] of the file comment. */
export function dotBlockSums(act: QuantizedActivations, packed: ArrayLike<number>, offsets: ArrayLike<number>, l: DotLayout, M: number): Int32Array {
  const codes = unpackDotWeights(packed, l);
  const padded = l.groups * l.groupSize;
  const out = new Int32Array(M * l.N * l.groups);
  for (let m = 0; m < M; m++) {
    for (let n = 0; n < l.N; n++) {
      for (let g = 0; g < l.groups; g++) {
        let dot = 0;
        for (let k = g * l.groupSize; k < Math.min(l.K, (g + 1) * l.groupSize); k++) {
          dot += (codes[n * l.K + k] - l.codeOffset) * act.q[m * padded + k];
        }
        const offset = offsets[tileIndex(n, g, l)];
        out[(m * l.N + n) * l.groups + g] = 2 * dot - offset * act.sums[m * l.groups + g];
      }
    }
  }
  return out;
}

/** Index of row n's entry for block g in the tiled [tiles, groups, 4] scales and offsets. */
export function tileIndex(n: number, g: number, l: DotLayout): number {
  return (Math.floor(n / DOT_TILE_ROWS) * l.groups + g) * DOT_TILE_ROWS + (n % DOT_TILE_ROWS);
}

/** Y [M, N] in f32 (see the file comment). */
export function dotMatMulQ8(
  act: QuantizedActivations, packed: ArrayLike<number>, halfScales: ArrayLike<number>, offsets: ArrayLike<number>,
  bias: ArrayLike<number> | undefined, l: DotLayout, M: number,
): Float32Array {
  const sums = dotBlockSums(act, packed, offsets, l, M);
  const y = new Float32Array(M * l.N);
  for (let m = 0; m < M; m++) {
    for (let n = 0; n < l.N; n++) {
      let acc = 0;
      for (let g = 0; g < l.groups; g++) {
        const scale = Math.fround(halfScales[tileIndex(n, g, l)] * act.scales[m * l.groups + g]);
        acc = Math.fround(acc + Math.fround(scale * Math.fround(sums[(m * l.N + n) * l.groups + g])));
      }
      y[m * l.N + n] = bias ? Math.fround(acc + bias[n]) : acc;
    }
  }
  return y;
}
