import type { Expr } from '../../../codegen/kernel.js';
import { add, cast, div, eq, f32, ge, gt, i32, mul, select, sqrt, sub, tanh } from '../../../codegen/builder.js';
import type { Node } from '../../../ir/graph.js';
import type { LaunchShapes, WasmKernelDef } from '../kernel-def.js';
import { type Loc, at, emitDot, emitSoftmax, emitWeightedSum } from './attention-util.js';
import { checkArenaTypes, clampI, declareIO, fill, imin, rankOf, scalars, shapeIn, intAttr, floatAttr } from './nn-util.js';
import { emitRotary } from './rotary-util.js';


function layout(node: Node, shapes: LaunchShapes) {
  const [batch, seq, qWidth] = shapeIn(shapes, 0);
  const heads = intAttr(node, 'num_heads', 1), kvHeads = intAttr(node, 'kv_num_heads', 1);
  const packed = !shapes.inputs[1];
  const headSize = qWidth / (packed ? heads + 2 * kvHeads : heads);
  const pastBuffer = shapes.inputs[3] ? shapes.inputs[3][2] : 0;
  const presentLen = shapes.outputs[1][2];
  const cos = shapes.inputs[7];
  const rotaryDim = cos ? cos[1] * 2 : 0;
  const cacheRows = cos ? cos[0] : 1;
  const bias = shapes.inputs[10];
  const biasArgs = bias ? [bias[0] === 1 ? 0 : bias[1] * bias[2] * bias[3], bias[1] === 1 ? 0 : bias[2] * bias[3], bias[3]] : [0, 0, 0];
  return { batch, seq, heads, kvHeads, headSize, qWidth, pastBuffer, presentLen, rotaryDim, cacheRows, biasArgs };
}

/**
 * com.microsoft GroupQueryAttention (ORT CPU semantics, ir/ops/microsoft/GroupQueryAttention.ts):
 * separate or packed QKV, KV cache with seqlens_k / total_sequence_length (first prompt vs.
 * decode / subsequent prompt), present zero past the valid tokens, causal + local window,
 * softcap, attention_bias, do_rotary (cos/sin caches, positions from seqlens_k), smooth
 * softmax and head sinks. Values the reference reports as errors (inconsistent seqlens_k)
 * are clamped here. Scratch: Q in (B, N, S, H) (rotated), one score row.
 */
