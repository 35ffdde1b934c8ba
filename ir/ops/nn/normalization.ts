import type { Dim } from '../../graph.js';
import { Tensor } from '../../tensor.js';
import type { Attrs } from '../attrs.js';
import { broadcastIndex, broadcastShapes, normalizeAxis } from '../util/shape.js';
import { LlmccError } from '../../errors.js';

/** Shared by LayerNormalization and RMSNormalization: rows are the dims from `axis` on. */

export function normalizationAxis(attrs: Attrs, rank: number): number {
  try {
    return normalizeAxis(attrs.int('axis', -1), rank);
  } catch (e) {
    if (e instanceof LlmccError) throw attrs.error(e.message);
    throw e;
  }
}

/** Checks that a per-row parameter (scale, bias) broadcasts to the normalized shape. */
export function checkRowParam(attrs: Attrs, what: string, param: readonly Dim[], rowShape: readonly Dim[]): void {
  let joined: Dim[];
  try {
    joined = broadcastShapes(param, rowShape);
  } catch {
    throw attrs.error(`${what} of shape [${param.join(',')}] does not broadcast to [${rowShape.join(',')}]`);
  }
  if (joined.length !== rowShape.length || joined.some((d, i) => d !== rowShape[i] && typeof rowShape[i] === 'number')) {
    throw attrs.error(`${what} of shape [${param.join(',')}] does not broadcast to [${rowShape.join(',')}]`);
  }
}

/** Index of each normalized-row element into a row parameter broadcast over the row. */
export function rowParamIndex(attrs: Attrs, what: string, param: Tensor, rowShape: number[]): Int32Array {
  checkRowParam(attrs, what, param.shape, rowShape);
  return broadcastIndex(rowShape, param.shape);
}

/** Mean/InvStdDev shape: X's shape with the normalized dims set to 1. */
export function reducedShape<T extends Dim>(shape: readonly T[], axis: number): (T | 1)[] {
  return shape.map((d, i) => (i < axis ? d : 1));
}

export interface RowStats {
  rows: number;
  cols: number;
}

export function rowLayout(shape: readonly number[], axis: number): RowStats {
  const rows = shape.slice(0, axis).reduce((a, b) => a * b, 1);
  const cols = shape.slice(axis).reduce((a, b) => a * b, 1);
  return { rows, cols };
}
