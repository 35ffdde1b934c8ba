/**
 * Quantized-weight metadata carried on a tensor type, so passes and targets never guess how
 * a weight is stored. The value's dtype is its storage dtype (u8 codes, u8 bit-plane indices);
 * the scales and zero points are separate values named by the op that consumes the weight.
 */
export type WeightBits = 1 | 2 | 3 | 4 | 8;

export type WeightLayout =
  /** One unpacked code per element, rows = output channels: codes[n, k]. */
  | { kind: 'codes-nk' }
  /**
   * LUT layout: weights split into bit-planes, each g consecutive k of a plane packed into
   * a g-bit table index: indices[plane, n, k/g]. `rowsPerTile` interleaves rows for the
   * target's SIMD width (1 = plain row order). `indicesPerByte` 2 (g ≤ 4 only) stores two
   * indices of consecutive groups j (low nibble) and j + 1 (high nibble) of the same row in
   * one byte, the stored shape then [bits, N, K/(2g)]; absent (older IR and bundles) = 1.
   */
  | { kind: 'bitplanes'; g: number; rowsPerTile: number; indicesPerByte?: IndicesPerByte };

/** Plane indices per stored byte (passes/lut/bitplanes.ts). */
export type IndicesPerByte = 1 | 2;

export interface QuantInfo {
  /** Bits per weight; ternary weights are 2-bit codes {0,1,2} with zero point 1. */
  bits: WeightBits;
  ternary: boolean;
  /** Weights per scale along K. */
  groupSize: number;
  /** False when every group has a zero point (asymmetric). */
  symmetric: boolean;
  scaleDtype: 'f32' | 'f16';
  layout: WeightLayout;
  /**
   * N:M structured sparsity: of every M consecutive weights along K at most N are stored
   * (passes/sparsity/); the value then holds only the kept codes, their positions beside it.
   */
  sparsity?: { n: number; m: number };
}

export function describeQuant(q: QuantInfo): string {
  const layout = q.layout.kind === 'codes-nk' ? 'codes-nk'
    : `bitplanes(g=${q.layout.g},rows=${q.layout.rowsPerTile}${(q.layout.indicesPerByte ?? 1) === 2 ? ',per_byte=2' : ''})`;
  return `${q.ternary ? 'ternary' : `int${q.bits}`} group=${q.groupSize} ${q.symmetric ? 'sym' : 'asym'} scale=${q.scaleDtype} layout=${layout}${q.sparsity ? ` sparsity=${q.sparsity.n}:${q.sparsity.m}` : ''}`;
}
