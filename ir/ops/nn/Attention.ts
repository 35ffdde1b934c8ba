import type { Dim, TensorType } from '../../graph.js';
import { dimAdd, dimDiv, dimMul } from '../../dims.js';
import { Tensor } from '../../tensor.js';
import type { Attrs } from '../attrs.js';
import type { OpDef, OutputInfo } from '../types.js';
import { broadcastShapes } from '../util/shape.js';
import { dtypeAttr, requireFloat, requireInput } from './common.js';

/**
 * Scaled dot-product attention, ai.onnx opsets 23 and 24.
 *
 * Inputs: Q, K, V, attn_mask?, past_key?, past_value?, nonpad_kv_seqlen? (24).
 * Outputs: Y, present_key?, present_value?, qk_matmul_output?.
 * Q/K/V are 4-D [batch, heads, seq, head_size] or 3-D [batch, seq, heads*head_size]
 * (q_num_heads/kv_num_heads then say how to split). The past cache is always 4-D.
 *
 * Per (b, h, i, j) the oracle computes, in f64:
 *   s = scale * Q·K                 (scale defaults to 1/sqrt(head_size))
 *   s = softcap * tanh(s / softcap)  when softcap > 0, before any masking so -inf stays -inf
 *   s += bias                        mask (bool: false → -inf; float: added; a mask shorter
 *                                    than the total sequence is padded with -inf), causal
 *                                    (j <= i + offset), and nonpad_kv_seqlen padding
 *   p = softmax_j(s);  Y = Σ_j p V
 * A fully masked row (all scores -inf) gets zero probabilities, so its Y row is 0.
 */

interface Layout {
  batch: number;
  qHeads: number;
  kvHeads: number;
  qLen: number;
  kvLen: number;
  headSize: number;
  vHeadSize: number;
  /** Element offset of Q/K/V row (b, head, position). */
  qAt(b: number, h: number, i: number): number;
  kAt(b: number, h: number, j: number): number;
  vAt(b: number, h: number, j: number): number;
}

function layoutOf(attrs: Attrs, q: Tensor, k: Tensor, v: Tensor): Layout {
  if (q.rank !== k.rank || q.rank !== v.rank) {
    throw attrs.error(`Q, K and V must have the same rank, got ${q.rank}, ${k.rank} and ${v.rank}`);
  }
  if (q.rank === 4) {
    const [batch, qHeads, qLen, headSize] = q.shape;
    const [kb, kvHeads, kvLen, kHead] = k.shape;
    const [vb, vHeads, vLen, vHeadSize] = v.shape;
    if (kb !== batch || vb !== batch) throw attrs.error('Q, K and V batch sizes differ');
    if (kHead !== headSize) throw attrs.error(`K head size ${kHead} differs from Q head size ${headSize}`);
    if (vHeads !== kvHeads || vLen !== kvLen) throw attrs.error('K and V must have the same heads and sequence length');
    return {
      batch, qHeads, kvHeads, qLen, kvLen, headSize, vHeadSize,
      qAt: (b, h, i) => ((b * qHeads + h) * qLen + i) * headSize,
      kAt: (b, h, j) => ((b * kvHeads + h) * kvLen + j) * headSize,
      vAt: (b, h, j) => ((b * kvHeads + h) * kvLen + j) * vHeadSize,
    };
  }
  if (q.rank === 3) {
    const qHeads = attrs.optionalInt('q_num_heads');
    const kvHeads = attrs.optionalInt('kv_num_heads');
    if (!qHeads || !kvHeads) throw attrs.error('3-D inputs need the q_num_heads and kv_num_heads attributes');
    const [batch, qLen, qHidden] = q.shape;
    const [kb, kvLen, kHidden] = k.shape;
    const [vb, vLen, vHidden] = v.shape;
    if (kb !== batch || vb !== batch) throw attrs.error('Q, K and V batch sizes differ');
    if (vLen !== kvLen) throw attrs.error('K and V must have the same sequence length');
    if (qHidden % qHeads || kHidden % kvHeads || vHidden % kvHeads) {
      throw attrs.error('hidden sizes of Q, K, V must be divisible by their number of heads');
    }
    const headSize = qHidden / qHeads;
    const vHeadSize = vHidden / kvHeads;
    if (kHidden / kvHeads !== headSize) throw attrs.error('K head size differs from Q head size');
    return {
      batch, qHeads, kvHeads, qLen, kvLen, headSize, vHeadSize,
      qAt: (b, h, i) => (b * qLen + i) * qHidden + h * headSize,
      kAt: (b, h, j) => (b * kvLen + j) * kHidden + h * headSize,
      vAt: (b, h, j) => (b * kvLen + j) * vHidden + h * vHeadSize,
    };
  }
  throw attrs.error(`Q, K and V must be 3-D or 4-D, got rank ${q.rank}`);
}

