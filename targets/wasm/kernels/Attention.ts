import type { Expr } from '../../../codegen/kernel.js';
import { add, cast, div, f32, ge, gt, i32, lt, max, mul, ne, sqrt, sub, tanh } from '../../../codegen/builder.js';
import type { Node } from '../../../ir/graph.js';
import type { LaunchShapes, WasmKernelDef } from '../kernel-def.js';
import { type Loc, at, emitDot, emitSoftmax, emitWeightedSum, fselect } from './attention-util.js';
import { checkArenaTypes, declareIO, imin, rankOf, scalars, shapeIn, stridesOf, intAttr, optionalFloatAttr } from './nn-util.js';


/** Heads, lengths and per-(b, head, position) element strides of Q/K/V at launch. */
function layout(node: Node, shapes: LaunchShapes) {
  const q = shapeIn(shapes, 0), kk = shapeIn(shapes, 1), v = shapeIn(shapes, 2);
  const past = shapes.inputs[4];
  if (q.length === 4) {
    const [batch, qHeads, qLen, headSize] = q;
    const [, kvHeads, kvLen] = kk;
    const vHeadSize = v[3];
    const s4 = (s: number[]): number[] => stridesOf(s).slice(0, 3);
    return { batch, qHeads, kvHeads, qLen, kvLen, headSize, vHeadSize, past: past ? past[2] : 0, qs: s4(q), ks: s4(kk), vs: s4(v) };
  }
  const qHeads = intAttr(node, 'q_num_heads', 1), kvHeads = intAttr(node, 'kv_num_heads', 1);
  const [batch, qLen, qHidden] = q;
  const [, kvLen, kHidden] = kk;
  const vHidden = v[2];
  const headSize = qHidden / qHeads, vHeadSize = vHidden / kvHeads;
  return {
    batch, qHeads, kvHeads, qLen, kvLen, headSize, vHeadSize, past: past ? past[2] : 0,
    qs: [qLen * qHidden, headSize, qHidden], ks: [kvLen * kHidden, headSize, kHidden], vs: [kvLen * vHidden, vHeadSize, vHidden],
  };
}

/**
 * ai.onnx Attention (opsets 23/24): GQA, 3-D/4-D inputs, bool/float masks (broadcast,
 * shorter masks padded with -inf), causal (bottom-right aligned), past/present KV cache,
 * nonpad_kv_seqlen, softcap, scale, all qk_matmul_output modes. Semantics follow
 * ir/ops/nn/Attention.ts: scores, softcap, + bias, NaN-propagating max, fully-masked rows
 * give zero probabilities. Scratch: one f32 score row, plus the K/V caches when the
 * present outputs are not requested.
 */
