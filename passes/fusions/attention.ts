import type { Dim, Node } from '../../ir/graph.js';
import type { RewriteContext } from '../rewrite/context.js';
import { int64s } from '../rewrite/context.js';
import { anyOf, capture, constant, op, type Match, type Pattern } from '../rewrite/pattern.js';
import { patternRule, type RewriteRule } from '../rewrite/rewriter.js';
import { MS, floatAttr, intAttrOf, makeNode, scalarOf } from './common.js';

/**
 * Scaled dot-product attention written out in primitive ops (torch.onnx eager attention,
 * tf2onnx) into one com.microsoft MultiHeadAttention:
 *
 *   q, k, v [B, S, D] → Reshape [B, S, N, H] → Transpose (0,2,1,3)      (k: to (0,2,3,1), or
 *   (0,2,1,3) then (0,1,3,2)) → MatMul(q, kᵀ) → Div by c or Mul by c (optional) → Add mask
 *   (optional, additive, float) → Softmax(last axis) → MatMul(·, v) → Transpose (0,2,1,3) → Reshape [B, S, D]
 *
 * The mask must be [S, T], [1|B, S, T] or [1|B, 1|N, S, T] (MultiHeadAttention's
 * attention_bias; lower ranks get an Unsqueeze). Reshape shapes may be computed (Shape/Gather/
 * Concat chains): the inferred output shapes are checked instead. Not matched: a KV cache
 * concatenated inside the pattern, grouped K/V heads (repeat_kv), a scale applied to q or k.
 */

function permIs(perm: readonly number[]): (node: Node) => boolean {
  return (node) => {
    const a = node.attributes.get('perm');
    return a?.kind === 'ints' && a.value.length === perm.length && a.value.every((v, i) => v === perm[i]);
  };
}

const splitHeads = (value: string): Pattern =>
  op('Reshape', [capture(value), capture(`${value}Shape`)], { name: `${value}Reshape` });

const heads = (value: string): Pattern => op('Transpose', [splitHeads(value)], { where: permIs([0, 2, 1, 3]) });

const keysTransposed = anyOf(
  op('Transpose', [splitHeads('k')], { where: permIs([0, 2, 3, 1]) }),
  op('Transpose', [heads('k')], { where: permIs([0, 1, 3, 2]) }),
);

const scores = op('MatMul', [heads('q'), keysTransposed]);
const scaled = anyOf(
  op('Div', [scores, constant('divisor', (t) => t.size === 1)]),
  op('Mul', [scores, constant('factor', (t) => t.size === 1)], { commutative: true }),
  scores,
);
const masked = anyOf(op('Add', [scaled, capture('mask')], { commutative: true }), scaled);
const probs = op('Softmax', [masked], { name: 'softmax' });
const context = op('MatMul', [probs, heads('v')]);
const merged = op('Reshape', [op('Transpose', [context], { where: permIs([0, 2, 1, 3]) }), capture('outShape')]);

interface Layout {
  batch: Dim;
  seq: Dim;
  kvSeq: Dim;
  numHeads: number;
  headSize: number;
}

/** [B, S, D] split as [B, S, N, H] by the Reshape: returns N and H when they are static. */
function headsOf(m: Match, ctx: RewriteContext, value: string): { shape: Dim[]; n: number; h: number } | undefined {
  const input = ctx.shape(m.values.get(value)!);
  const reshaped = ctx.shape(m.nodes.get(`${value}Reshape`)!.outputs[0]);
  if (!input || !reshaped || input.length !== 3 || reshaped.length !== 4) return undefined;
  const [n, h] = [reshaped[2], reshaped[3]];
  if (typeof n !== 'number' || typeof h !== 'number' || reshaped[0] !== input[0] || reshaped[1] !== input[1]) return undefined;
  if (input[2] !== n * h) return undefined;
  return { shape: input, n, h };
}

