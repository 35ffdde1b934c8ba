import type { Expr } from '../../../codegen/kernel.js';
import { add, cast, div, f32, i32, mul, sqrt } from '../../../codegen/builder.js';
import type { Node } from '../../../ir/graph.js';
import type { LaunchShapes, WasmKernelDef } from '../kernel-def.js';
import type { Loc } from './attention-util.js';
import { emitCacheConcat, emitMsCore } from './ms-attention-util.js';
import { checkArenaTypes, declareIO, rankOf, scalars, shapeIn, intAttr, floatAttr } from './nn-util.js';


function layout(node: Node, shapes: LaunchShapes) {
  const [batch, seq, hidden] = shapeIn(shapes, 0);
  const key = shapeIn(shapes, 1), value = shapeIn(shapes, 2);
  const heads = intAttr(node, 'num_heads', 1);
  const bnsh = key.length === 4;
  const kvLen = bnsh ? key[2] : key[1];
  const vHidden = bnsh ? value[1] * value[3] : value[2];
  const past = shapes.inputs[6];
  const pastLen = past ? past[2] : 0;
  const mask = shapes.inputs[4];
  const hasStart = mask && mask.length === 1 && mask[0] === 2 * batch ? 1 : 0;
  const bias = shapes.inputs[5];
  const biasStrides = bias ? [bias[0] === 1 ? 0 : bias[1] * bias[2] * bias[3], bias[1] === 1 ? 0 : bias[2] * bias[3]] : [0, 0];
  return { batch, seq, hidden, vHidden, heads, headSize: hidden / heads, vHeadSize: vHidden / heads, kvLen, pastLen, total: pastLen + kvLen, hasStart, biasStrides };
}

/**
 * com.microsoft MultiHeadAttention (ORT CPU): query (B,S,D); key/value (B,L,D)/(B,L,Dv) or
 * per-head (B,N,L,H); bias (Q, K, V parts; K/V parts only for 3-D key/value);
 * key_padding_mask; attention_bias; past_key/past_value → present_key/present_value.
 */
export const multiHeadAttentionKernel: WasmKernelDef = {
  domain: 'com.microsoft',
  op: 'MultiHeadAttention',
  check(ctx) {
    if (rankOf(ctx.inputs[0]) !== 3) return 'query must be 3-D; packed QKV is not supported';
    const kr = rankOf(ctx.inputs[1]), vr = rankOf(ctx.inputs[2]);
    if (!ctx.inputs[1] || !ctx.inputs[2] || kr !== vr || (kr !== 3 && kr !== 4)) return 'key and value must both be 3-D or 4-D (packed KV is not supported)';
    if (kr === 4 && ctx.inputs[6]) return 'past_key/past_value cannot be combined with 4-D key/value';
    if (!!ctx.inputs[6] !== !!ctx.inputs[7]) return 'past_key and past_value must be given together';
    const mask = ctx.inputs[4];
    if (mask && (mask.dtype !== 'i32' || !rankOf(mask) || rankOf(mask)! > 3)) return 'key_padding_mask must be int32 of rank 1 to 3';
    if (ctx.inputs[5] && rankOf(ctx.inputs[5]) !== 4) return 'attention_bias must be 4-D';
    if (ctx.node.outputs[3]) return 'output 3 (qk) is not supported';
    if (ctx.node.inputs.slice(8).some((n) => n)) return 'past_sequence_length / cache_indirection are not supported';
    return checkArenaTypes(ctx);
  },
  build(ctx) {
    const node = ctx.node;
    const bnsh = rankOf(ctx.inputs[1]) === 4;
    const { k, inputs, outputs, scratch } = declareIO(ctx, 'f32');
    const [query, key, value, bias, padMask, attnBias, pastKey, pastValue] = inputs;
    const [batch, seq, hidden, vHidden, heads, headSize, vHeadSize, kvLen, pastLen, total, hasStart, bsb, bsn] = scalars(k, 'p', 13);
    const sbuf = scratch!;
    const scores: Loc = { buf: sbuf, base: i32(0) };
    const kSize = k.let('k_size', mul(mul(mul(batch, heads), total), headSize));
    const keys: Loc = outputs[1] ? { buf: outputs[1], base: i32(0) } : { buf: sbuf, base: total };
    const values: Loc = outputs[2] ? { buf: outputs[2], base: i32(0) } : { buf: sbuf, base: outputs[1] ? total : add(total, kSize) };
    const withBias = (v: Expr, offset: Expr): Expr => (bias ? add(v, bias.load(offset)) : v);
    const freshK = (b: Expr, n: Expr, j: Expr, d: Expr): Expr => bnsh
      ? key!.load(add(mul(add(mul(add(mul(b, heads), n), kvLen), j), headSize), d))
      : withBias(key!.load(add(add(mul(add(mul(b, kvLen), j), hidden), mul(n, headSize)), d)), add(add(hidden, mul(n, headSize)), d));
    const freshV = (b: Expr, n: Expr, j: Expr, d: Expr): Expr => bnsh
      ? value!.load(add(mul(add(mul(add(mul(b, heads), n), kvLen), j), vHeadSize), d))
      : withBias(value!.load(add(add(mul(add(mul(b, kvLen), j), vHidden), mul(n, vHeadSize)), d)), add(add(mul(hidden, 2), mul(n, vHeadSize)), d));
    emitCacheConcat(k, keys, pastKey ? { buf: pastKey, base: i32(0) } : undefined, pastLen, freshK, batch, heads, total, headSize);
    emitCacheConcat(k, values, pastValue ? { buf: pastValue, base: i32(0) } : undefined, pastLen, freshV, batch, heads, total, vHeadSize);
    const scaleAttr = floatAttr(node, 'scale', 0);
    const scale = scaleAttr !== 0 ? f32(Math.fround(scaleAttr)) : k.let('scale', div(f32(1), sqrt(cast(headSize, 'f32'))));
    const out = outputs[0]!;
    emitMsCore(k, {
      batch, heads, seq, total, pastLen, headSize, vHeadSize, scale,
      q: (b, n, s, d) => withBias(query!.load(add(add(mul(add(mul(b, seq), s), hidden), mul(n, headSize)), d)), add(mul(n, headSize), d)),
      keys, values,
      mask: { index: padMask, rank: rankOf(ctx.inputs[4]) ?? 0, hasStart, filter: floatAttr(node, 'mask_filter_value', -10000), unidirectional: intAttr(node, 'unidirectional', 0) === 1 },
      bias: attnBias ? { buf: attnBias, batchStride: bsb, headStride: bsn } : undefined,
      out: (b, n, s) => ({ buf: out, base: add(mul(add(mul(b, seq), s), vHidden), mul(n, vHeadSize)) }),
      scores,
    });
    return k.build();
  },
  args(node, shapes) {
    const l = layout(node, shapes);
    return [l.batch, l.seq, l.hidden, l.vHidden, l.heads, l.headSize, l.vHeadSize, l.kvLen, l.pastLen, l.total, l.hasStart, ...l.biasStrides];
  },
  scratchBytes(node, shapes) {
    const l = layout(node, shapes);
    let floats = l.total;
    const cache = l.batch * l.heads * l.total;
    if (!node.outputs[1]) floats += cache * l.headSize;
    if (!node.outputs[2]) floats += cache * l.vHeadSize;
    return 4 * floats;
  },
};
