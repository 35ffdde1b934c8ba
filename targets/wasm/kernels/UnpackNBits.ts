import { KernelBuilder, add, and, cast, f32, gt, i32, mul, or, shl, shr } from '../../../codegen/builder.js';
import type { Expr, Kernel } from '../../../codegen/kernel.js';
import type { BufferRef } from '../../../codegen/builder.js';
import type { Node } from '../../../ir/graph.js';
import { Attrs } from '../../../ir/ops/attrs.js';
import { checkNBitsParams, type NBitsLayout, type NBitsParams } from '../../../passes/quant/nbits.js';
import type { KernelBuildContext, WasmKernelDef } from '../kernel-def.js';

/**
 * llmcc.UnpackNBits(B, scales, zero_points?) → (codes, scales_out, zero_points_out) on wasm
 * (semantics: ir/ops/llmcc/UnpackNBits.ts, bit layout: passes/quant/nbits.ts): MatMulNBits'
 * packed weights, unpacked at run time. Codes are read LSB-first from each block's blob; a
 * 3/5/6/7-bit code may straddle two bytes, so the second byte is read only when it does
 * (never past the blob). Scales are copied (the arena holds every float type as f32, so f16
 * and bf16 scales arrive widened), zero points unpacked from u8 or copied from floats, and
 * default to 2^(bits−1). Every size is static (attributes): no scalar arguments.
 */

function params(node: Node): NBitsParams & NBitsLayout {
  const attrs = new Attrs(node);
  const p = { k: attrs.int('K'), n: attrs.int('N'), bits: attrs.int('bits', 4), blockSize: attrs.int('block_size') };
  return { ...p, ...checkNBitsParams(p) };
}

/** `bits` bits at bit offset `bitOffset` (static width) of bytes[base…], LSB-first, as i32. */
function emitReadBits(k: KernelBuilder, bytes: BufferRef, base: Expr, bitOffset: Expr, bits: number): Expr {
  const byte = k.let('byte', add(base, shr(bitOffset, 3)));
  const shift = k.let('shift', and(bitOffset, 7));
  const word = k.mut('word', bytes.load(byte));
  if (8 % bits !== 0) {
    // Codes of 3, 5, 6 or 7 bits can continue into the next byte.
    k.if(gt(add(shift, bits), 8), () => k.set(word, or(word, shl(bytes.load(add(byte, 1)), 8))));
  }
  return k.let('bits', and(shr(word, shift), (1 << bits) - 1));
}

export function buildUnpackNBits(ctx: KernelBuildContext): Kernel {
  const p = params(ctx.node);
  const zeroInput = ctx.inputs[2];
  const k = new KernelBuilder(ctx.name);
  const b = k.buffer('b', 'u8', 'read');
  const scales = k.buffer('scales', 'f32', 'read');
  const zeroPacked = zeroInput?.dtype === 'u8';
  const zeroPoints = zeroInput ? k.buffer('zero_points', zeroPacked ? 'u8' : 'f32', 'read') : undefined;
  const codes = k.buffer('codes', 'u8', 'write');
  const scalesOut = k.buffer('scales_out', 'f32', 'write');
  const zeroOut = k.buffer('zero_points_out', 'f32', 'write');
  const fullBlocks = Math.floor(p.k / p.blockSize);
  const partial = p.k % p.blockSize;
  k.loop('row', 0, p.n, (row) => {
    const codeRow = k.let('crow', mul(row, p.k));
    /** Block `blk` of the row, whose first `length` codes are real (the last block may be partial). */
    const block = (blk: Expr, length: number): void => {
      const blob = k.let('blob', mul(add(mul(row, p.blocks), blk), p.blobSize));
      const k0 = k.let('k0', add(codeRow, mul(blk, p.blockSize)));
      k.loop('j', 0, length, (j) => {
        const code = p.bits === 8 ? b.load(add(blob, j)) : emitReadBits(k, b, blob, mul(j, p.bits), p.bits);
        codes.store(add(k0, j), code);
      });
      const param = k.let('pi', add(mul(row, p.blocks), blk));
      scalesOut.store(param, scales.load(param));
      let zero: Expr;
      if (!zeroPoints) zero = f32(2 ** (p.bits - 1));
      else if (zeroPacked) zero = cast(emitReadBits(k, zeroPoints, mul(row, p.zeroPointRowBytes), mul(blk, p.bits), p.bits), 'f32');
      else zero = zeroPoints.load(param);
      zeroOut.store(param, zero);
    };
    if (fullBlocks > 0) k.loop('blk', 0, fullBlocks, (blk) => block(blk, p.blockSize));
    if (partial) block(i32(fullBlocks), partial);
  });
  return k.build();
}

const FLOAT_SCALES = ['f32', 'f16', 'bf16'];

export const unpackNBitsKernel: WasmKernelDef = {
  domain: 'llmcc',
  op: 'UnpackNBits',
  check(ctx) {
    const [b, scales, zeroPoints] = ctx.inputs;
    if (!b || !scales) return 'inputs B and scales are required';
    if (b.dtype !== 'u8') return `B of type ${b.dtype}`;
    if (!FLOAT_SCALES.includes(scales.dtype)) return `scales of type ${scales.dtype}`;
    if (zeroPoints && zeroPoints.dtype !== 'u8' && !FLOAT_SCALES.includes(zeroPoints.dtype)) return `zero points of type ${zeroPoints.dtype}`;
    params(ctx.node);
    return undefined;
  },
  build: buildUnpackNBits,
  args: () => [],
};
