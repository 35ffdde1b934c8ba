/** Rotary embedding of one head vector, shared by the rotary and attention kernels. */
import type { Expr } from '../../../codegen/kernel.js';
import { type BufferRef, type KernelBuilder, add, mul, sub } from '../../../codegen/builder.js';

export interface RotaryArgs {
  src: BufferRef;
  srcBase: Expr;
  dst: BufferRef;
  dstBase: Expr;
  cos: BufferRef;
  sin: BufferRef;
  /** Element offset of this position's cos/sin row (rotaryDim / 2 values). */
  cacheBase: Expr;
  half: Expr;
  rotaryDim: Expr;
  headSize: Expr;
  interleaved: boolean;
}

/**
 * Rotates pairs (i, i + half) — or (2i, 2i + 1) when interleaved — of the first rotaryDim
 * elements: (x1, x2) → (x1 cos - x2 sin, x2 cos + x1 sin); copies the rest of the head.
 */
export function emitRotary(k: KernelBuilder, a: RotaryArgs): void {
  k.loop('r', 0, a.half, (i) => {
    const c = k.let('cos', a.cos.load(add(a.cacheBase, i)));
    const s = k.let('sin', a.sin.load(add(a.cacheBase, i)));
    const i1 = k.let('i1', a.interleaved ? mul(i, 2) : i);
    const i2 = k.let('i2', a.interleaved ? add(mul(i, 2), 1) : add(i, a.half));
    const x1 = k.let('x1', a.src.load(add(a.srcBase, i1)));
    const x2 = k.let('x2', a.src.load(add(a.srcBase, i2)));
    a.dst.store(add(a.dstBase, i1), sub(mul(x1, c), mul(x2, s)));
    a.dst.store(add(a.dstBase, i2), add(mul(x2, c), mul(x1, s)));
  });
  k.loop('r', a.rotaryDim, a.headSize, (i) => a.dst.store(add(a.dstBase, i), a.src.load(add(a.srcBase, i))));
}