/** Concatenates the past cache (4-D) and the new K or V along the sequence axis. */
function presentCache(
  attrs: Attrs, what: string, past: Tensor | undefined, current: Tensor, layout: Layout,
  rowAt: (b: number, h: number, j: number) => number, rowSize: number,
): Tensor {
  const { batch, kvHeads, kvLen } = layout;
  const pastLen = past ? past.shape[2] : 0;
  if (past && (past.rank !== 4 || past.shape[0] !== batch || past.shape[1] !== kvHeads || past.shape[3] !== rowSize)) {
    throw attrs.error(`${what} must be [${batch},${kvHeads},past,${rowSize}], got [${past.shape.join(',')}]`);
  }
  const total = pastLen + kvLen;
  const values = new Float64Array(batch * kvHeads * total * rowSize);
  const pv = past?.numbers();
  const cv = current.numbers();
  for (let b = 0; b < batch; b++) {
    for (let h = 0; h < kvHeads; h++) {
      for (let j = 0; j < total; j++) {
        const dst = ((b * kvHeads + h) * total + j) * rowSize;
        for (let d = 0; d < rowSize; d++) {
          values[dst + d] = pv && j < pastLen
            ? pv[((b * kvHeads + h) * pastLen + j) * rowSize + d]
            : cv[rowAt(b, h, j - pastLen) + d];
        }
      }
    }
  }
  return Tensor.fromNumbers(current.dtype, [batch, kvHeads, total, rowSize], values);
}

/** Reads the (broadcast, padded) attention mask as an additive bias. */
function maskReader(attrs: Attrs, mask: Tensor, outShape: number[]): (b: number, h: number, i: number, j: number) => number {
  const total = outShape[3];
  const maskLen = mask.shape[mask.rank - 1];
  if (mask.rank < 2 || mask.rank > 4) throw attrs.error(`attn_mask must be 2-D to 4-D, got rank ${mask.rank}`);
  if (maskLen > total) throw attrs.error(`attn_mask last dim ${maskLen} exceeds total sequence length ${total}`);
  const padded = [...mask.shape.slice(0, -1), total];
  try {
    broadcastShapes(padded, outShape);
  } catch {
    throw attrs.error(`attn_mask of shape [${mask.shape.join(',')}] does not broadcast to [${outShape.join(',')}]`);
  }
  const full = [...new Array<number>(4 - mask.rank).fill(1), ...mask.shape];
  const strides = [0, 0, 0, 1];
  for (let d = 2; d >= 0; d--) strides[d] = strides[d + 1] * full[d + 1];
  const stride = full.map((n, d) => (n === 1 ? 0 : strides[d]));
  const values = mask.numbers();
  const isBool = mask.dtype === 'bool';
  return (b, h, i, j) => {
    if (j >= maskLen) return -Infinity;
    const v = values[b * stride[0] + h * stride[1] + i * stride[2] + j];
    return isBool ? (v ? 0 : -Infinity) : v;
  };
}