export const groupQueryAttentionKernel: WasmKernelDef = {
  domain: 'com.microsoft',
  op: 'GroupQueryAttention',
  check(ctx) {
    if (rankOf(ctx.inputs[0]) !== 3) return 'query must be 3-D';
    const heads = intAttr(ctx.node, 'num_heads', 0), kvHeads = intAttr(ctx.node, 'kv_num_heads', 0);
    if (heads <= 0 || kvHeads <= 0 || heads % kvHeads !== 0) return 'num_heads must be a positive multiple of kv_num_heads';
    if (!!ctx.inputs[1] !== !!ctx.inputs[2]) return 'key and value must be given together';
    if (!!ctx.inputs[3] !== !!ctx.inputs[4]) return 'past_key and past_value must be given together';
    if (!ctx.inputs[5] || !ctx.inputs[6]) return 'seqlens_k and total_sequence_length are required';
    if (!ctx.node.outputs[1] || !ctx.node.outputs[2]) return 'present_key and present_value outputs are required on wasm';
    if (ctx.node.outputs[3]) return 'output 3 (output_qk) is not supported';
    if (ctx.inputs[9]) return 'explicit position_ids are not supported';
    if (intAttr(ctx.node, 'do_rotary', 0) === 1 && (!ctx.inputs[7] || !ctx.inputs[8])) return 'do_rotary=1 needs cos_cache and sin_cache';
    if (ctx.inputs[10] && rankOf(ctx.inputs[10]) !== 4) return 'attention_bias must be 4-D';
    return checkArenaTypes(ctx);
  },
  build(ctx) {
    const node = ctx.node;
    const packed = !ctx.inputs[1];
    const doRotary = intAttr(node, 'do_rotary', 0) === 1;
    const interleaved = intAttr(node, 'rotary_interleaved', 0) === 1;
    const smooth = intAttr(node, 'smooth_softmax', 0) === 1;
    const localWindow = intAttr(node, 'local_window_size', -1);
    const softcap = floatAttr(node, 'softcap', 0);
    const scaleAttr = floatAttr(node, 'scale', 0);
    const { k, inputs, outputs, scratch } = declareIO(ctx, 'f32');
    const [query, key, value, pastKey, pastValue, seqlens, totalInput, cosCache, sinCache, , attnBias, headSink] = inputs;
    const [batch, seq, heads, kvHeads, headSize, qWidth, pastBuffer, presentLen, rotaryDim, cacheRows, bsb, bsn, biasT] = scalars(k, 'p', 13);
    const sbuf = scratch!;
    const presentK = outputs[1]!, presentV = outputs[2]!;
    const qScratch = k.let('q_size', mul(mul(mul(batch, heads), seq), headSize));
    const scores: Loc = { buf: sbuf, base: qScratch };
    const totalSeq = k.let('total_seq', totalInput!.load(0));
    const firstPrompt = k.let('first_prompt', eq(seq, totalSeq));
    const group = k.let('group', div(heads, kvHeads));
    const half = k.let('half', div(rotaryDim, 2));
    // Row layouts of the new tokens: packed QKV rows, or separate Q / K / V rows.
    const kvWidth = k.let('kv_width', mul(kvHeads, headSize));
    const qSrc = query!;
    const kSrc = packed ? query! : key!;
    const vSrc = packed ? query! : value!;
    const kRow = packed ? qWidth : kvWidth;
    const kOffset = packed ? k.let('k_offset', mul(heads, headSize)) : i32(0);
    const vOffset = packed ? k.let('v_offset', mul(add(heads, kvHeads), headSize)) : i32(0);
    const validTotal = (b: Expr): Expr => clampI(add(seqlens!.load(b), 1), 1, presentLen);
    // Also at most the past buffer's length: an inconsistent seqlens_k must not read past its end.
    const pastOf = (total: Expr): Expr => (pastKey ? select(firstPrompt, i32(0), imin(clampI(sub(total, seq), 0, sub(presentLen, seq)), pastBuffer)) : i32(0));
    // Cache row of position (b, s): ORT's GeneratePositionIds (padding positions read row 1).
    const positionRow = (s: Expr, total: Expr): Expr => {
      const p = k.let('pos', add(select(firstPrompt, i32(0), sub(total, seq)), s));
      return clampI(select(ge(p, total), i32(1), p), 0, sub(cacheRows, 1));
    };

    // Q → scratch (B, N, S, H), rotated when do_rotary.
    k.loop('b', 0, batch, (b) => {
      const total = k.let('total', validTotal(b));
      k.loop('s', 0, seq, (s) => {
        const token = k.let('token', add(mul(b, seq), s));
        const cacheBase = doRotary ? k.let('cache_base', mul(positionRow(s, total), half)) : i32(0);
        k.loop('n', 0, heads, (n) => {
          const src = k.let('q_src', add(mul(token, qWidth), mul(n, headSize)));
          const dst = k.let('q_dst', mul(add(mul(add(mul(b, heads), n), seq), s), headSize));
          if (doRotary) {
            emitRotary(k, { src: qSrc, srcBase: src, dst: sbuf, dstBase: dst, cos: cosCache!, sin: sinCache!, cacheBase, half, rotaryDim, headSize, interleaved });
          } else {
            k.loop('d', 0, headSize, (d) => sbuf.store(add(dst, d), qSrc.load(add(src, d))));
          }
        });
      });
    });

    // present = past[0:past_b] ++ new tokens (K rotated), zero elsewhere.
    const cacheSize = k.let('cache_size', mul(mul(mul(batch, kvHeads), presentLen), headSize));
    fill(k, presentK, 0, cacheSize, f32(0));
    fill(k, presentV, 0, cacheSize, f32(0));
    k.loop('b', 0, batch, (b) => {
      const total = k.let('total', validTotal(b));
      const past = k.let('past', pastOf(total));
      k.loop('n', 0, kvHeads, (n) => {
        const bn = k.let('bn', add(mul(b, kvHeads), n));
        const dstBase = k.let('dst_base', mul(mul(bn, presentLen), headSize));
        if (pastKey && pastValue) {
          const srcBase = k.let('src_base', mul(mul(bn, pastBuffer), headSize));
          k.loop('e', 0, mul(past, headSize), (e) => {
            presentK.store(add(dstBase, e), pastKey.load(add(srcBase, e)));
            presentV.store(add(dstBase, e), pastValue.load(add(srcBase, e)));
          });
        }
        k.loop('s', 0, seq, (s) => {
          const token = k.let('token', add(mul(b, seq), s));
          const dst = k.let('dst', add(dstBase, mul(add(past, s), headSize)));
          const kBase = k.let('k_src', add(add(mul(token, kRow), kOffset), mul(n, headSize)));
          const vBase = k.let('v_src', add(add(mul(token, kRow), vOffset), mul(n, headSize)));
          if (doRotary) {
            const cacheBase = k.let('cache_base', mul(positionRow(s, total), half));
            emitRotary(k, { src: kSrc, srcBase: kBase, dst: presentK, dstBase: dst, cos: cosCache!, sin: sinCache!, cacheBase, half, rotaryDim, headSize, interleaved });
          } else {
            k.loop('d', 0, headSize, (d) => presentK.store(add(dst, d), kSrc.load(add(kBase, d))));
          }
          k.loop('d', 0, headSize, (d) => presentV.store(add(dst, d), vSrc.load(add(vBase, d))));
        });
      });
    });

    const scale = scaleAttr !== 0 ? f32(Math.fround(scaleAttr)) : k.let('scale', div(f32(1), sqrt(cast(headSize, 'f32'))));
    const out = outputs[0]!;
    k.loop('b', 0, batch, (b) => {
      const total = k.let('total', validTotal(b));
      const past = k.let('past', pastOf(total));
      k.loop('n', 0, heads, (n) => {
        const kvBase = k.let('kv_base', mul(mul(add(mul(b, kvHeads), div(n, group)), presentLen), headSize));
        const sink = headSink ? k.let('sink', headSink.load(n)) : smooth ? f32(0) : undefined;
        k.loop('s', 0, seq, (s) => {
          const qBase = k.let('q_base', mul(add(mul(add(mul(b, heads), n), seq), s), headSize));
          const causalLen = k.let('causal_len', imin(add(add(past, s), 1), total));
          const start = localWindow >= 0
            ? k.let('start', select(gt(causalLen, localWindow), sub(causalLen, localWindow), i32(0)))
            : i32(0);
          const biasRow = attnBias ? k.let('bias_row', add(add(mul(b, bsb), mul(n, bsn)), mul(s, biasT))) : i32(0);
          k.loop('t', start, causalLen, (t) => {
            const dot = emitDot(k, (d) => sbuf.load(add(qBase, d)), presentK, add(kvBase, mul(t, headSize)), headSize);
            let score = k.let('score', mul(scale, dot));
            if (softcap > 0) score = k.let('capped', mul(f32(Math.fround(softcap)), tanh(div(score, f32(Math.fround(softcap))))));
            if (attnBias) score = k.let('biased', add(score, attnBias.load(add(biasRow, t))));
            sbuf.store(at(scores, t), score);
          });
          emitSoftmax(k, scores, start, causalLen, sink ? { sink } : {});
          emitWeightedSum(k, scores, start, causalLen, presentV, (t) => add(kvBase, mul(t, headSize)),
            { buf: out, base: mul(add(mul(add(mul(b, seq), s), heads), n), headSize) }, headSize);
        });
      });
    });
    return k.build();
  },
  args(node, shapes) {
    const l = layout(node, shapes);
    return [l.batch, l.seq, l.heads, l.kvHeads, l.headSize, l.qWidth, l.pastBuffer, l.presentLen, l.rotaryDim, l.cacheRows, ...l.biasArgs];
  },
  scratchBytes(node, shapes) {
    const l = layout(node, shapes);
    return 4 * (l.batch * l.heads * l.seq * l.headSize + l.presentLen);
  },
};
