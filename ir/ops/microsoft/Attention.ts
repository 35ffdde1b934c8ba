import { dimAdd, dimDiv } from '../../dims.js';
import type { Dim } from '../../graph.js';
import { Tensor, convertNumber } from '../../tensor.js';
import type { EvalContext, InferContext, OpDef, OutputInfo } from '../types.js';
import { checkAttentionBias, dimOf, input, inputType, requireFloat, toBNSH, inferredOutputs, declaredOutputs } from './common.js';
import { attentionCore, concatPast, prepareMask } from './attention-core.js';

/**
 * Attention (com.microsoft), the BERT/GPT-2 fused self-attention, as ORT's CPU kernel:
 * QKV = input x weights + bias, split by qkv_hidden_sizes (default thirds); optional
 * past (2, B, N, P, H) is prepended to K and V, and present (2, B, N, P+S, H) returned;
 * mask_index (see prepareMask), unidirectional (causal) and attention_bias are applied.
 */
export const attention: OpDef = {
  domain: 'com.microsoft',
  op: 'Attention',
  infer(ctx: InferContext): OutputInfo[] {
    const x = inputType(ctx, 0, 'input');
    const w = inputType(ctx, 1, 'weights');
    requireFloat(ctx, x.dtype, 'input');
    const numHeads = ctx.attrs.int('num_heads');
    const sizes = ctx.attrs.optionalInts('qkv_hidden_sizes');
    const batch = dimOf(ctx, x.shape, 0);
    const seq = dimOf(ctx, x.shape, 1);
    const vHidden: Dim = sizes ? sizes[2] : w.shape ? dimDiv(w.shape[1], 3) : ctx.symbols.fresh();
    const past = ctx.inputs[4];
    const total = past?.shape ? dimAdd(past.shape[3], seq) : seq;
    const qkHidden: Dim = sizes ? sizes[1] : vHidden;
    return inferredOutputs(ctx, [
      { type: { dtype: x.dtype, shape: [batch, seq, vHidden] } },
      { type: { dtype: x.dtype, shape: [2, batch, numHeads, total, dimDiv(qkHidden, numHeads)] } },
    ]);
  },
  evaluate(ctx: EvalContext): Tensor[] {
    const x = input(ctx, 0, 'input');
    const weights = input(ctx, 1, 'weights');
    const bias = ctx.inputs[2];
    const maskIndex = ctx.inputs[3];
    const past = ctx.inputs[4];
    const attnBias = ctx.inputs[5];
    requireFloat(ctx, x.dtype, 'input');
    const numHeads = ctx.attrs.int('num_heads');
    if (numHeads <= 0) throw ctx.attrs.error(`num_heads must be positive, got ${numHeads}`);
    if (ctx.attrs.int('do_rotary', 0) !== 0) throw ctx.attrs.error('do_rotary=1 is not supported');
    if (ctx.attrs.int('past_present_share_buffer', 0) !== 0) throw ctx.attrs.error('past_present_share_buffer=1 is not supported');
    if (x.rank !== 3) throw ctx.attrs.error(`input must be 3-D (batch, sequence, hidden), got rank ${x.rank}`);
    const [batch, seq, inHidden] = x.shape;
    if (weights.rank !== 2 || weights.shape[0] !== inHidden) {
      throw ctx.attrs.error(`weights must have shape (${inHidden}, 3 * hidden), got [${weights.shape.join(',')}]`);
    }
    const width = weights.shape[1];
    const sizes = ctx.attrs.optionalInts('qkv_hidden_sizes') ?? [width / 3, width / 3, width / 3];
    const [dq, dk, dv] = sizes;
    if (sizes.length !== 3 || dq + dk + dv !== width || !sizes.every((d) => Number.isInteger(d) && d % numHeads === 0)) {
      throw ctx.attrs.error(`qkv_hidden_sizes [${sizes.join(',')}] must sum to ${width} and be multiples of num_heads ${numHeads}`);
    }
    if (dq !== dk) throw ctx.attrs.error('Q and K hidden sizes must be equal');
    if (bias && bias.size !== width) throw ctx.attrs.error(`bias must have ${width} elements, got ${bias.size}`);
    const headSize = dq / numHeads;
    const vHeadSize = dv / numHeads;

    // QKV projection: (B*S, In) x (In, width) + bias.
    const xs = x.numbers(), ws = weights.numbers(), bs = bias?.numbers();
    const qkv = new Float64Array(batch * seq * width);
    for (let r = 0; r < batch * seq; r++) {
      for (let c = 0; c < width; c++) {
        let acc = bs ? bs[c] : 0;
        for (let i = 0; i < inHidden; i++) acc += xs[r * inHidden + i] * ws[i * width + c];
        qkv[r * width + c] = convertNumber(x.dtype, acc);
      }
    }
    const split = (offset: number, size: number): Float64Array => {
      const part = new Float64Array(batch * seq * size);
      for (let r = 0; r < batch * seq; r++) for (let c = 0; c < size; c++) part[r * size + c] = qkv[r * width + offset + c];
      return part;
    };
    const q = toBNSH(split(0, dq), batch, seq, numHeads, headSize);
    let k = toBNSH(split(dq, dk), batch, seq, numHeads, headSize);
    let v = toBNSH(split(dq + dk, dv), batch, seq, numHeads, vHeadSize);

    let pastLen = 0;
    if (past) {
      if (past.rank !== 5 || past.shape[0] !== 2 || past.shape[1] !== batch || past.shape[2] !== numHeads || past.shape[4] !== headSize) {
        throw ctx.attrs.error(`past must have shape (2, ${batch}, ${numHeads}, past_length, ${headSize}), got [${past.shape.join(',')}]`);
      }
      if (headSize !== vHeadSize) throw ctx.attrs.error('past requires equal K and V head sizes');
      pastLen = past.shape[3];
      const pv = past.numbers();
      const half = batch * numHeads * pastLen * headSize;
      k = concatPast(pv.subarray(0, half), k, batch * numHeads, pastLen, seq, headSize);
      v = concatPast(pv.subarray(half), v, batch * numHeads, pastLen, seq, vHeadSize);
    }
    const total = pastLen + seq;
    if (attnBias) checkAttentionBias(ctx, attnBias, batch, numHeads, seq, total);
    const causal = ctx.attrs.int('unidirectional', 0) === 1 && seq > 1;
    const filter = ctx.attrs.float('mask_filter_value', -10000);
    const mask = prepareMask(ctx, maskIndex, causal, batch, seq, pastLen, total, filter);
    const scaleAttr = ctx.attrs.float('scale', 0);
    const out = attentionCore({
      q, k, v, batch, heads: numHeads, seq, total, headSize, vHeadSize,
      scale: scaleAttr === 0 ? 1 / Math.sqrt(headSize) : scaleAttr, mask, bias: attnBias,
    });
    const present = new Float64Array(k.length + v.length);
    present.set(k, 0);
    present.set(v, k.length);
    return declaredOutputs(ctx, [
      Tensor.fromNumbers(x.dtype, [batch, seq, dv], out),
      Tensor.fromNumbers(x.dtype, [2, batch, numHeads, total, headSize], present),
    ]);
  },
};