function layoutOf(m: Match, ctx: RewriteContext): Layout | undefined {
  const q = headsOf(m, ctx, 'q'), k = headsOf(m, ctx, 'k'), v = headsOf(m, ctx, 'v');
  if (!q || !k || !v || q.n !== k.n || q.n !== v.n || q.h !== k.h || q.h !== v.h) return undefined;
  if (k.shape[0] !== q.shape[0] || v.shape[0] !== q.shape[0] || k.shape[1] !== v.shape[1]) return undefined;
  return { batch: q.shape[0], seq: q.shape[1], kvSeq: k.shape[1], numHeads: q.n, headSize: q.h };
}

function scaleOf(m: Match): number | undefined {
  const divisor = scalarOf(m.constants.get('divisor'));
  if (divisor !== undefined) return divisor === 0 ? undefined : 1 / divisor;
  const factor = scalarOf(m.constants.get('factor'));
  return factor ?? 1;
}

/** The mask's rank when it is an additive float mask MultiHeadAttention can take, else undefined. */
function maskRank(m: Match, ctx: RewriteContext, layout: Layout): number | undefined {
  const mask = m.values.get('mask')!;
  const type = ctx.type(mask);
  if (!type?.shape || type.dtype !== ctx.dtype(m.values.get('q')!)) return undefined;
  const shape = type.shape;
  const rank = shape.length;
  if (rank < 2 || rank > 4 || shape[rank - 2] !== layout.seq || shape[rank - 1] !== layout.kvSeq) return undefined;
  if (rank >= 3 && shape[0] !== 1 && shape[0] !== layout.batch) return undefined;
  if (rank === 4 && shape[1] !== 1 && shape[1] !== layout.numHeads) return undefined;
  if (rank === 3 && shape[0] !== 1 && shape[0] !== layout.batch) return undefined;
  return rank;
}

function softmaxOnLastAxis(m: Match, ctx: RewriteContext): boolean {
  const softmax = m.nodes.get('softmax')!;
  const axis = intAttrOf(softmax, 'axis', ctx.opset('') >= 13 ? -1 : 1);
  return axis === -1 || axis === 3;
}

const attention = patternRule({
  name: 'attention',
  pattern: merged,
  check: (m, ctx) => {
    const layout = layoutOf(m, ctx);
    if (!layout || !softmaxOnLastAxis(m, ctx) || scaleOf(m) === undefined) return false;
    const dtype = ctx.dtype(m.values.get('q')!);
    if (!dtype || !['f32', 'f16'].includes(dtype) || ['k', 'v'].some((v) => ctx.dtype(m.values.get(v)!) !== dtype)) return false;
    const out = ctx.shape(m.root.outputs[0]);
    if (!out || out.length !== 3 || out[0] !== layout.batch || out[1] !== layout.seq || out[2] !== layout.numHeads * layout.headSize) return false;
    return !m.values.has('mask') || maskRank(m, ctx, layout) !== undefined;
  },
  replace: (m, ctx) => {
    const layout = layoutOf(m, ctx)!;
    const nodes: Node[] = [];
    let bias = '';
    if (m.values.has('mask')) {
      bias = m.values.get('mask')!;
      const rank = maskRank(m, ctx, layout)!;
      if (rank < 4) {
        const axes = rank === 2 ? [0, 1] : [1];
        const unsqueezed = ctx.freshName(`${bias}_4d`);
        nodes.push(ctx.opset('') >= 13
          ? makeNode(ctx, `${m.root.name}_mask_4d`, 'Unsqueeze', '', [bias, ctx.addConstant(`${m.root.name}_mask_axes`, int64s(axes))], [unsqueezed])
          : makeNode(ctx, `${m.root.name}_mask_4d`, 'Unsqueeze', '', [bias], [unsqueezed], { axes }));
        bias = unsqueezed;
      }
    }
    ctx.useDomain(MS);
    nodes.push(makeNode(ctx, `${m.root.name}_mha`, 'MultiHeadAttention', MS,
      [m.values.get('q')!, m.values.get('k')!, m.values.get('v')!, '', '', bias],
      [m.root.outputs[0]], { num_heads: layout.numHeads, scale: floatAttr(scaleOf(m)!) }));
    return nodes;
  },
});

export const attentionRules: RewriteRule[] = [attention];