function inferShapes(ctx: Parameters<OpDef['infer']>[0]): OutputInfo[] {
  const q = requireInput(ctx, 0, 'Q');
  const k = requireInput(ctx, 1, 'K');
  const v = requireInput(ctx, 2, 'V');
  requireFloat(ctx.attrs, q.dtype, 'Q');
  const mode = ctx.attrs.int('qk_matmul_output_mode', 0);
  if (mode < 0 || mode > 3) throw ctx.attrs.error(`qk_matmul_output_mode must be 0..3, got ${mode}`);
  if (ctx.attrs.has('softmax_precision')) dtypeAttr(ctx.attrs, 'softmax_precision', ctx.attrs.int('softmax_precision'));
  const unknown = (dtype = q.dtype): OutputInfo => ({ type: { dtype, shape: undefined } });
  if (!q.shape || !k.shape || !v.shape) return [unknown(), unknown(k.dtype), unknown(v.dtype), unknown()];
  const rank = q.shape.length;
  if (rank !== 3 && rank !== 4) throw ctx.attrs.error(`Q, K and V must be 3-D or 4-D, got rank ${rank}`);
  if (k.shape.length !== rank || v.shape.length !== rank) throw ctx.attrs.error('Q, K and V must have the same rank');
  let batch: Dim, qHeads: Dim, kvHeads: Dim, qLen: Dim, kvLen: Dim, headSize: Dim, vHeadSize: Dim;
  if (rank === 4) {
    [batch, qHeads, qLen, headSize] = q.shape;
    [, kvHeads, kvLen] = k.shape;
    vHeadSize = v.shape[3];
  } else {
    const qn = ctx.attrs.optionalInt('q_num_heads');
    const kvn = ctx.attrs.optionalInt('kv_num_heads');
    if (!qn || !kvn) throw ctx.attrs.error('3-D inputs need the q_num_heads and kv_num_heads attributes');
    [qHeads, kvHeads] = [qn, kvn];
    [batch, qLen] = q.shape;
    kvLen = k.shape[1];
    headSize = dimDiv(q.shape[2], qn);
    vHeadSize = dimDiv(v.shape[2], kvn);
  }
  if (typeof qHeads === 'number' && typeof kvHeads === 'number' && qHeads % kvHeads !== 0) {
    throw ctx.attrs.error(`q_num_heads ${qHeads} is not a multiple of kv_num_heads ${kvHeads}`);
  }
  const pastKey: TensorType | undefined = ctx.inputs[4];
  const pastLen: Dim = pastKey?.shape ? pastKey.shape[2] : 0;
  const total = dimAdd(pastLen, kvLen);
  const y: Dim[] = rank === 4 ? [batch, qHeads, qLen, vHeadSize] : [batch, qLen, dimMul(qHeads, vHeadSize)];
  return [
    { type: { dtype: q.dtype, shape: y } },
    { type: { dtype: k.dtype, shape: [batch, kvHeads, total, headSize] } },
    { type: { dtype: v.dtype, shape: [batch, kvHeads, total, vHeadSize] } },
    { type: { dtype: q.dtype, shape: [batch, qHeads, qLen, total] } },
  ];
}

