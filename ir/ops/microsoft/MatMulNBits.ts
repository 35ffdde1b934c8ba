import { isFloat } from '../../dtype.js';
import { Tensor } from '../../tensor.js';
import type { EvalContext, InferContext, OpDef, OutputInfo } from '../types.js';
import { input, inputType, requireFloat } from './common.js';

/**
 * MatMulNBits (com.microsoft): Y = A x dequant(B)^T + bias, with B holding N rows of K
 * `bits`-bit unsigned codes, quantized in blocks of block_size along K:
 *   B (N, ceil(K/block_size), block_size*bits/8) uint8, codes packed LSB first;
 *   scales (N * blocks), same dtype as A;
 *   zero_points: uint8 packed the same way per row (N * ceil(blocks*bits/8)), or
 *   same dtype as scales (N * blocks); default 2^(bits-1);
 *   w = (code - zero_point) * scale.
 * g_idx is accepted only when it is the trivial k -> floor(k / block_size) mapping.
 * accuracy_level (ORT may quantize A to int8 for speed) does not change the result here.
 */
export const matMulNBits: OpDef = {
  domain: 'com.microsoft',
  op: 'MatMulNBits',
  infer(ctx: InferContext): OutputInfo[] {
    const a = inputType(ctx, 0, 'A');
    requireFloat(ctx, a.dtype, 'A');
    const n = ctx.attrs.int('N');
    return [{ type: { dtype: a.dtype, shape: a.shape ? [...a.shape.slice(0, -1), n] : undefined } }];
  },
  evaluate(ctx: EvalContext): Tensor[] {
    const a = input(ctx, 0, 'A');
    const b = input(ctx, 1, 'B');
    const scales = input(ctx, 2, 'scales');
    const zeroPoints = ctx.inputs[3];
    const gIdx = ctx.inputs[4];
    const bias = ctx.inputs[5];
    requireFloat(ctx, a.dtype, 'A');
    const K = ctx.attrs.int('K');
    const N = ctx.attrs.int('N');
    const bits = ctx.attrs.int('bits', 4);
    const blockSize = ctx.attrs.int('block_size');
    if (bits < 2 || bits > 8) throw ctx.attrs.error(`bits must be in 2..8, got ${bits}`);
    if (blockSize < 16 || (blockSize & (blockSize - 1)) !== 0) {
      throw ctx.attrs.error(`block_size must be a power of 2 and at least 16, got ${blockSize}`);
    }
    if (a.rank < 1 || a.shape[a.rank - 1] !== K) throw ctx.attrs.error(`A's last dim must be K = ${K}, got [${a.shape.join(',')}]`);
    const blocks = Math.ceil(K / blockSize);
    const blobSize = (blockSize * bits) / 8;
    if (b.dtype !== 'u8' || b.size !== N * blocks * blobSize) {
      throw ctx.attrs.error(`B must be uint8 with shape (${N}, ${blocks}, ${blobSize}), got ${b.dtype} [${b.shape.join(',')}]`);
    }
    if (scales.size !== N * blocks) throw ctx.attrs.error(`scales must have ${N * blocks} elements, got ${scales.size}`);
    if (bias && bias.size !== N) throw ctx.attrs.error(`bias must have ${N} elements, got ${bias.size}`);
    if (gIdx) {
      const g = gIdx.numbers();
      const trivial = g.length === K && Array.from(g).every((v, k) => v === Math.floor(k / blockSize));
      if (!trivial) throw ctx.attrs.error('g_idx (act-order quantization) is supported only as the trivial k / block_size mapping');
    }
    const packedZeros = zeroPoints !== undefined && !isFloat(zeroPoints.dtype);
    const zpStride = Math.ceil((blocks * bits) / 8);
    if (zeroPoints) {
      const expected = packedZeros ? N * zpStride : N * blocks;
      if (packedZeros && zeroPoints.dtype !== 'u8') throw ctx.attrs.error(`zero_points must be uint8 or the scales' dtype, got ${zeroPoints.dtype}`);
      if (zeroPoints.size !== expected) throw ctx.attrs.error(`zero_points must have ${expected} elements, got ${zeroPoints.size}`);
    }

    const codes = b.numbers(), sv = scales.numbers(), zv = zeroPoints?.numbers();
    const mask = (1 << bits) - 1;
    const readBits = (bytes: ArrayLike<number>, byteBase: number, bitOffset: number): number => {
      // Codes are a little-endian bit stream and may straddle two bytes (3, 5, 6, 7 bits).
      const byte = byteBase + (bitOffset >> 3);
      const shift = bitOffset & 7;
      const word = bytes[byte] | (shift + bits > 8 ? bytes[byte + 1] << 8 : 0);
      return (word >> shift) & mask;
    };
    // Dequantize W (N, K) the way ORT does, in the scales' precision.
    const w = new Float64Array(N * K);
    const round = (x: number): number => (scales.dtype === 'f64' ? x : Math.fround(x));
    for (let n = 0; n < N; n++) {
      for (let blk = 0; blk < blocks; blk++) {
        const scale = sv[n * blocks + blk];
        let zp = 2 ** (bits - 1);
        if (zv) zp = packedZeros ? readBits(zv, n * zpStride, blk * bits) : zv[n * blocks + blk];
        const blobBase = (n * blocks + blk) * blobSize;
        for (let j = 0; j < blockSize; j++) {
          const k = blk * blockSize + j;
          if (k >= K) break;
          w[n * K + k] = round((readBits(codes, blobBase, j * bits) - zp) * scale);
        }
      }
    }
    const av = a.numbers(), bv = bias?.numbers();
    const rows = a.size / K;
    const out = new Float64Array(rows * N);
    for (let r = 0; r < rows; r++) {
      for (let n = 0; n < N; n++) {
        let acc = 0;
        for (let k = 0; k < K; k++) acc += av[r * K + k] * w[n * K + k];
        out[r * N + n] = bv ? acc + bv[n] : acc;
      }
    }
    return [Tensor.fromNumbers(a.dtype, [...a.shape.slice(0, -1), N], out)];
  },
};
