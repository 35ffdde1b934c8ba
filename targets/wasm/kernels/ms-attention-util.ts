/**
 * The unfused attention of ONNX Runtime's AttentionCPUBase (ir/ops/microsoft/attention-core.ts)
 * shared by the com.microsoft Attention and MultiHeadAttention kernels: the KV-cache concat,
 * the mask from mask_index / key_padding_mask plus causality, and scores → softmax → P·V.
 */
import type { Expr } from '../../../codegen/kernel.js';
import { type BufferRef, type KernelBuilder, add, and, f32, ge, gt, i32, lt, max, mul, ne, or, sub } from '../../../codegen/builder.js';
import { type Loc, at, emitDot, emitSoftmax, emitWeightedSum, fselect } from './attention-util.js';

const LOWEST_F32 = -3.4028234663852886e38;

/**
 * cache[b, n, t, :] = t < past ? past[b, n, t, :] : fresh(b, n, t - past, d) for t < total,
 * laid out (B, N, total, size).
 */
export function emitCacheConcat(
  k: KernelBuilder, dst: Loc, past: { buf: BufferRef; base: Expr } | undefined, pastLen: Expr,
  fresh: (b: Expr, n: Expr, j: Expr, d: Expr) => Expr,
  batch: Expr, heads: Expr, total: Expr, size: Expr,
): void {
  k.loop('b', 0, batch, (b) => k.loop('n', 0, heads, (n) => {
    const bn = k.let('bn', add(mul(b, heads), n));
    k.loop('t', 0, total, (t) => {
      const row = k.let('row', at(dst, mul(add(mul(bn, total), t), size)));
      const copyFresh = (): void => {
        const j = k.let('j', sub(t, pastLen));
        k.loop('d', 0, size, (d) => dst.buf.store(add(row, d), fresh(b, n, j, d)));
      };
      if (past) {
        k.if(lt(t, pastLen), () => {
          const src = k.let('src', add(past.base, mul(add(mul(bn, pastLen), t), size)));
          k.loop('d', 0, size, (d) => dst.buf.store(add(row, d), past.buf.load(add(src, d))));
        }, copyFresh);
      } else {
        copyFresh();
      }
    });
  }), { parallel: true });
}

/** mask_index forms of ORT's PrepareMask, by rank (static) — see attention-core.ts. */
export interface MsMask {
  index?: BufferRef;
  rank: number;
  /** 1-D mask_index with 2B entries (end then start positions): runtime 0/1. */
  hasStart: Expr;
  filter: number;
  unidirectional: boolean;
}

export interface MsCore {
  batch: Expr; heads: Expr; seq: Expr; total: Expr; pastLen: Expr; headSize: Expr; vHeadSize: Expr;
  scale: Expr;
  /** Query element (b, n, s, d). */
  q: (b: Expr, n: Expr, s: Expr, d: Expr) => Expr;
  keys: Loc;
  values: Loc;
  mask: MsMask;
  /** attention_bias (B|1, N|1, S, T) with batch/head strides (0 when broadcast). */
  bias?: { buf: BufferRef; batchStride: Expr; headStride: Expr };
  /** Output row start of (b, n, s); vHeadSize contiguous elements. */
  out: (b: Expr, n: Expr, s: Expr) => Loc;
  scores: Loc;
}

/** scores = scale·QKᵀ + (bias + mask), softmax over all keys, output = P·V. */
export function emitMsCore(k: KernelBuilder, c: MsCore): void {
  const { mask } = c;
  const hasMask = !!mask.index || mask.unidirectional;
  const causal = mask.unidirectional ? k.let('causal', gt(c.seq, 1)) : undefined;
  k.loop('b', 0, c.batch, (b) => k.loop('n', 0, c.heads, (n) => {
    const cacheRow = k.let('cache_row', mul(add(mul(b, c.heads), n), c.total));
    k.loop('s', 0, c.seq, (s) => {
      const rowMax = k.mut('row_max', f32(-Infinity));
      k.loop('t', 0, c.total, (t) => {
        const dot = emitDot(k, (d) => c.q(b, n, s, d), c.keys.buf, at(c.keys, mul(add(cacheRow, t), c.headSize)), c.headSize);
        let addend: Expr | undefined;
        if (c.bias) {
          addend = c.bias.buf.load(add(add(add(mul(b, c.bias.batchStride), mul(n, c.bias.headStride)), mul(s, c.total)), t));
        }
        if (hasMask) {
          let value: Expr = f32(0);
          const m = mask.index;
          if (m && mask.rank === 3) value = fselect(gt(m.load(add(mul(add(mul(b, c.seq), s), c.total), t)), 0), 0, mask.filter);
          if (m && mask.rank === 2) value = fselect(gt(m.load(add(mul(b, c.total), t)), 0), 0, mask.filter);
          if (m && mask.rank === 1) {
            const end = m.load(b);
            // The start entries exist only with 2B entries; otherwise re-read entry b (unused).
            const start = m.load(add(b, mul(c.batch, mask.hasStart)));
            const masked = or(ge(t, end), and(ne(mask.hasStart, 0), lt(t, start)));
            value = fselect(masked, mask.filter, 0);
          }
          if (causal) value = fselect(and(causal, gt(t, add(c.pastLen, s))), LOWEST_F32, value);
          const maskValue = k.let('mask_value', value);
          addend = addend ? add(addend, maskValue) : maskValue;
        }
        const score = k.let('score', addend ? add(mul(c.scale, dot), addend) : mul(c.scale, dot));
        c.scores.buf.store(at(c.scores, t), score);
        k.set(rowMax, max(rowMax, score));
      });
      emitSoftmax(k, c.scores, i32(0), c.total, { rowMax });
      emitWeightedSum(k, c.scores, i32(0), c.total, c.values.buf,
        (t) => at(c.values, mul(add(cacheRow, t), c.vHeadSize)), c.out(b, n, s), c.vHeadSize);
    });
  }), { parallel: true });
}