export const Attention: OpDef = {
  domain: '',
  op: 'Attention',
  infer: inferShapes,
  evaluate(ctx) {
    const [q, k, v, mask, pastKey, pastValue, nonpadInput] = ctx.inputs;
    if (!q || !k || !v) throw ctx.attrs.error('Q, K and V are required');
    if (nonpadInput && ctx.opset < 24) throw ctx.attrs.error('nonpad_kv_seqlen needs opset 24 or later');
    const nonpad = nonpadInput;
    if ((pastKey === undefined) !== (pastValue === undefined)) {
      throw ctx.attrs.error('past_key and past_value must be given together');
    }
    const layout = layoutOf(ctx.attrs, q, k, v);
    const { batch, qHeads, kvHeads, qLen, headSize, vHeadSize } = layout;
    if (qHeads % kvHeads !== 0) throw ctx.attrs.error(`q_num_heads ${qHeads} is not a multiple of kv_num_heads ${kvHeads}`);
    const mode = ctx.attrs.int('qk_matmul_output_mode', 0);
    if (mode < 0 || mode > 3) throw ctx.attrs.error(`qk_matmul_output_mode must be 0..3, got ${mode}`);
    const isCausal = ctx.attrs.int('is_causal', 0) !== 0;
    const scale = ctx.attrs.has('scale') ? ctx.attrs.float('scale') : 1 / Math.sqrt(headSize);
    const softcap = ctx.attrs.float('softcap', 0);
    if (ctx.attrs.has('softmax_precision')) dtypeAttr(ctx.attrs, 'softmax_precision', ctx.attrs.int('softmax_precision'));

    const presentKey = presentCache(ctx.attrs, 'past_key', pastKey, k, layout, layout.kAt, headSize);
    const presentValue = presentCache(ctx.attrs, 'past_value', pastValue, v, layout, layout.vAt, vHeadSize);
    const pastLen = pastKey ? pastKey.shape[2] : 0;
    const total = presentKey.shape[2];

    const maskAt = mask ? maskReader(ctx.attrs, mask, [batch, qHeads, qLen, total]) : undefined;
    let nonpadLens: number[] | undefined;
    if (nonpad) {
      nonpadLens = nonpad.toArray();
      if (nonpadLens.length !== batch) throw ctx.attrs.error(`nonpad_kv_seqlen must have ${batch} elements`);
      if (nonpadLens.some((n) => n < 0 || n > total)) throw ctx.attrs.error(`nonpad_kv_seqlen values must be in 0..${total}`);
    }
    // Causal masking is bottom-right aligned: query i sees key j iff j <= i + offset, where
    // offset counts the valid keys before this query block (past length, or per batch from
    // nonpad_kv_seqlen for an external cache without past_key).
    const causalOffset = (b: number): number => (!pastKey && nonpadLens ? nonpadLens[b] - qLen : pastLen);

    const kv = presentKey.numbers();
    const vv = presentValue.numbers();
    const qv = q.numbers();
    const groupSize = qHeads / kvHeads;
    const yValues = new Float64Array(batch * qHeads * qLen * vHeadSize);
    const qkValues = new Float64Array(batch * qHeads * qLen * total);
    const scores = new Float64Array(total);
    for (let b = 0; b < batch; b++) {
      const offset = causalOffset(b);
      for (let h = 0; h < qHeads; h++) {
        // GQA: consecutive query heads share a KV head (h0, h0, h1, h1, ...).
        const kvh = Math.floor(h / groupSize);
        for (let i = 0; i < qLen; i++) {
          const qBase = layout.qAt(b, h, i);
          const qkBase = ((b * qHeads + h) * qLen + i) * total;
          let max = -Infinity;
          for (let j = 0; j < total; j++) {
            const kBase = ((b * kvHeads + kvh) * total + j) * headSize;
            let dot = 0;
            for (let d = 0; d < headSize; d++) dot += qv[qBase + d] * kv[kBase + d];
            let s = dot * scale;
            if (softcap > 0) s = softcap * Math.tanh(s / softcap);
            let bias = maskAt ? maskAt(b, h, i, j) : 0;
            if (isCausal && j > i + offset) bias += -Infinity;
            if (nonpadLens && j >= nonpadLens[b]) bias += -Infinity;
            const withBias = s + bias;
            scores[j] = withBias;
            if (mode <= 1) qkValues[qkBase + j] = s;
            else if (mode === 2) qkValues[qkBase + j] = withBias;
            // numpy's max propagates NaN (a NaN score poisons its row, as in the reference).
            if (!Number.isNaN(max) && (Number.isNaN(withBias) || withBias > max)) max = withBias;
          }
          // A fully masked row (every score -inf) yields zero probabilities, not NaN.
          const fullyMasked = max === -Infinity;
          let sum = 0;
          for (let j = 0; j < total && fullyMasked; j++) scores[j] = 0;
          for (let j = 0; j < total && !fullyMasked; j++) {
            scores[j] = Math.exp(scores[j] - max);
            sum += scores[j];
          }
          for (let j = 0; j < total && !fullyMasked; j++) scores[j] /= sum;
          if (mode === 3) qkValues.set(scores, qkBase);
          const yBase = ((b * qHeads + h) * qLen + i) * vHeadSize;
          for (let d = 0; d < vHeadSize; d++) {
            let acc = 0;
            for (let j = 0; j < total; j++) acc += scores[j] * vv[((b * kvHeads + kvh) * total + j) * vHeadSize + d];
            yValues[yBase + d] = acc;
          }
        }
      }
    }
    let y = Tensor.fromNumbers(q.dtype, [batch, qHeads, qLen, vHeadSize], yValues);
    if (q.rank === 3) y = transposeHeads(y);
    const qk = Tensor.fromNumbers(q.dtype, [batch, qHeads, qLen, total], qkValues);
    return [y, presentKey, presentValue, qk];
  },
};

/** [batch, heads, seq, size] → [batch, seq, heads*size], the 3-D output layout. */
function transposeHeads(t: Tensor): Tensor {
  const [batch, heads, seq, size] = t.shape;
  const src = t.numbers();
  const out = new Float64Array(src.length);
  for (let b = 0; b < batch; b++) {
    for (let h = 0; h < heads; h++) {
      for (let s = 0; s < seq; s++) {
        for (let d = 0; d < size; d++) {
          out[((b * seq + s) * heads + h) * size + d] = src[((b * heads + h) * seq + s) * size + d];
        }
      }
    }
  }
  return Tensor.fromNumbers(t.dtype, [batch, seq, heads * size], out);
}
