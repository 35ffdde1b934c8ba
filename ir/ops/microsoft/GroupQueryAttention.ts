import { dimDiv, dimMul } from '../../dims.js';
import type { Dim } from '../../graph.js';
import { Tensor, convertNumber } from '../../tensor.js';
import type { EvalContext, InferContext, OpDef, OutputInfo } from '../types.js';
import { dimOf, inputType, input, requireFloat, toBNSH, wantsOutput, checkAttentionBias, biasOffset, inferredOutputs, declaredOutputs } from './common.js';
import { applyRotary } from './RotaryEmbedding.js';

/**
 * GroupQueryAttention (com.microsoft), as ORT's CPU kernel. query (B,S,N*H) with key and
 * value (B,S,Nkv*H), or packed (B,S,(N+2Nkv)*H) when key/value are omitted. The KV cache
 * is (B,Nkv,P,H); seqlens_k[b] = (valid total length of batch b) - 1 and
 * total_sequence_length (scalar) give the layout: on the first prompt (S equals the
 * total) the past is ignored, otherwise the new tokens go after seqlens_k+1-S past
 * tokens. present is (B,Nkv,max(total,P),H), zero past the valid tokens. Attention is
 * causal, optionally windowed (local_window_size w >= 0: the last w keys up to the
 * query), softcapped, then biased (attention_bias), with rotary embedding of Q and K
 * (do_rotary, cos/sin caches, positions from seqlens_k) and smooth softmax / head sinks.
 * Explicit position_ids with do_rotary and the output_qk output are rejected.
 */
