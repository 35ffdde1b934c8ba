import { dimAdd, dimDiv, dimMul } from '../../dims.js';
import type { Dim } from '../../graph.js';
import { Tensor, convertNumber } from '../../tensor.js';
import type { EvalContext, InferContext, OpDef, OutputInfo } from '../types.js';
import { checkAttentionBias, dimOf, input, inputType, requireFloat, toBNSH, wantsOutput, inferredOutputs, declaredOutputs } from './common.js';
import { attentionCore, concatPast, prepareMask } from './attention-core.js';

/**
 * MultiHeadAttention (com.microsoft), as ORT's CPU kernel. query (B,S,D); key/value
 * (B,L,D) / (B,L,Dv), or already projected per head as (B,N,L,H) (cross attention,
 * no past then); optional bias (D+D+Dv) added to Q, K, V (only Q for 4-D key/value);
 * key_padding_mask (B), (B,T) or (B,S,T) int32; attention_bias (B|1, N|1, S, T);
 * past_key/past_value (B,N,P,H) prepended; outputs output, present_key, present_value.
 * Packed QKV/KV layouts are rejected, as ORT's CPU kernel does.
 */
export const multiHeadAttention: OpDef = {
  domain: 'com.microsoft',
  op: 'MultiHeadAttention',
  infer(ctx: InferContext): OutputInfo[] {
    const q = inputType(ctx, 0, 'query');
    requireFloat(ctx, q.dtype, 'query');
    const numHeads = ctx.attrs.int('num_heads');
    const key = ctx.inputs[1];
    const value = ctx.inputs[2];
    const batch = dimOf(ctx, q.shape, 0);
    const seq = dimOf(ctx, q.shape, 1);
    const hidden = dimOf(ctx, q.shape, 2);
    let kvLen: Dim = ctx.symbols.fresh();
    let vHidden: Dim = hidden;
    if (key?.shape) kvLen = key.shape.length === 4 ? key.shape[2] : key.shape[1];
    if (value?.shape) vHidden = value.shape.length === 4 ? dimMul(value.shape[1], value.shape[3]) : value.shape[2];
    const pastKey = ctx.inputs[6];
    const total = pastKey?.shape ? dimAdd(pastKey.shape[2], kvLen) : kvLen;
    return inferredOutputs(ctx, [
      { type: { dtype: q.dtype, shape: [batch, seq, vHidden] } },
      { type: { dtype: q.dtype, shape: [batch, numHeads, total, dimDiv(hidden, numHeads)] } },
      { type: { dtype: q.dtype, shape: [batch, numHeads, total, dimDiv(vHidden, numHeads)] } },
    ]);
  },
  evaluate(ctx: EvalContext): Tensor[] {
    const query = input(ctx, 0, 'query');
    const key = ctx.inputs[1];
    const value = ctx.inputs[2];
    const bias = ctx.inputs[3];
    const keyPaddingMask = ctx.inputs[4];
    const attnBias = ctx.inputs[5];
    const pastKey = ctx.inputs[6];
    const pastValue = ctx.inputs[7];
    requireFloat(ctx, query.dtype, 'query');
    const numHeads = ctx.attrs.int('num_heads');
    if (numHeads <= 0) throw ctx.attrs.error(`num_heads must be positive, got ${numHeads}`);
    if (wantsOutput(ctx, 3)) throw ctx.attrs.error('output 3 (qk) is not supported');
    if (ctx.inputs[9]) throw ctx.attrs.error('cache_indirection (beam search) is not supported');
    if (query.rank !== 3) throw ctx.attrs.error(`query must be 3-D (batch, sequence, hidden); packed QKV is not supported, got rank ${query.rank}`);
    if (!key || !value) throw ctx.attrs.error('key and value are required (packed QKV in query is not supported)');
    if (key.rank !== value.rank || (key.rank !== 3 && key.rank !== 4)) {
      throw ctx.attrs.error(`key and value must both be 3-D (B,L,D) or 4-D (B,N,L,H); packed KV is not supported, got ranks ${key.rank} and ${value.rank}`);
    }
    const [batch, seq, hidden] = query.shape;
    if (hidden % numHeads !== 0) throw ctx.attrs.error(`query hidden size ${hidden} is not a multiple of num_heads ${numHeads}`);
    const headSize = hidden / numHeads;
    const kvInBNSH = key.rank === 4;
    const kvLen = kvInBNSH ? key.shape[2] : key.shape[1];
    const vHidden = kvInBNSH ? value.shape[1] * value.shape[3] : value.shape[2];
    const vHeadSize = vHidden / numHeads;
    const keyOk = kvInBNSH
      ? key.shape[0] === batch && key.shape[1] === numHeads && key.shape[3] === headSize
      : key.shape[0] === batch && key.shape[2] === hidden;
    const valueOk = kvInBNSH
      ? value.shape[0] === batch && value.shape[1] === numHeads && value.shape[2] === kvLen
      : value.shape[0] === batch && value.shape[1] === kvLen && vHidden % numHeads === 0;
    if (!keyOk || !valueOk) {
      throw ctx.attrs.error(`key [${key.shape.join(',')}] / value [${value.shape.join(',')}] do not match query [${query.shape.join(',')}] with ${numHeads} heads`);
    }
    if (bias && bias.size !== 2 * hidden + vHidden) throw ctx.attrs.error(`bias must have ${2 * hidden + vHidden} elements, got ${bias.size}`);
    if ((pastKey === undefined) !== (pastValue === undefined)) throw ctx.attrs.error('past_key and past_value must be given together');
    if (kvInBNSH && pastKey) throw ctx.attrs.error('past_key/past_value cannot be combined with 4-D key/value');

    const bs = bias?.numbers();
    const withBias = (t: Tensor, offset: number, width: number): Float64Array => {
      const src = t.numbers();
      const out = new Float64Array(t.size);
      for (let i = 0; i < t.size; i++) out[i] = bs ? convertNumber(query.dtype, src[i] + bs[offset + (i % width)]) : src[i];
      return out;
    };
    const q = toBNSH(withBias(query, 0, hidden), batch, seq, numHeads, headSize);
    let k: Float64Array, v: Float64Array;
    if (kvInBNSH) {
      k = Float64Array.from(key.numbers());
      v = Float64Array.from(value.numbers());
    } else {
      k = toBNSH(withBias(key, hidden, hidden), batch, kvLen, numHeads, headSize);
      v = toBNSH(withBias(value, 2 * hidden, vHidden), batch, kvLen, numHeads, vHeadSize);
    }
    let pastLen = 0;
    if (pastKey && pastValue) {
      const okShape = (t: Tensor, h: number): boolean =>
        t.rank === 4 && t.shape[0] === batch && t.shape[1] === numHeads && t.shape[3] === h;
      if (!okShape(pastKey, headSize) || !okShape(pastValue, vHeadSize) || pastKey.shape[2] !== pastValue.shape[2]) {
        throw ctx.attrs.error(`past_key/past_value must have shape (${batch}, ${numHeads}, past_length, head_size), got [${pastKey.shape.join(',')}] and [${pastValue.shape.join(',')}]`);
      }
      pastLen = pastKey.shape[2];
      k = concatPast(pastKey.numbers(), k, batch * numHeads, pastLen, kvLen, headSize);
      v = concatPast(pastValue.numbers(), v, batch * numHeads, pastLen, kvLen, vHeadSize);
    }
    const total = pastLen + kvLen;
    if (attnBias) checkAttentionBias(ctx, attnBias, batch, numHeads, seq, total);
    const causal = ctx.attrs.int('unidirectional', 0) === 1 && seq > 1;
    const filter = ctx.attrs.float('mask_filter_value', -10000);
    const mask = prepareMask(ctx, keyPaddingMask, causal, batch, seq, pastLen, total, filter);
    const scaleAttr = ctx.attrs.float('scale', 0);
    const out = attentionCore({
      q, k, v, batch, heads: numHeads, seq, total, headSize, vHeadSize,
      scale: scaleAttr === 0 ? 1 / Math.sqrt(headSize) : scaleAttr, mask, bias: attnBias,
    });
    return declaredOutputs(ctx, [
      Tensor.fromNumbers(query.dtype, [batch, seq, vHidden], out),
      Tensor.fromNumbers(query.dtype, [batch, numHeads, total, headSize], k),
      Tensor.fromNumbers(query.dtype, [batch, numHeads, total, vHeadSize], v),
    ]);
  },
};
