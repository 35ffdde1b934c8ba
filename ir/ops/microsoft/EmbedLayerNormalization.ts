import { Tensor } from '../../tensor.js';
import type { EvalContext, InferContext, OpDef, OutputInfo } from '../types.js';
import { dimOf, input, inputType, requireFloat, inferredOutputs, declaredOutputs } from './common.js';

/**
 * EmbedLayerNormalization (com.microsoft), as ORT's CPU kernel: per token,
 * e = word[input_ids] + position[position_id] (+ segment[segment_ids]), then LayerNorm
 * over the hidden dim. position_id is the token index unless position_ids (B,S) or (1,S)
 * is given. Outputs: output (B,S,H); mask_index (B) int32 = count of mask == 1 per row
 * (zeros without mask); embedding_sum (B,S,H) = e before normalization.
 */
export const embedLayerNormalization: OpDef = {
  domain: 'com.microsoft',
  op: 'EmbedLayerNormalization',
  infer(ctx: InferContext): OutputInfo[] {
    const ids = inputType(ctx, 0, 'input_ids');
    const word = inputType(ctx, 2, 'word_embedding');
    requireFloat(ctx, word.dtype, 'word_embedding');
    const batch = dimOf(ctx, ids.shape, 0);
    const seq = dimOf(ctx, ids.shape, 1);
    const hidden = dimOf(ctx, word.shape, 1);
    return inferredOutputs(ctx, [
      { type: { dtype: word.dtype, shape: [batch, seq, hidden] } },
      { type: { dtype: 'i32', shape: [batch] } },
      { type: { dtype: word.dtype, shape: [batch, seq, hidden] } },
    ]);
  },
  evaluate(ctx: EvalContext): Tensor[] {
    const ids = input(ctx, 0, 'input_ids');
    const segmentIds = ctx.inputs[1];
    const word = input(ctx, 2, 'word_embedding');
    const position = input(ctx, 3, 'position_embedding');
    const segment = ctx.inputs[4];
    const gamma = input(ctx, 5, 'gamma');
    const beta = input(ctx, 6, 'beta');
    const mask = ctx.inputs[7];
    const positionIds = ctx.inputs[8];
    const epsilon = ctx.attrs.float('epsilon', 1e-12);
    if (ids.rank !== 2) throw ctx.attrs.error(`input_ids must be 2-D (batch, sequence), got rank ${ids.rank}`);
    if (word.rank !== 2 || position.rank !== 2) throw ctx.attrs.error('word_embedding and position_embedding must be 2-D');
    if ((segmentIds === undefined) !== (segment === undefined)) {
      throw ctx.attrs.error('segment_ids and segment_embedding must be given together');
    }
    const [batch, seq] = ids.shape;
    const hidden = word.shape[1];
    if (position.shape[1] !== hidden || (segment && segment.shape[1] !== hidden)) {
      throw ctx.attrs.error('embedding tables must all have the hidden size of word_embedding');
    }
    if (gamma.size !== hidden || beta.size !== hidden) throw ctx.attrs.error(`gamma and beta must have ${hidden} elements`);
    if (segmentIds && segmentIds.size !== ids.size) throw ctx.attrs.error('segment_ids must have the shape of input_ids');
    if (mask && mask.size !== ids.size) throw ctx.attrs.error('mask must have the shape of input_ids');
    const broadcastPositions = positionIds !== undefined && positionIds.size === seq && positionIds.size !== ids.size;
    if (positionIds && !broadcastPositions && positionIds.size !== ids.size) {
      throw ctx.attrs.error(`position_ids must have shape (${batch}, ${seq}) or (1, ${seq}), got [${positionIds.shape.join(',')}]`);
    }
    const idv = ids.numbers(), wv = word.numbers(), pv = position.numbers(), gv = gamma.numbers(), bv = beta.numbers();
    const sidv = segmentIds?.numbers(), sv = segment?.numbers(), posv = positionIds?.numbers();
    const out = new Float64Array(batch * seq * hidden);
    const sums = new Float64Array(batch * seq * hidden);
    const row = new Float64Array(hidden);
    for (let index = 0; index < batch * seq; index++) {
      const w = idv[index];
      const p = posv ? posv[broadcastPositions ? index % seq : index] : index % seq;
      const s = sidv ? sidv[index] : 0;
      if (w < 0 || w >= word.shape[0]) throw ctx.attrs.error(`input_ids value ${w} is out of range [0, ${word.shape[0]})`);
      if (p < 0 || p >= position.shape[0]) throw ctx.attrs.error(`position id ${p} is out of range [0, ${position.shape[0]})`);
      if (sv && segment && (s < 0 || s >= segment.shape[0])) {
        throw ctx.attrs.error(`segment id ${s} is out of range [0, ${segment.shape[0]})`);
      }
      let mean = 0;
      for (let h = 0; h < hidden; h++) {
        let v = wv[w * hidden + h] + pv[p * hidden + h];
        if (sv) v += sv[s * hidden + h];
        row[h] = v;
        sums[index * hidden + h] = v;
        mean += v;
      }
      mean /= hidden;
      let variance = 0;
      for (let h = 0; h < hidden; h++) variance += (row[h] - mean) ** 2;
      const denom = Math.sqrt(variance / hidden + epsilon);
      for (let h = 0; h < hidden; h++) out[index * hidden + h] = ((row[h] - mean) / denom) * gv[h] + bv[h];
    }
    const maskIndex = new Int32Array(batch);
    if (mask) {
      const mv = mask.numbers();
      for (let b = 0; b < batch; b++) {
        let count = 0;
        for (let s = 0; s < seq; s++) if (mv[b * seq + s] === 1) count++;
        maskIndex[b] = count;
      }
    }
    return declaredOutputs(ctx, [
      Tensor.fromNumbers(word.dtype, [batch, seq, hidden], out),
      new Tensor('i32', [batch], maskIndex),
      Tensor.fromNumbers(word.dtype, [batch, seq, hidden], sums),
    ]);
  },
};
