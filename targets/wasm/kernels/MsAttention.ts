import type { Expr } from '../../../codegen/kernel.js';
import { add, div, f32, i32, mul, sqrt, cast } from '../../../codegen/builder.js';
import type { Node } from '../../../ir/graph.js';
import type { LaunchShapes, WasmKernelDef } from '../kernel-def.js';
import { emitGemmTile } from './MatMul.js';
import { emitCacheConcat, emitMsCore } from './ms-attention-util.js';
import type { Loc } from './attention-util.js';
import { arenaElem, checkArenaTypes, declareIO, rankOf, scalars, shapeIn, intAttr, floatAttr } from './nn-util.js';


function layout(node: Node, shapes: LaunchShapes) {
  const [batch, seq, inHidden] = shapeIn(shapes, 0);
  const width = shapeIn(shapes, 1)[1];
  const heads = intAttr(node, 'num_heads', 1);
  const sizesAttr = node.attributes.get('qkv_hidden_sizes');
  const [dq, dk, dv] = sizesAttr?.kind === 'ints' ? sizesAttr.value : [width / 3, width / 3, width / 3];
  const headSize = dq / heads, vHeadSize = dv / heads;
  const past = shapes.inputs[4];
  const pastLen = past ? past[3] : 0;
  const total = pastLen + seq;
  const mask = shapes.inputs[3];
  const hasStart = mask && mask.length === 1 && mask[0] === 2 * batch ? 1 : 0;
  const bias = shapes.inputs[5];
  const biasStrides = bias ? [bias[0] === 1 ? 0 : bias[1] * bias[2] * bias[3], bias[1] === 1 ? 0 : bias[2] * bias[3]] : [0, 0];
  return { batch, seq, inHidden, width, dq, dk, dv, heads, headSize, vHeadSize, pastLen, total, hasStart, biasStrides };
}

/**
 * com.microsoft Attention (GPT-2/BERT fused self-attention, as ORT's CPU kernel): QKV
 * projection (tiled f32 GEMM into scratch) + bias, split by qkv_hidden_sizes, past
 * (2, B, N, P, H) prepended → present, mask_index (1-D lengths / start-end, 2-D, 3-D),
 * unidirectional, mask_filter_value, attention_bias, scale.
 */