export const groupQueryAttention: OpDef = {
  domain: 'com.microsoft',
  op: 'GroupQueryAttention',
  infer(ctx: InferContext): OutputInfo[] {
    const q = inputType(ctx, 0, 'query');
    requireFloat(ctx, q.dtype, 'query');
    const numHeads = ctx.attrs.int('num_heads');
    const kvHeads = ctx.attrs.int('kv_num_heads');
    const batch = dimOf(ctx, q.shape, 0);
    const seq = dimOf(ctx, q.shape, 1);
    const hidden = dimOf(ctx, q.shape, 2);
    const packed = !ctx.inputs[1];
    const headSize = dimDiv(hidden, packed ? numHeads + 2 * kvHeads : numHeads);
    const total = ctx.shapeValue(6);
    const pastLen = ctx.inputs[3]?.shape?.[2];
    let presentLen: Dim = ctx.symbols.fresh();
    const totalDim = total?.length === 1 ? total[0] : undefined;
    if (totalDim !== undefined && (pastLen === undefined || (typeof totalDim === 'number' && typeof pastLen === 'number'))) {
      presentLen = typeof totalDim === 'number' && typeof pastLen === 'number' ? Math.max(totalDim, pastLen) : totalDim;
    } else if (totalDim !== undefined) {
      // max(total, past): the KV cache grows to the total unless a larger buffer is passed.
      presentLen = totalDim;
    }
    return inferredOutputs(ctx, [
      { type: { dtype: q.dtype, shape: [batch, seq, packed ? dimMul(numHeads, headSize) : hidden] } },
      { type: { dtype: q.dtype, shape: [batch, kvHeads, presentLen, headSize] } },
      { type: { dtype: q.dtype, shape: [batch, kvHeads, presentLen, headSize] } },
    ]);
  },
  evaluate(ctx: EvalContext): Tensor[] {
    const query = input(ctx, 0, 'query');
    const key = ctx.inputs[1];
    const value = ctx.inputs[2];
    const pastKey = ctx.inputs[3];
    const pastValue = ctx.inputs[4];
    const seqlensK = input(ctx, 5, 'seqlens_k');
    const totalSeqLen = input(ctx, 6, 'total_sequence_length');
    const cosCache = ctx.inputs[7];
    const sinCache = ctx.inputs[8];
    const positionIds = ctx.inputs[9];
    const attnBias = ctx.inputs[10];
    const headSink = ctx.inputs[11];
    const dtype = query.dtype;
    requireFloat(ctx, dtype, 'query');
    const numHeads = ctx.attrs.int('num_heads');
    const kvHeads = ctx.attrs.int('kv_num_heads');
    if (numHeads <= 0 || kvHeads <= 0 || numHeads % kvHeads !== 0) {
      throw ctx.attrs.error(`num_heads (${numHeads}) must be a positive multiple of kv_num_heads (${kvHeads})`);
    }
    if (wantsOutput(ctx, 3)) throw ctx.attrs.error('output 3 (output_qk) is not supported');
    const scaleAttr = ctx.attrs.float('scale', 0);
    const softcap = ctx.attrs.float('softcap', 0);
    const localWindow = ctx.attrs.int('local_window_size', -1);
    const doRotary = ctx.attrs.int('do_rotary', 0) === 1;
    const interleaved = ctx.attrs.int('rotary_interleaved', 0) === 1;
    const smooth = ctx.attrs.int('smooth_softmax', 0) === 1;
    if (query.rank !== 3) throw ctx.attrs.error(`query must be 3-D (batch, sequence, hidden), got rank ${query.rank}`);
    const [batch, seq, qWidth] = query.shape;
    const packed = !key;
    if (packed !== !value) throw ctx.attrs.error('key and value must be given together (or both omitted for packed QKV)');
    const headSize = qWidth / (packed ? numHeads + 2 * kvHeads : numHeads);
    if (!Number.isInteger(headSize)) throw ctx.attrs.error(`query hidden size ${qWidth} does not divide into heads`);
    if (key && value) {
      const kvWidth = kvHeads * headSize;
      for (const [t, name] of [[key, 'key'], [value, 'value']] as const) {
        if (t.rank !== 3 || t.shape[0] !== batch || t.shape[1] !== seq || t.shape[2] !== kvWidth) {
          throw ctx.attrs.error(`${name} must have shape (${batch}, ${seq}, ${kvWidth}), got [${t.shape.join(',')}]`);
        }
      }
    }
    if ((pastKey === undefined) !== (pastValue === undefined)) throw ctx.attrs.error('past_key and past_value must be given together');
    const pastBuffer = pastKey ? pastKey.shape[2] : 0;
    for (const t of [pastKey, pastValue]) {
      if (t && (t.rank !== 4 || t.shape[0] !== batch || t.shape[1] !== kvHeads || t.shape[3] !== headSize || t.shape[2] !== pastBuffer)) {
        throw ctx.attrs.error(`past_key/past_value must have shape (${batch}, ${kvHeads}, past_length, ${headSize}), got [${t.shape.join(',')}]`);
      }
    }
    if (seqlensK.size !== batch) throw ctx.attrs.error(`seqlens_k must have ${batch} elements, got ${seqlensK.size}`);
    if (totalSeqLen.size !== 1) throw ctx.attrs.error('total_sequence_length must be a scalar');
    const totalSequenceLength = totalSeqLen.get(0);
    const presentLen = Math.max(totalSequenceLength, pastBuffer);

    // ORT's prompt detection: the first prompt covers the whole total; later calls add one
    // token, or several (a "subsequent prompt") with batch size 1.
    const subsequentPrompt = seq > 1 && seq !== totalSequenceLength;
    if (subsequentPrompt && batch !== 1) throw ctx.attrs.error('batch size must be 1 when sequence_length > 1 and past context is given');
    const firstPrompt = !subsequentPrompt && seq === totalSequenceLength;

    // Split (and for packed QKV unpack) into BNSH.
    const qs = query.numbers();
    const perToken = packed ? (numHeads + 2 * kvHeads) * headSize : 0;
    const slice = (src: ArrayLike<number>, width: number, offset: number, size: number): Float64Array => {
      const out = new Float64Array(batch * seq * size);
      for (let r = 0; r < batch * seq; r++) for (let c = 0; c < size; c++) out[r * size + c] = src[r * width + offset + c];
      return out;
    };
    let q = toBNSH(packed ? slice(qs, perToken, 0, numHeads * headSize) : Float64Array.from(qs), batch, seq, numHeads, headSize);
    let k = toBNSH(packed ? slice(qs, perToken, numHeads * headSize, kvHeads * headSize) : Float64Array.from((key as Tensor).numbers()), batch, seq, kvHeads, headSize);
    const v = toBNSH(packed ? slice(qs, perToken, (numHeads + kvHeads) * headSize, kvHeads * headSize) : Float64Array.from((value as Tensor).numbers()), batch, seq, kvHeads, headSize);
    const seqlens = seqlensK.numbers();
    const totalOf = (b: number): number => seqlens[b] + 1;
    const pastOf = (b: number): number => (!pastKey || firstPrompt ? 0 : totalOf(b) - seq);
    for (let b = 0; b < batch; b++) {
      if (totalOf(b) > presentLen || totalOf(b) < 1 || pastOf(b) < 0 || pastOf(b) > pastBuffer) {
        throw ctx.attrs.error(`seqlens_k[${b}] = ${seqlens[b]} is inconsistent with total_sequence_length ${totalSequenceLength}, sequence length ${seq} and past length ${pastBuffer}`);
      }
    }

    if (doRotary) {
      if (!cosCache || !sinCache) throw ctx.attrs.error('do_rotary=1 needs cos_cache and sin_cache');
      if (cosCache.rank !== 2 || cosCache.shape.join() !== sinCache.shape.join()) throw ctx.attrs.error('cos_cache and sin_cache must have the same 2-D shape');
      const rotaryDim = cosCache.shape[1] * 2;
      if (rotaryDim > headSize) throw ctx.attrs.error(`rotary dim ${rotaryDim} (cos_cache width x 2) exceeds head size ${headSize}`);
      // ORT 1.30's CPU kernel does not apply explicit position_ids the way the spec reads
      // (its results disagree with per-token positions), so refuse rather than guess.
      if (positionIds) throw ctx.attrs.error('explicit position_ids with do_rotary=1 are not supported');
      const position = (b: number, s: number): number => {
        // ORT's GeneratePositionIds: padding positions (past the valid total) read row 1.
        let p = (firstPrompt ? 0 : totalOf(b) - seq) + s;
        if (p >= totalOf(b)) p = 1;
        if (p < 0 || p >= cosCache.shape[0]) throw ctx.attrs.error(`position ${p} is out of range of the cos/sin cache (${cosCache.shape[0]} rows)`);
        return p;
      };
      const rotate = (data: Float64Array, heads: number): Float64Array => {
        const out = new Float64Array(data.length);
        applyRotary(data, out, {
          batch, seq, heads, headSize, seqStride: headSize, headStride: seq * headSize, batchStride: heads * seq * headSize,
        }, rotaryDim, interleaved, cosCache.numbers(), sinCache.numbers(), position);
        // The rotated Q/K are stored in the input type before attention.
        for (let i = 0; i < out.length; i++) out[i] = convertNumber(dtype, out[i]);
        return out;
      };
      q = rotate(q, numHeads);
      k = rotate(k, kvHeads);
    }

    // present = past[0:past_b] ++ new tokens, zero elsewhere.
    const presentK = new Float64Array(batch * kvHeads * presentLen * headSize);
    const presentV = new Float64Array(presentK.length);
    const pk = pastKey?.numbers(), pv = pastValue?.numbers();
    for (let b = 0; b < batch; b++) {
      const past = pastOf(b);
      if (past + seq > presentLen) throw ctx.attrs.error(`past length ${past} plus ${seq} new tokens exceed the present length ${presentLen}`);
      for (let n = 0; n < kvHeads; n++) {
        const bn = b * kvHeads + n;
        const dst = bn * presentLen * headSize;
        if (pk && pv) {
          const src = bn * pastBuffer * headSize;
          for (let i = 0; i < past * headSize; i++) { presentK[dst + i] = pk[src + i]; presentV[dst + i] = pv[src + i]; }
        }
        const srcNew = bn * seq * headSize;
        for (let i = 0; i < seq * headSize; i++) {
          presentK[dst + past * headSize + i] = k[srcNew + i];
          presentV[dst + past * headSize + i] = v[srcNew + i];
        }
      }
    }

    if (attnBias) checkAttentionBias(ctx, attnBias, batch, numHeads, seq, attnBias.shape[3]);
    const biasData = attnBias?.numbers();
    const sinks = headSink?.numbers();
    if (headSink && headSink.size !== numHeads) throw ctx.attrs.error(`head_sink must have ${numHeads} elements`);
    const scale = scaleAttr === 0 ? 1 / Math.sqrt(headSize) : scaleAttr;
    const group = numHeads / kvHeads;
    const out = new Float64Array(batch * seq * numHeads * headSize);
    const scores = new Float64Array(presentLen);
    for (let b = 0; b < batch; b++) {
      const total = totalOf(b);
      const past = pastOf(b);
      for (let n = 0; n < numHeads; n++) {
        const kvBase = (b * kvHeads + Math.floor(n / group)) * presentLen * headSize;
        const bOff = attnBias ? biasOffset(attnBias.shape, b, n) : 0;
        for (let s = 0; s < seq; s++) {
          const qOff = ((b * numHeads + n) * seq + s) * headSize;
          scores.fill(0);
          for (let t = 0; t < total; t++) {
            let dot = 0;
            for (let h = 0; h < headSize; h++) dot += q[qOff + h] * presentK[kvBase + t * headSize + h];
            scores[t] = Math.fround(scale * dot);
          }
          const causalLen = Math.min(past + s + 1, total);
          // A window of local_window_size keys ending at the query (ORT 1.30 semantics).
          const windowed = localWindow >= 0 && causalLen > localWindow;
          const start = windowed ? causalLen - localWindow : 0;
          const len = causalLen - start;
          if (softcap > 0) for (let t = start; t < causalLen; t++) scores[t] = softcap * Math.tanh(scores[t] / softcap);
          if (biasData && attnBias) {
            const rowOff = bOff + s * attnBias.shape[3];
            for (let t = start; t < causalLen; t++) scores[t] += biasData[rowOff + t];
          }
          if (smooth || sinks) smoothSoftmax(scores, start, len, sinks ? sinks[n] : 0);
          else softmaxRow(scores, start, len);
          const oOff = ((b * seq + s) * numHeads + n) * headSize;
          for (let t = start; t < causalLen; t++) {
            const p = scores[t];
            for (let h = 0; h < headSize; h++) out[oOff + h] += p * presentV[kvBase + t * headSize + h];
          }
        }
      }
    }
    const outWidth = numHeads * headSize;
    return declaredOutputs(ctx, [
      Tensor.fromNumbers(dtype, [batch, seq, outWidth], out),
      Tensor.fromNumbers(dtype, [batch, kvHeads, presentLen, headSize], presentK),
      Tensor.fromNumbers(dtype, [batch, kvHeads, presentLen, headSize], presentV),
    ]);
  },
};

function softmaxRow(row: Float64Array, start: number, len: number): void {
  let max = -Infinity;
  for (let i = start; i < start + len; i++) max = Math.max(max, row[i]);
  let sum = 0;
  for (let i = start; i < start + len; i++) { row[i] = Math.exp(row[i] - max); sum += row[i]; }
  for (let i = start; i < start + len; i++) row[i] /= sum;
}

/** Softmax with an extra logit `sink` in the denominator (smooth softmax uses 0). */
function smoothSoftmax(row: Float64Array, start: number, len: number, sink: number): void {
  let max = sink;
  for (let i = start; i < start + len; i++) max = Math.max(max, row[i]);
  let sum = Math.exp(sink - max);
  for (let i = start; i < start + len; i++) { row[i] = Math.exp(row[i] - max); sum += row[i]; }
  for (let i = start; i < start + len; i++) row[i] /= sum;
}
