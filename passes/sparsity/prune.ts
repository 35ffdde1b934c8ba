import { LlmccError } from '../../ir/errors.js';
import { checkSparseLayout, keptPerRow, type NMPattern } from './pattern.js';

/**
 * Choosing which weights an N:M pattern keeps. For each row n and each group of M
 * consecutive k, the N weights of largest magnitude are kept (ties go to the lower k, so the
 * choice is deterministic). A weight that already satisfies the pattern (every group has at
 * most N nonzeros, e.g. a checkpoint pruned by SparseGPT or MaskLLM) keeps all its nonzeros:
 * the N largest magnitudes of such a group include every nonzero, so "detection" is exact by
 * construction and `satisfiesPattern` only reports it.
 */

/** Positions of the kept weights, [N, K·n/m], ascending inside each group (values 0..m−1). */
export interface KeptPositions {
  positions: Uint8Array;
  /** Whether the weight already had the pattern (nothing nonzero was dropped). */
  detected: boolean;
  /** Nonzero weights before and after pruning (for the achieved-sparsity report). */
  nonzeroBefore: number;
  nonzeroAfter: number;
}

/** True when every group of M along K has at most N nonzero weights. */
export function satisfiesPattern(rows: ArrayLike<number>, N: number, K: number, p: NMPattern): boolean {
  checkSparseLayout(p, K);
  for (let base = 0; base < N * K; base += p.m) {
    let nonzero = 0;
    for (let t = 0; t < p.m; t++) if (rows[base + t] !== 0) nonzero++;
    if (nonzero > p.n) return false;
  }
  return true;
}

/** The N largest-magnitude positions of every group (see the file comment). */
export function selectKept(rows: ArrayLike<number>, N: number, K: number, p: NMPattern): KeptPositions {
  checkSparseLayout(p, K);
  if (rows.length !== N * K) throw new LlmccError(`weight has ${rows.length} elements, expected ${N}x${K}`);
  const perRow = keptPerRow(K, p);
  const positions = new Uint8Array(N * perRow);
  const chosen = new Uint8Array(p.m);
  let nonzeroBefore = 0;
  let nonzeroAfter = 0;
  let out = 0;
  for (let base = 0; base < N * K; base += p.m) {
    chosen.fill(0);
    // N passes of "largest not yet chosen"; strict > keeps the lower k on a tie.
    for (let pick = 0; pick < p.n; pick++) {
      let best = -1;
      for (let t = 0; t < p.m; t++) {
        if (!chosen[t] && (best < 0 || Math.abs(rows[base + t]) > Math.abs(rows[base + best]))) best = t;
      }
      chosen[best] = 1;
    }
    for (let t = 0; t < p.m; t++) {
      if (rows[base + t] !== 0) nonzeroBefore++;
      if (!chosen[t]) continue;
      positions[out++] = t;
      if (rows[base + t] !== 0) nonzeroAfter++;
    }
  }
  return { positions, detected: nonzeroAfter === nonzeroBefore, nonzeroBefore, nonzeroAfter };
}

/** The kept weights gathered into [N, K·n/m] (row-major), in position order. */
export function gatherKept(rows: ArrayLike<number>, positions: ArrayLike<number>, N: number, K: number, p: NMPattern): Float32Array {
  const perRow = keptPerRow(K, p);
  const out = new Float32Array(N * perRow);
  for (let row = 0; row < N; row++) {
    for (let f = 0; f < perRow; f++) {
      const group = Math.floor(f / p.n);
      out[row * perRow + f] = rows[row * K + group * p.m + positions[row * perRow + f]];
    }
  }
  return out;
}

/** The dense [N, K] weight of kept values (zeros elsewhere): the inverse of gatherKept. */
export function scatterKept(values: ArrayLike<number>, positions: ArrayLike<number>, N: number, K: number, p: NMPattern): Float32Array {
  const perRow = keptPerRow(K, p);
  const out = new Float32Array(N * K);
  for (let row = 0; row < N; row++) {
    for (let f = 0; f < perRow; f++) {
      const group = Math.floor(f / p.n);
      out[row * K + group * p.m + positions[row * perRow + f]] = values[row * perRow + f];
    }
  }
  return out;
}
