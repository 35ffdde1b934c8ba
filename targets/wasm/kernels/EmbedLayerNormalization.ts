import { add, cast, div, eq, f32, i32, mul, rem, select, sqrt, sub } from '../../../codegen/builder.js';
import type { Node } from '../../../ir/graph.js';
import type { LaunchShapes, WasmKernelDef } from '../kernel-def.js';
import { checkArenaTypes, clampI, declareIO, product, rankOf, scalars, shapeIn } from './nn-util.js';

function layout(_node: Node, shapes: LaunchShapes): number[] {
  const [batch, seq] = shapeIn(shapes, 0);
  const word = shapeIn(shapes, 2);
  const position = shapeIn(shapes, 3);
  const segment = shapes.inputs[4];
  const positionIds = shapes.inputs[8];
  const broadcastPositions = positionIds && product(positionIds) === seq && seq !== batch * seq ? 1 : 0;
  return [batch, seq, word[1], word[0], position[0], segment ? segment[0] : 1, broadcastPositions];
}

/**
 * com.microsoft EmbedLayerNormalization (ORT CPU): per token e = word[id] + position[pos]
 * (+ segment[seg]), LayerNorm over hidden with gamma/beta; mask_index = count of mask == 1
 * per batch row (0 without mask); embedding_sum = e. Ids are clamped into their tables.
 * Scratch: one f32 row of e.
 */
export const embedLayerNormalizationKernel: WasmKernelDef = {
  domain: 'com.microsoft',
  op: 'EmbedLayerNormalization',
  check(ctx) {
    if (rankOf(ctx.inputs[0]) !== 2) return 'input_ids must be 2-D';
    if (rankOf(ctx.inputs[2]) !== 2 || rankOf(ctx.inputs[3]) !== 2) return 'word_embedding and position_embedding must be 2-D';
    if (!!ctx.inputs[1] !== !!ctx.inputs[4]) return 'segment_ids and segment_embedding must be given together';
    if (!ctx.inputs[5] || !ctx.inputs[6]) return 'gamma and beta are required';
    return checkArenaTypes(ctx);
  },
  build(ctx) {
    const epsAttr = ctx.node.attributes.get('epsilon');
    const epsilon = Math.fround(epsAttr?.kind === 'float' ? epsAttr.value : 1e-12);
    const { k, inputs, outputs, scratch } = declareIO(ctx, 'f32');
    const [ids, segmentIds, word, position, segment, gamma, beta, mask, positionIds] = inputs;
    const [batch, seq, hidden, wordRows, posRows, segRows, broadcastPositions] = scalars(k, 'p', 7);
    const row = scratch!;
    const [out, maskIndex, embeddingSum] = outputs;
    const hiddenF = k.let('hidden_f', cast(hidden, 'f32'));
    k.loop('token', 0, mul(batch, seq), (token) => {
      const w = k.let('w', clampI(ids!.load(token), 0, sub(wordRows, 1)));
      const rawPos = positionIds
        ? positionIds.load(select(broadcastPositions, rem(token, seq), token))
        : rem(token, seq);
      const p = k.let('pos', clampI(rawPos, 0, sub(posRows, 1)));
      const s = segmentIds ? k.let('seg', clampI(segmentIds.load(token), 0, sub(segRows, 1))) : i32(0);
      const base = k.let('base', mul(token, hidden));
      const mean = k.mut('mean', f32(0));
      k.loop('h', 0, hidden, (h) => {
        let v = add(word!.load(add(mul(w, hidden), h)), position!.load(add(mul(p, hidden), h)));
        if (segment) v = add(v, segment.load(add(mul(s, hidden), h)));
        const e = k.let('e', v);
        row.store(h, e);
        if (embeddingSum) embeddingSum.store(add(base, h), e);
        k.set(mean, add(mean, e));
      });
      const mu = k.let('mu', div(mean, hiddenF));
      const variance = k.mut('variance', f32(0));
      k.loop('h', 0, hidden, (h) => {
        const d = k.let('diff', sub(row.load(h), mu));
        k.set(variance, add(variance, mul(d, d)));
      });
      const denom = k.let('denom', sqrt(add(div(variance, hiddenF), f32(epsilon))));
      if (out) {
        k.loop('h', 0, hidden, (h) => {
          out.store(add(base, h), add(mul(div(sub(row.load(h), mu), denom), gamma!.load(h)), beta!.load(h)));
        });
      }
    }, { parallel: true });
    if (maskIndex) {
      k.loop('b', 0, batch, (b) => {
        const count = k.mut('count', i32(0));
        if (mask) k.loop('s', 0, seq, (s) => k.set(count, add(count, select(eq(mask.load(add(mul(b, seq), s)), 1), i32(1), i32(0)))));
        maskIndex.store(b, count);
      });
    }
    return k.build();
  },
  args: layout,
  scratchBytes(node, shapes) {
    return 4 * layout(node, shapes)[2];
  },
};
