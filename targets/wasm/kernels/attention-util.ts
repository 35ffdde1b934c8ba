/**
 * Pieces shared by the wasm attention kernels (ai.onnx Attention, com.microsoft Attention /
 * MultiHeadAttention / GroupQueryAttention): a location type, dot products, softmax rows
 * and KV-cache concatenation. Scores live in f32 scratch; accumulation is f32.
 */
import type { Expr } from '../../../codegen/kernel.js';
import { type BufferRef, type KernelBuilder, add, div, eq, exp, f32, max, mul, select, sub } from '../../../codegen/builder.js';

/** A buffer and a base element offset inside it. */
export interface Loc {
  buf: BufferRef;
  base: Expr;
}

export const at = (loc: Loc, index: Expr | number): Expr => add(loc.base, index);

/** Σ_d q(d) · K[kBase + d] over d < size, in d order. */
export function emitDot(k: KernelBuilder, q: (d: Expr) => Expr, kv: BufferRef, kBase: Expr, size: Expr): Expr {
  const acc = k.mut('dot', f32(0));
  k.loop('d', 0, size, (d) => k.set(acc, add(acc, mul(q(d), kv.load(add(kBase, d))))));
  return acc;
}

/**
 * Softmax of scores[start, end) in place: max (NaN-propagating, like numpy), exp(x - max),
 * divide by the sum. `sink` adds an extra logit to the denominator (smooth softmax / head
 * sinks). With `zeroWhenMasked`, a row whose max is -inf becomes all zeros (ai.onnx
 * Attention); otherwise it follows the arithmetic (NaN), as ONNX Runtime does.
 */
export function emitSoftmax(
  k: KernelBuilder, scores: Loc, start: Expr, end: Expr,
  options: { sink?: Expr; zeroWhenMasked?: boolean; rowMax?: Expr } = {},
): void {
  const { buf } = scores;
  let rowMax: Expr;
  if (options.rowMax) {
    rowMax = options.rowMax;
  } else {
    const m = k.mut('row_max', options.sink ?? f32(-Infinity));
    k.loop('t', start, end, (t) => k.set(m, max(m, buf.load(at(scores, t)))));
    rowMax = m;
  }
  const body = (): void => {
    const total = k.mut('exp_sum', options.sink ? exp(sub(options.sink, rowMax)) : f32(0));
    k.loop('t', start, end, (t) => {
      const e = k.let('e', exp(sub(buf.load(at(scores, t)), rowMax)));
      buf.store(at(scores, t), e);
      k.set(total, add(total, e));
    });
    k.loop('t', start, end, (t) => buf.store(at(scores, t), div(buf.load(at(scores, t)), total)));
  };
  if (options.zeroWhenMasked) {
    k.if(eq(rowMax, f32(-Infinity)), () => {
      k.loop('t', start, end, (t) => buf.store(at(scores, t), f32(0)));
    }, body);
  } else {
    body();
  }
}

/** out[d] = Σ_t p[t] · V[vBase(t) + d] for d < size, t in [start, end) (t order per d). */
export function emitWeightedSum(
  k: KernelBuilder, probs: Loc, start: Expr, end: Expr, v: BufferRef, vRow: (t: Expr) => Expr,
  out: Loc, size: Expr,
): void {
  k.loop('d', 0, size, (d) => out.buf.store(at(out, d), f32(0)));
  k.loop('t', start, end, (t) => {
    const p = k.let('p', probs.buf.load(at(probs, t)));
    const row = k.let('v_row', vRow(t));
    k.loop('d', 0, size, (d) => out.buf.store(at(out, d), add(out.buf.load(at(out, d)), mul(p, v.load(add(row, d))))));
  });
}

/** select helper for f32 values. */
export const fselect = (cond: Expr, a: Expr | number, b: Expr | number): Expr =>
  select(cond, typeof a === 'number' ? f32(a) : a, typeof b === 'number' ? f32(b) : b);
