import { Tensor } from '../../tensor.js';
import type { EvalContext, InferContext, OpDef, OutputInfo } from '../types.js';
import { input, inputType, requireFloat } from './common.js';

/** Where each (batch, position, head) vector of head_size elements starts. */
export interface RotaryLayout {
  batch: number;
  seq: number;
  heads: number;
  headSize: number;
  batchStride: number;
  seqStride: number;
  headStride: number;
}

/**
 * Rotates the first `rotaryDim` elements of every head vector in place (out may alias a
 * copy of data), as ORT's RunRotaryEmbedding: non-interleaved pairs (i, i + dim/2),
 * interleaved pairs (2i, 2i+1); cos/sin rows of dim/2 come from `cacheRow(b, s)`.
 * Elements past rotaryDim are copied unchanged.
 */
export function applyRotary(
  data: ArrayLike<number>, out: Float64Array, layout: RotaryLayout, rotaryDim: number, interleaved: boolean,
  cos: ArrayLike<number>, sin: ArrayLike<number>, cacheRow: (b: number, s: number) => number,
): void {
  const half = rotaryDim / 2;
  for (let b = 0; b < layout.batch; b++) {
    for (let s = 0; s < layout.seq; s++) {
      const cacheOffset = cacheRow(b, s) * half;
      for (let n = 0; n < layout.heads; n++) {
        const base = b * layout.batchStride + s * layout.seqStride + n * layout.headStride;
        for (let i = 0; i < rotaryDim; i++) {
          let cacheIdx: number, partner: number, sign: number;
          if (interleaved) {
            cacheIdx = Math.floor(i / 2) % half;
            sign = i % 2 === 0 ? -1 : 1;
            partner = i % 2 === 0 ? i + 1 : i - 1;
          } else {
            cacheIdx = i % half;
            sign = i < half ? -1 : 1;
            partner = (i + half) % rotaryDim;
          }
          out[base + i] = data[base + i] * cos[cacheOffset + cacheIdx] + sign * data[base + partner] * sin[cacheOffset + cacheIdx];
        }
        for (let i = rotaryDim; i < layout.headSize; i++) out[base + i] = data[base + i];
      }
    }
  }
}

/**
 * RotaryEmbedding (com.microsoft; not the ai.onnx opset-23 op). Input (B,S,hidden) or
 * (B,N,S,H); position_ids (B,S), or one element p meaning positions p, p+1, …; cos/sin
 * caches (max_position, rotary_dim/2). rotary_embedding_dim 0 means the whole head, and
 * the head size then comes from the cache width.
 */
export const rotaryEmbedding: OpDef = {
  domain: 'com.microsoft',
  op: 'RotaryEmbedding',
  infer(ctx: InferContext): OutputInfo[] {
    const x = inputType(ctx, 0, 'input');
    requireFloat(ctx, x.dtype, 'input');
    return [{ type: { dtype: x.dtype, shape: x.shape } }];
  },
  evaluate(ctx: EvalContext): Tensor[] {
    const x = input(ctx, 0, 'input');
    const positionIds = ctx.inputs[1];
    const cos = input(ctx, 2, 'cos_cache');
    const sin = input(ctx, 3, 'sin_cache');
    requireFloat(ctx, x.dtype, 'input');
    const interleaved = ctx.attrs.int('interleaved', 0) === 1;
    let numHeads = ctx.attrs.int('num_heads', 0);
    const rotaryAttr = ctx.attrs.int('rotary_embedding_dim', 0);
    if (ctx.attrs.int('is_packed_batching', 0) !== 0) {
      throw ctx.attrs.error('is_packed_batching=1 is not supported (ONNX Runtime implements it on CUDA only)');
    }
    if (rotaryAttr > 0 && numHeads <= 0) throw ctx.attrs.error('num_heads must be given when rotary_embedding_dim is');
    if (x.rank !== 3 && x.rank !== 4) throw ctx.attrs.error(`input must have rank 3 or 4, got rank ${x.rank}`);
    if (!(cos.rank === 2 || (cos.rank === 3 && !positionIds)) || cos.shape.join() !== sin.shape.join()) {
      throw ctx.attrs.error(`cos_cache and sin_cache must have the same 2-D shape, got [${cos.shape.join(',')}] and [${sin.shape.join(',')}]`);
    }
    const transposed = x.rank === 4;
    const batch = x.shape[0];
    const seq = transposed ? x.shape[2] : x.shape[1];
    const hidden = transposed ? x.shape[1] * x.shape[3] : x.shape[2];
    const cacheWidth = cos.shape[cos.rank - 1];
    const headSize = transposed ? x.shape[3] : rotaryAttr === 0 && numHeads <= 0 ? cacheWidth * 2 : hidden / numHeads;
    if (!Number.isInteger(headSize) || headSize <= 0) throw ctx.attrs.error(`hidden size ${hidden} is not a multiple of num_heads ${numHeads}`);
    const rotaryDim = rotaryAttr > 0 ? rotaryAttr : headSize;
    if (rotaryDim > headSize) throw ctx.attrs.error(`rotary_embedding_dim ${rotaryDim} exceeds head size ${headSize}`);
    if (cacheWidth !== rotaryDim / 2) {
      throw ctx.attrs.error(`cos_cache width ${cacheWidth} should be rotary_embedding_dim/2 = ${rotaryDim / 2}`);
    }
    numHeads = transposed ? x.shape[1] : hidden / headSize;
    const layout: RotaryLayout = transposed
      ? { batch, seq, heads: numHeads, headSize, seqStride: headSize, headStride: seq * headSize, batchStride: numHeads * seq * headSize }
      : { batch, seq, heads: numHeads, headSize, headStride: headSize, seqStride: numHeads * headSize, batchStride: seq * numHeads * headSize };
    const maxPosition = cos.rank === 2 ? cos.shape[0] : Infinity;
    let cacheRow: (b: number, s: number) => number;
    if (!positionIds) {
      if (cos.rank !== 3 || cos.shape[0] !== batch || cos.shape[1] !== seq) {
        throw ctx.attrs.error(`without position_ids, cos_cache must have shape (${batch}, ${seq}, rotary_dim/2)`);
      }
      cacheRow = (b, s) => b * seq + s;
    } else {
      const pids = positionIds.numbers();
      if (positionIds.size === 1) cacheRow = (_b, s) => pids[0] + s;
      else if (positionIds.rank === 2 && positionIds.shape[0] === batch && positionIds.shape[1] === seq) cacheRow = (b, s) => pids[b * seq + s];
      else throw ctx.attrs.error(`position_ids must have shape (${batch}, ${seq}) or one element, got [${positionIds.shape.join(',')}]`);
    }
    const checkedRow = (b: number, s: number): number => {
      const p = cacheRow(b, s);
      if (p < 0 || p >= maxPosition) throw ctx.attrs.error(`position id ${p} is out of range of the cos/sin cache (${maxPosition} rows)`);
      return p;
    };
    const out = new Float64Array(x.size);
    applyRotary(x.numbers(), out, layout, rotaryDim, interleaved, cos.numbers(), sin.numbers(), checkedRow);
    return [Tensor.fromNumbers(x.dtype, x.shape, out)];
  },
};