export const attentionKernel: WasmKernelDef = {
  domain: '',
  op: 'Attention',
  check(ctx) {
    const rank = rankOf(ctx.inputs[0]);
    if (rank !== 3 && rank !== 4) return 'Q, K and V must have a known rank of 3 or 4';
    if (rankOf(ctx.inputs[1]) !== rank || rankOf(ctx.inputs[2]) !== rank) return 'Q, K and V must have the same rank';
    if (rank === 3 && (!intAttr(ctx.node, 'q_num_heads', 0) || !intAttr(ctx.node, 'kv_num_heads', 0))) return '3-D inputs need q_num_heads and kv_num_heads';
    const mask = ctx.inputs[3];
    if (mask && (rankOf(mask) === undefined || rankOf(mask)! < 2 || rankOf(mask)! > 4)) return 'attn_mask must be 2-D to 4-D';
    if (!!ctx.inputs[4] !== !!ctx.inputs[5]) return 'past_key and past_value must be given together';
    const mode = intAttr(ctx.node, 'qk_matmul_output_mode', 0);
    if (mode < 0 || mode > 3) return `qk_matmul_output_mode ${mode} is not 0..3`;
    return checkArenaTypes(ctx);
  },
  build(ctx) {
    const node = ctx.node;
    const mode = intAttr(node, 'qk_matmul_output_mode', 0);
    const isCausal = intAttr(node, 'is_causal', 0) !== 0;
    const scaleAttr = optionalFloatAttr(node, 'scale');
    const softcap = optionalFloatAttr(node, 'softcap') ?? 0;
    const maskType = ctx.inputs[3]?.dtype;
    const { k, inputs, outputs, scratch } = declareIO(ctx, 'f32');
    const [q, kIn, vIn, mask, pastK, pastV, nonpad] = inputs;
    const [batch, qHeads, kvHeads, qLen, , pastLen, total, headSize, vHeadSize] = scalars(k, 'p', 9);
    const [qsb, qsh, qsi] = scalars(k, 'q_stride', 3);
    const [ksb, ksh, ksi] = scalars(k, 'k_stride', 3);
    const [vsb, vsh, vsi] = scalars(k, 'v_stride', 3);
    const [ysb, ysh, ysi] = scalars(k, 'y_stride', 3);
    const [msb, msh, msi, maskLen] = scalars(k, 'mask', 4);
    const sbuf = scratch!;
    const scores: Loc = { buf: sbuf, base: i32(0) };
    const kvSize = k.let('kv_size', mul(mul(batch, kvHeads), total));
    const presentK: Loc = outputs[1] ? { buf: outputs[1], base: i32(0) } : { buf: sbuf, base: total };
    const presentV: Loc = outputs[2] ? { buf: outputs[2], base: i32(0) } : { buf: sbuf, base: outputs[1] ? total : k.let('pv_base', add(total, mul(kvSize, headSize))) };

    // present = past ++ new along the sequence axis, [batch, kvHeads, total, size].
    const buildCache = (dst: Loc, past: typeof pastK, src: typeof kIn, size: Expr, sb: Expr, sh: Expr, si: Expr): void => {
      k.loop('b', 0, batch, (b) => k.loop('h', 0, kvHeads, (h) => {
        const bh = k.let('bh', add(mul(b, kvHeads), h));
        k.loop('j', 0, total, (j) => {
          const row = k.let('row', at(dst, mul(add(mul(bh, total), j), size)));
          const copy = (from: typeof src, base: Expr): void =>
            k.loop('d', 0, size, (d) => dst.buf.store(add(row, d), from!.load(add(base, d))));
          if (past) {
            k.if(lt(j, pastLen), () => copy(past, mul(add(mul(bh, pastLen), j), size)),
              () => copy(src, add(add(mul(b, sb), mul(h, sh)), mul(sub(j, pastLen), si))));
          } else {
            copy(src, add(add(mul(b, sb), mul(h, sh)), mul(j, si)));
          }
        });
      }), { parallel: true });
    };
    buildCache(presentK, pastK, kIn, headSize, ksb, ksh, ksi);
    buildCache(presentV, pastV, vIn, vHeadSize, vsb, vsh, vsi);

    const scale = scaleAttr !== undefined ? f32(Math.fround(scaleAttr)) : k.let('scale', div(f32(1), sqrt(cast(headSize, 'f32'))));
    const group = k.let('group', div(qHeads, kvHeads));
    const qk = outputs[3];
    k.loop('b', 0, batch, (b) => {
      const valid = nonpad ? k.let('nonpad_len', nonpad.load(b)) : total;
      // Causal offset: past length, or per batch from nonpad_kv_seqlen for an external cache.
      const offset = !pastK && nonpad ? k.let('offset', sub(valid, qLen)) : pastLen;
      k.loop('h', 0, qHeads, (h) => {
        const kvh = k.let('kvh', div(h, group));
        const cacheRow = k.let('cache_row', mul(add(mul(b, kvHeads), kvh), total));
        k.loop('i', 0, qLen, (i) => {
          const qBase = k.let('q_base', add(add(mul(b, qsb), mul(h, qsh)), mul(i, qsi)));
          const qkBase = k.let('qk_base', mul(add(mul(add(mul(b, qHeads), h), qLen), i), total));
          const rowMax = k.mut('row_max', f32(-Infinity));
          k.loop('j', 0, total, (j) => {
            const dot = emitDot(k, (d) => q!.load(add(qBase, d)), presentK.buf, at(presentK, mul(add(cacheRow, j), headSize)), headSize);
            let s = k.let('s', mul(dot, scale));
            if (softcap > 0) s = k.let('capped', mul(f32(Math.fround(softcap)), tanh(div(s, f32(Math.fround(softcap))))));
            let bias: Expr = f32(0);
            if (mask) {
              const mv = mask.load(add(add(add(mul(b, msb), mul(h, msh)), mul(i, msi)), imin(j, sub(maskLen, 1))));
              const value = maskType === 'bool' ? fselect(ne(mv, 0), 0, -Infinity) : mv;
              // Keys past a short mask are masked; guard the load's index too.
              bias = k.let('bias', fselect(lt(j, maskLen), value, -Infinity));
            }
            if (isCausal) bias = k.let('bias_c', add(bias, fselect(gt(j, add(i, offset)), -Infinity, 0)));
            if (nonpad) bias = k.let('bias_n', add(bias, fselect(ge(j, valid), -Infinity, 0)));
            const withBias = k.let('with_bias', add(s, bias));
            sbuf.store(j, withBias);
            if (qk && mode <= 1) qk.store(add(qkBase, j), s);
            if (qk && mode === 2) qk.store(add(qkBase, j), withBias);
            k.set(rowMax, max(rowMax, withBias));
          });
          emitSoftmax(k, scores, i32(0), total, { zeroWhenMasked: true, rowMax });
          if (qk && mode === 3) k.loop('j', 0, total, (j) => qk.store(add(qkBase, j), sbuf.load(j)));
          const yBase = k.let('y_base', add(add(mul(b, ysb), mul(h, ysh)), mul(i, ysi)));
          emitWeightedSum(k, scores, i32(0), total, presentV.buf,
            (t) => at(presentV, mul(add(cacheRow, t), vHeadSize)), { buf: outputs[0]!, base: yBase }, vHeadSize);
        });
      });
    });
    return k.build();
  },
  args(node, shapes) {
    const l = layout(node, shapes);
    const total = l.past + l.kvLen;
    const ys = shapeIn(shapes, 0).length === 4
      ? [l.qHeads * l.qLen * l.vHeadSize, l.qLen * l.vHeadSize, l.vHeadSize]
      : [l.qLen * l.qHeads * l.vHeadSize, l.vHeadSize, l.qHeads * l.vHeadSize];
    let maskArgs = [0, 0, 0, 0];
    const maskShape = shapes.inputs[3];
    if (maskShape) {
      const full = [...new Array<number>(4 - maskShape.length).fill(1), ...maskShape];
      const strides = stridesOf(full);
      maskArgs = [0, 1, 2].map((d) => (full[d] === 1 ? 0 : strides[d]));
      maskArgs.push(full[3]);
    }
    return [l.batch, l.qHeads, l.kvHeads, l.qLen, l.kvLen, l.past, total, l.headSize, l.vHeadSize,
      ...l.qs, ...l.ks, ...l.vs, ...ys, ...maskArgs];
  },
  scratchBytes(node, shapes) {
    const l = layout(node, shapes);
    const total = l.past + l.kvLen;
    const caches = l.batch * l.kvHeads * total;
    let floats = total;
    if (!node.outputs[1]) floats += caches * l.headSize;
    if (!node.outputs[2]) floats += caches * l.vHeadSize;
    return 4 * floats;
  },
};
