import { LlmccError } from '../../ir/errors.js';
import { indexBits, keptPerRow, type NMPattern } from './pattern.js';

/**
 * Index metadata of an N:M sparse weight: the position (0..M−1) of every kept weight inside
 * its group, log2(M) bits each, packed per row as a little-endian bit stream (field f of a
 * row at bits [f·b, f·b + b) of the row's bytes, b = log2(M)); each row starts on a byte.
 * For 2:4 and 1:4 (b = 2) a byte holds 4 positions and no field straddles bytes; for 2:8
 * (b = 3) fields may.
 */

/** Bytes of packed indices per row. */
export function indexBytesPerRow(K: number, p: NMPattern): number {
  return Math.ceil((keptPerRow(K, p) * indexBits(p)) / 8);
}

/** Packs positions [N, K·n/m] into [N, indexBytesPerRow]. */
export function packIndices(positions: ArrayLike<number>, N: number, K: number, p: NMPattern): Uint8Array {
  const perRow = keptPerRow(K, p);
  const bits = indexBits(p);
  const rowBytes = indexBytesPerRow(K, p);
  if (positions.length !== N * perRow) throw new LlmccError(`positions have ${positions.length} elements, expected ${N * perRow}`);
  const out = new Uint8Array(N * rowBytes);
  for (let row = 0; row < N; row++) {
    for (let f = 0; f < perRow; f++) {
      const position = positions[row * perRow + f];
      if (!Number.isInteger(position) || position < 0 || position >= p.m) {
        throw new LlmccError(`sparse position ${position} of row ${row} is outside 0..${p.m - 1}`);
      }
      const bit = f * bits;
      const at = row * rowBytes + (bit >> 3);
      const shifted = position << (bit & 7);
      out[at] |= shifted & 0xff;
      if (shifted > 0xff) out[at + 1] |= shifted >> 8;
    }
  }
  return out;
}

/** Position of kept weight f of `row` from packed indices. */
export function indexAt(packed: ArrayLike<number>, row: number, f: number, rowBytes: number, p: NMPattern): number {
  const bits = indexBits(p);
  const bit = f * bits;
  const at = row * rowBytes + (bit >> 3);
  const shift = bit & 7;
  let word = packed[at];
  if (shift + bits > 8) word |= packed[at + 1] << 8;
  return (word >> shift) & (p.m - 1);
}

/** The inverse of packIndices: positions [N, K·n/m]. */
export function unpackIndices(packed: ArrayLike<number>, N: number, K: number, p: NMPattern): Uint8Array {
  const perRow = keptPerRow(K, p);
  const rowBytes = indexBytesPerRow(K, p);
  if (packed.length !== N * rowBytes) throw new LlmccError(`packed indices have ${packed.length} bytes, expected ${N * rowBytes}`);
  const out = new Uint8Array(N * perRow);
  for (let row = 0; row < N; row++) {
    for (let f = 0; f < perRow; f++) {
      const position = indexAt(packed, row, f, rowBytes, p);
      // Positions ascend strictly inside a group (the same k cannot be kept twice).
      if (f % p.n !== 0 && position <= out[row * perRow + f - 1]) {
        throw new LlmccError(`sparse positions of row ${row}, group ${Math.floor(f / p.n)} are not strictly ascending`);
      }
      out[row * perRow + f] = position;
    }
  }
  return out;
}
