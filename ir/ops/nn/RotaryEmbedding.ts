import { Tensor } from '../../tensor.js';
import type { OpDef } from '../types.js';
import { requireFloat, requireInput } from './common.js';

/**
 * Rotary position embedding (opset 23). X is [batch, heads, seq, head_size] or
 * [batch, seq, heads*head_size] (then num_heads is required). The first
 * rotary_embedding_dim (default: all) elements of each head are rotated in pairs:
 * halves (x[i], x[i+half]) or, when interleaved, neighbours (x[2i], x[2i+1]).
 * Caches are [max_position, dim/2] indexed by position_ids, or [batch, seq, dim/2] without them.
 */
export const RotaryEmbedding: OpDef = {
  domain: '',
  op: 'RotaryEmbedding',
  infer(ctx) {
    const x = requireInput(ctx, 0, 'X');
    requireInput(ctx, 1, 'cos_cache');
    requireInput(ctx, 2, 'sin_cache');
    requireFloat(ctx.attrs, x.dtype, 'X');
    if (x.shape && x.shape.length !== 3 && x.shape.length !== 4) {
      throw ctx.attrs.error(`X must be 3-D or 4-D, got rank ${x.shape.length}`);
    }
    if (x.shape?.length === 3 && !ctx.attrs.int('num_heads', 0)) {
      throw ctx.attrs.error('num_heads is required for a 3-D input');
    }
    return [{ type: { dtype: x.dtype, shape: x.shape ? [...x.shape] : undefined } }];
  },
  evaluate(ctx) {
    const [x, cosCache, sinCache, positionIds] = ctx.inputs;
    if (!x || !cosCache || !sinCache) throw ctx.attrs.error('X, cos_cache and sin_cache are required');
    const interleaved = ctx.attrs.int('interleaved', 0) !== 0;
    let batch: number, heads: number, seq: number, headSize: number;
    let offsetOf: (b: number, s: number, h: number) => number;
    if (x.rank === 4) {
      [batch, heads, seq, headSize] = x.shape;
      offsetOf = (b, s, h) => ((b * heads + h) * seq + s) * headSize;
    } else if (x.rank === 3) {
      heads = ctx.attrs.int('num_heads', 0);
      if (heads <= 0) throw ctx.attrs.error('num_heads is required for a 3-D input');
      [batch, seq] = x.shape;
      const hidden = x.shape[2];
      if (hidden % heads !== 0) throw ctx.attrs.error(`hidden size ${hidden} is not divisible by num_heads ${heads}`);
      headSize = hidden / heads;
      offsetOf = (b, s, h) => (b * seq + s) * hidden + h * headSize;
    } else {
      throw ctx.attrs.error(`X must be 3-D or 4-D, got rank ${x.rank}`);
    }
    const rotaryDim = ctx.attrs.int('rotary_embedding_dim', 0) || headSize;
    if (rotaryDim > headSize || rotaryDim % 2 !== 0) {
      throw ctx.attrs.error(`rotary_embedding_dim ${rotaryDim} must be even and at most head size ${headSize}`);
    }
    const half = rotaryDim / 2;
    if (cosCache.shape[cosCache.rank - 1] !== half || sinCache.shape[sinCache.rank - 1] !== half) {
      throw ctx.attrs.error(`cos/sin caches must have last dim ${half} (rotary_embedding_dim / 2)`);
    }
    // Row of the caches for (batch, position in sequence).
    let cacheRow: (b: number, s: number) => number;
    if (positionIds) {
      if (positionIds.rank !== 2 || positionIds.shape[0] !== batch || positionIds.shape[1] !== seq) {
        throw ctx.attrs.error(`position_ids must be [${batch},${seq}], got [${positionIds.shape.join(',')}]`);
      }
      const maxPos = cosCache.shape[0];
      const ids = positionIds.numbers();
      cacheRow = (b, s) => {
        const p = ids[b * seq + s];
        if (p < 0 || p >= maxPos) throw ctx.attrs.error(`position id ${p} is outside the cache of ${maxPos} positions`);
        return p;
      };
    } else {
      if (cosCache.rank !== 3 || cosCache.shape[0] !== batch || cosCache.shape[1] !== seq) {
        throw ctx.attrs.error(`without position_ids the caches must be [${batch},${seq},${half}]`);
      }
      cacheRow = (b, s) => b * seq + s;
    }
    const xv = x.numbers();
    const cv = cosCache.numbers();
    const sv = sinCache.numbers();
    const out = new Float64Array(xv);
    for (let b = 0; b < batch; b++) {
      for (let s = 0; s < seq; s++) {
        const row = cacheRow(b, s) * half;
        for (let h = 0; h < heads; h++) {
          const base = offsetOf(b, s, h);
          for (let i = 0; i < half; i++) {
            const [i1, i2] = interleaved ? [base + 2 * i, base + 2 * i + 1] : [base + i, base + i + half];
            const cos = cv[row + i];
            const sin = sv[row + i];
            const x1 = xv[i1];
            const x2 = xv[i2];
            out[i1] = cos * x1 - sin * x2;
            out[i2] = sin * x1 + cos * x2;
          }
        }
      }
    }
    return [Tensor.fromNumbers(x.dtype, x.shape, out)];
  },
};