export const msAttentionKernel: WasmKernelDef = {
  domain: 'com.microsoft',
  op: 'Attention',
  check(ctx) {
    if (rankOf(ctx.inputs[0]) !== 3) return 'input must be 3-D (batch, sequence, hidden)';
    if (rankOf(ctx.inputs[1]) !== 2) return 'weights must be 2-D';
    if (intAttr(ctx.node, 'do_rotary', 0) !== 0) return 'do_rotary=1 is not supported';
    if (intAttr(ctx.node, 'past_present_share_buffer', 0) !== 0) return 'past_present_share_buffer=1 is not supported';
    const mask = ctx.inputs[3];
    if (mask && (mask.dtype !== 'i32' || !rankOf(mask) || rankOf(mask)! > 3)) return 'mask_index must be int32 of rank 1 to 3';
    if (ctx.inputs[5] && rankOf(ctx.inputs[5]) !== 4) return 'attention_bias must be 4-D';
    if (ctx.node.inputs.length > 6 && ctx.node.inputs.slice(6).some((n) => n)) return 'past_sequence_length and later inputs are not supported';
    // The template computes in f32 throughout: every tensor but mask_index must be a float.
    for (const [i, t] of ctx.inputs.entries()) {
      if (t && i !== 3 && arenaElem(t.dtype) !== 'f32') return `input ${i} has dtype ${t.dtype}; only float inputs are supported`;
    }
    for (const [i, t] of ctx.outputs.entries()) {
      if (ctx.node.outputs[i] && arenaElem(t.dtype) !== 'f32') return `output ${i} has dtype ${t.dtype}; only float outputs are supported`;
    }
    return checkArenaTypes(ctx);
  },
  build(ctx) {
    const node = ctx.node;
    const { k, inputs, outputs, scratch } = declareIO(ctx, 'f32');
    const [x, weights, bias, maskIndex, past, attnBias] = inputs;
    const [batch, seq, inHidden, width, dq, dk, heads, headSize, vHeadSize, pastLen, total, hasStart, bsb, bsn] = scalars(k, 'p', 14);
    const sbuf = scratch!;
    const rows = k.let('rows', mul(batch, seq));
    // Scratch: qkv at 0 (rows x width), one score row, then the K/V caches unless present is an output.
    const scores: Loc = { buf: sbuf, base: k.let('scores_base', mul(rows, width)) };
    const cacheSize = k.let('cache_size', mul(mul(mul(batch, heads), total), headSize));
    const cacheBase = k.let('cache_base', add(scores.base, total));
    const keys: Loc = outputs[1] ? { buf: outputs[1], base: i32(0) } : { buf: sbuf, base: cacheBase };
    const values: Loc = outputs[1] ? { buf: outputs[1], base: cacheSize } : { buf: sbuf, base: add(cacheBase, cacheSize) };

    emitGemmTile(k, x!, weights!, sbuf, i32(0), i32(0), i32(0), rows, width, inHidden);
    if (bias) {
      k.loop('r', 0, rows, (r) => {
        const row = k.let('row', mul(r, width));
        k.loop('c', 0, width, (c) => sbuf.store(add(row, c), add(sbuf.load(add(row, c)), bias.load(c))));
      });
    }
    const fresh = (offset: Expr, size: Expr) => (b: Expr, n: Expr, j: Expr, d: Expr): Expr =>
      sbuf.load(add(add(mul(add(mul(b, seq), j), width), add(offset, mul(n, size))), d));
    const pastHalf = k.let('past_half', mul(mul(mul(batch, heads), pastLen), headSize));
    emitCacheConcat(k, keys, past ? { buf: past, base: i32(0) } : undefined, pastLen, fresh(dq, headSize), batch, heads, total, headSize);
    emitCacheConcat(k, values, past ? { buf: past, base: pastHalf } : undefined, pastLen, fresh(k.let('v_offset', add(dq, dk)), vHeadSize), batch, heads, total, vHeadSize);
    const scaleAttr = floatAttr(node, 'scale', 0);
    const scale = scaleAttr !== 0 ? f32(Math.fround(scaleAttr)) : k.let('scale', div(f32(1), sqrt(cast(headSize, 'f32'))));
    const out = outputs[0]!;
    emitMsCore(k, {
      batch, heads, seq, total, pastLen, headSize, vHeadSize, scale,
      q: (b, n, s, d) => sbuf.load(add(add(mul(add(mul(b, seq), s), width), mul(n, headSize)), d)),
      keys, values,
      mask: { index: maskIndex, rank: rankOf(ctx.inputs[3]) ?? 0, hasStart, filter: floatAttr(node, 'mask_filter_value', -10000), unidirectional: intAttr(node, 'unidirectional', 0) === 1 },
      bias: attnBias ? { buf: attnBias, batchStride: bsb, headStride: bsn } : undefined,
      out: (b, n, s) => ({ buf: out, base: mul(add(mul(add(mul(b, seq), s), heads), n), vHeadSize) }),
      scores,
    });
    return k.build();
  },
  args(node, shapes) {
    const l = layout(node, shapes);
    return [l.batch, l.seq, l.inHidden, l.width, l.dq, l.dk, l.heads, l.headSize, l.vHeadSize, l.pastLen, l.total, l.hasStart, ...l.biasStrides];
  },
  scratchBytes(node, shapes) {
    const l = layout(node, shapes);
    let floats = l.batch * l.seq * l.width + l.total;
    if (!node.outputs[1]) floats += l.batch * l.heads * l.total * (l.headSize + l.vHeadSize);
    return 4 * floats;
  },
};
