import type { Tensor } from '../../tensor.js';
import type { EvalContext } from '../types.js';
import { biasOffset, softmaxInPlace } from './common.js';

/**
 * The unfused attention of ORT's AttentionCPUBase, shared by Attention and
 * MultiHeadAttention: scores = scale * Q K^T + attention_bias + mask (see prepareMask),
 * softmax over all T keys, then probabilities x V.
 */
export interface AttentionCoreArgs {
  /** (B, N, S, H) */
  q: Float64Array;
  /** (B, N, T, H), past already concatenated. */
  k: Float64Array;
  /** (B, N, T, Hv) */
  v: Float64Array;
  batch: number;
  heads: number;
  seq: number;
  total: number;
  headSize: number;
  vHeadSize: number;
  scale: number;
  /** (B, S, T) additive mask from prepareMask. */
  mask?: Float64Array;
  /** (B or 1, N or 1, S, T) */
  bias?: Tensor;
}

/** Returns the output in (B, S, N * Hv) layout. */
export function attentionCore(a: AttentionCoreArgs): Float64Array {
  const { batch, heads, seq, total, headSize, vHeadSize } = a;
  const out = new Float64Array(batch * seq * heads * vHeadSize);
  const scores = new Float64Array(total);
  const biasData = a.bias?.numbers();
  for (let b = 0; b < batch; b++) {
    for (let n = 0; n < heads; n++) {
      const bn = b * heads + n;
      const bOff = a.bias ? biasOffset(a.bias.shape, b, n) : 0;
      for (let s = 0; s < seq; s++) {
        const qOff = (bn * seq + s) * headSize;
        for (let t = 0; t < total; t++) {
          const kOff = (bn * total + t) * headSize;
          let dot = 0;
          for (let h = 0; h < headSize; h++) dot += a.q[qOff + h] * a.k[kOff + h];
          // ORT seeds the GEMM output with bias + mask (in f32), then adds scale * QK^T.
          let add = 0;
          if (biasData) add += biasData[bOff + s * total + t];
          if (a.mask) add = Math.fround(add + a.mask[(b * seq + s) * total + t]);
          scores[t] = Math.fround(a.scale * dot + add);
        }
        softmaxInPlace(scores, 0, total);
        const oOff = ((b * seq + s) * heads + n) * vHeadSize;
        for (let t = 0; t < total; t++) {
          const p = scores[t];
          const vOff = (bn * total + t) * vHeadSize;
          for (let h = 0; h < vHeadSize; h++) out[oOff + h] += p * a.v[vOff + h];
        }
      }
    }
  }
  return out;
}

/**
 * ORT's PrepareMask: builds the (B, S, T) additive mask from mask_index and the causal
 * flag. mask_index may be 1-D (B): valid lengths (keys at or after are masked); 1-D (2B):
 * end then start positions; 2-D (B, T): 1 keep, 0 mask; 3-D (B, S, T) likewise. Masked
 * keys get mask_filter_value, future keys (causal) the lowest f32: checked against ORT
 * 1.30, a row whose every visible key is padding then attends to the padded keys only.
 * Returns undefined when there is neither a mask nor causality.
 */
export function prepareMask(
  ctx: EvalContext, maskIndex: Tensor | undefined, causal: boolean,
  batch: number, seq: number, past: number, total: number, filter: number,
): Float64Array | undefined {
  if (!maskIndex && !causal) return undefined;
  const mask = new Float64Array(batch * seq * total);
  const m = maskIndex?.numbers();
  const dims = maskIndex?.shape ?? [];
  if (maskIndex && maskIndex.dtype !== 'i32') throw ctx.attrs.error(`mask_index must be int32, got ${maskIndex.dtype}`);
  if (m && dims.length === 4) throw ctx.attrs.error('4-D mask_index is not supported (ONNX Runtime CPU does not support it either)');
  if (m && dims.length === 3) {
    if (dims[0] !== batch || dims[1] !== seq || dims[2] !== total) {
      throw ctx.attrs.error(`3-D mask must have shape (${batch}, ${seq}, ${total}), got [${dims.join(',')}]`);
    }
    for (let i = 0; i < mask.length; i++) mask[i] = m[i] > 0 ? 0 : filter;
  } else if (m) {
    const raw = dims.length === 2;
    if (raw && (dims[0] !== batch || dims[1] !== total)) {
      throw ctx.attrs.error(`2-D mask must have shape (${batch}, ${total}), got [${dims.join(',')}]`);
    }
    if (!raw && !(dims.length === 1 && (dims[0] === batch || dims[0] === 2 * batch))) {
      throw ctx.attrs.error(`mask_index must have shape (${batch}), (${2 * batch}), (${batch}, ${total}) or (${batch}, ${seq}, ${total}), got [${dims.join(',')}]`);
    }
    const hasStart = !raw && dims[0] === 2 * batch;
    for (let b = 0; b < batch; b++) {
      const row = new Float64Array(total);
      if (raw) {
        for (let t = 0; t < total; t++) row[t] = m[b * total + t] > 0 ? 0 : filter;
      } else {
        for (let t = Math.max(0, m[b]); t < total; t++) row[t] = filter;
        if (hasStart) for (let t = 0; t < Math.min(m[b + batch], total); t++) row[t] = filter;
      }
      for (let s = 0; s < seq; s++) mask.set(row, (b * seq + s) * total);
    }
  }
  if (causal) {
    for (let b = 0; b < batch; b++) {
      for (let s = 0; s < seq; s++) {
        for (let t = past + s + 1; t < total; t++) mask[(b * seq + s) * total + t] = LOWEST_F32;
      }
    }
  }
  return mask;
}

const LOWEST_F32 = -3.4028234663852886e38;

/** Concatenates past (B, N, P, H) and new (B, N, L, H) along the sequence axis. */
export function concatPast(
  past: ArrayLike<number> | undefined, fresh: Float64Array, bn: number, pastLen: number, newLen: number, headSize: number,
): Float64Array {
  const total = pastLen + newLen;
  const out = new Float64Array(bn * total * headSize);
  for (let i = 0; i < bn; i++) {
    for (let j = 0; j < pastLen * headSize; j++) out[i * total * headSize + j] = (past as ArrayLike<number>)[i * pastLen * headSize + j];
    for (let j = 0; j < newLen * headSize; j++) out[(i * total + pastLen) * headSize + j] = fresh[i * newLen * headSize + j];
  }
  return out;
}
