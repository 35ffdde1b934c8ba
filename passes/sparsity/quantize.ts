import { LlmccError } from '../../ir/errors.js';
import type { QuantInfo } from '../../ir/quant.js';
import { quantizeRows, type LayerScheme } from '../quant/layers.js';
import { dequantize, type QuantizedWeight } from '../quant/rtn.js';
import { checkSparseLayout, keptPerRow, type NMPattern } from './pattern.js';
import { gatherKept, scatterKept, selectKept } from './prune.js';
import { packIndices } from './pack.js';

/**
 * An N:M sparse quantized weight: the kept weights of [N, K] gathered into [N, K·n/m] and
 * quantized as usual (RTN or ternary, group-wise), plus their packed positions. A quant group
 * of `groupSize` positions along K holds groupSize·n/m kept weights, so the scales see only
 * the values actually stored (the pruned zeros do not widen the grid).
 */
export interface SparseQuantizedWeight {
  pattern: NMPattern;
  /** Dense K (positions); `values.k` is K·n/m. */
  K: number;
  /** Group size along K in positions (as values.info.groupSize; values.k = K·n/m). */
  groupSize: number;
  values: QuantizedWeight;
  /** Packed positions, [N, indexBytesPerRow(K)] (passes/sparsity/pack.ts). */
  indices: Uint8Array;
  /** Positions unpacked, [N, K·n/m]. */
  positions: Uint8Array;
  detected: boolean;
  nonzeroBefore: number;
  nonzeroAfter: number;
}

export function quantizeSparse(
  rows: Float32Array, N: number, K: number, pattern: NMPattern, scheme: Extract<LayerScheme, { kind: 'quant' }>,
): SparseQuantizedWeight {
  checkSparseLayout(pattern, K, scheme.groupSize);
  if (K % scheme.groupSize !== 0) throw new LlmccError(`K = ${K} is not a multiple of the group size ${scheme.groupSize}`);
  const kept = selectKept(rows, N, K, pattern);
  const compact = gatherKept(rows, kept.positions, N, K, pattern);
  const valuesGroup = (scheme.groupSize / pattern.m) * pattern.n;
  const values = quantizeRows(compact, N, keptPerRow(K, pattern), { ...scheme, groupSize: valuesGroup });
  const info: QuantInfo = { ...values.info, groupSize: scheme.groupSize, sparsity: { ...pattern } };
  return {
    pattern, K, groupSize: scheme.groupSize,
    values: { ...values, info },
    indices: packIndices(kept.positions, N, K, pattern),
    positions: kept.positions,
    detected: kept.detected, nonzeroBefore: kept.nonzeroBefore, nonzeroAfter: kept.nonzeroAfter,
  };
}

/** The dense [N, K] weight the sparse one stands for (zeros at pruned positions). */
export function dequantizeSparse(w: SparseQuantizedWeight): Float32Array {
  const info = { ...w.values.info, groupSize: (w.groupSize / w.pattern.m) * w.pattern.n };
  const compact = dequantize({ ...w.values, info });
  return scatterKept(compact, w.positions, w.values.n, w.K, w.pattern);
}
