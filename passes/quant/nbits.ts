import { LlmccError } from '../../ir/errors.js';
import type { WeightBits } from '../../ir/quant.js';

/**
 * com.microsoft.MatMulNBits weight format, unpacked to llmcc's codes-nk form. Shared by
 * the import-prequantized pass (constant weights, unpacked at compile time) and the
 * llmcc.UnpackNBits op (weights that are graph inputs, unpacked at run time), so both
 * paths give the same codes, scales and zero points.
 *
 * B is uint8 [N, blocks, blob] with blob = block_size·bits/8 bytes per block, codes packed
 * least-significant bit first; zero points are either uint8 packed the same way per row
 * (ceil(blocks·bits/8) bytes a row) or a float tensor of the scales' size; default 2^(bits−1).
 * bits 5–7 are carried as 8-bit codes with explicit zero points, which is lossless.
 */
export interface NBitsParams {
  k: number;
  n: number;
  bits: number;
  blockSize: number;
}

export interface NBitsLayout {
  blocks: number;
  blobSize: number;
  /** Bytes per row of packed uint8 zero points. */
  zeroPointRowBytes: number;
  /** The width the codes are carried at: bits itself for 2, 3, 4, 8; 8 for 5–7. */
  storedBits: WeightBits;
}

export function checkNBitsParams(p: NBitsParams, where?: string): NBitsLayout {
  if (!Number.isInteger(p.bits) || p.bits < 2 || p.bits > 8) throw new LlmccError(`bits must be 2..8, got ${p.bits}`, where);
  if (p.blockSize < 16 || (p.blockSize & (p.blockSize - 1)) !== 0) {
    throw new LlmccError(`block_size must be a power of 2 and >= 16, got ${p.blockSize}`, where);
  }
  if (!(p.k > 0) || !(p.n > 0)) throw new LlmccError(`K and N must be positive, got K=${p.k} N=${p.n}`, where);
  const blocks = Math.ceil(p.k / p.blockSize);
  return {
    blocks,
    blobSize: Math.ceil((p.blockSize * p.bits) / 8),
    zeroPointRowBytes: Math.ceil((blocks * p.bits) / 8),
    storedBits: p.bits === 2 || p.bits === 3 || p.bits === 4 || p.bits === 8 ? p.bits : 8,
  };
}

/** Reads `bits` bits starting at `bitOffset` of `bytes`, least significant bit first. */
function readBits(bytes: ArrayLike<number>, base: number, bitOffset: number, bits: number): number {
  let value = 0;
  for (let b = 0; b < bits; b++) {
    const bit = bitOffset + b;
    value |= ((bytes[base + (bit >> 3)] >> (bit & 7)) & 1) << b;
  }
  return value;
}

/** B's packed blobs → codes [N, K], one per weight. */
export function unpackNBitsCodes(b: ArrayLike<number>, p: NBitsParams, where?: string): Uint8Array {
  const { blocks, blobSize } = checkNBitsParams(p, where);
  if (b.length !== p.n * blocks * blobSize) {
    throw new LlmccError(`B must hold N·blocks·blob = ${p.n}·${blocks}·${blobSize} bytes, got ${b.length}`, where);
  }
  const codes = new Uint8Array(p.n * p.k);
  for (let row = 0; row < p.n; row++) {
    for (let col = 0; col < p.k; col++) {
      const blob = (row * blocks + Math.floor(col / p.blockSize)) * blobSize;
      codes[row * p.k + col] = readBits(b, blob, (col % p.blockSize) * p.bits, p.bits);
    }
  }
  return codes;
}

/**
 * Zero points [N, blocks] as real values: from packed uint8 (`packed`), from a float tensor,
 * or, when absent, undefined for bits 2/3/4/8 (QuantMatMul's default 2^(bits−1) is the same)
 * and explicit 2^(bits−1) for 5–7 (carried as 8-bit codes, whose default differs).
 */
export function unpackNBitsZeroPoints(
  zp: ArrayLike<number> | undefined, packed: boolean, p: NBitsParams, where?: string,
): Float32Array | undefined {
  const { blocks, zeroPointRowBytes, storedBits } = checkNBitsParams(p, where);
  if (!zp) return storedBits === p.bits ? undefined : new Float32Array(p.n * blocks).fill(2 ** (p.bits - 1));
  const out = new Float32Array(p.n * blocks);
  if (packed) {
    if (zp.length !== p.n * zeroPointRowBytes) {
      throw new LlmccError(`packed zero_points have ${zp.length} bytes, expected ${p.n * zeroPointRowBytes}`, where);
    }
    for (let row = 0; row < p.n; row++) {
      for (let blk = 0; blk < blocks; blk++) out[row * blocks + blk] = readBits(zp, row * zeroPointRowBytes, blk * p.bits, p.bits);
    }
  } else {
    if (zp.length !== p.n * blocks) throw new LlmccError(`zero_points have ${zp.length} elements, expected ${p.n * blocks}`, where);
    for (let i = 0; i < out.length; i++) out[i] = zp[i];
  }
  return out;
}
