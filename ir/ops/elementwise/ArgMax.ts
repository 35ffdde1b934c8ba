import { Tensor } from '../../tensor.js';
import type { Dim } from '../../graph.js';
import type { EvalContext, InferContext, OpDef } from '../types.js';
import { normalizeAxis } from '../util/shape.js';
import { requireInput, requireType, splitAtAxis, withNode } from './common.js';

/**
 * ArgMax / ArgMin: i64 indices along `axis` (default 0), keepdims (default 1), and
 * select_last_index to pick the last of equal extremes. NaN counts as the extreme
 * (numpy's rule), first occurrence unless select_last_index.
 */
type Kind = 'ArgMax' | 'ArgMin';

function inferArg(ctx: InferContext) {
  const input = requireType(ctx, 0);
  if (input.dtype === 'string') throw ctx.attrs.error(`${ctx.node.op} does not accept string inputs`);
  if (!input.shape) return [{ type: { dtype: 'i64' as const, shape: undefined } }];
  const rank = input.shape.length;
  const axis = withNode(ctx, () => normalizeAxis(ctx.attrs.int('axis', 0), rank));
  const keepdims = ctx.attrs.int('keepdims', 1) === 1;
  const shape: Dim[] = [];
  input.shape.forEach((d, i) => {
    if (i !== axis) shape.push(d);
    else if (keepdims) shape.push(1);
  });
  return [{ type: { dtype: 'i64' as const, shape } }];
}

function evaluateArg(ctx: EvalContext, kind: Kind): Tensor[] {
  const x = requireInput(ctx, 0);
  if (x.dtype === 'string') throw ctx.attrs.error(`${kind} does not accept string inputs`);
  const axis = withNode(ctx, () => normalizeAxis(ctx.attrs.int('axis', 0), x.rank));
  const keepdims = ctx.attrs.int('keepdims', 1) === 1;
  const selectLast = ctx.opset >= 12 && ctx.attrs.int('select_last_index', 0) === 1;
  const { outer, length, inner } = splitAtAxis(x.shape, axis);
  if (length === 0) throw ctx.attrs.error(`${kind} over an empty axis ${axis}`);
  const src = x.numbers();
  const better = kind === 'ArgMax' ? (a: number, b: number) => a > b : (a: number, b: number) => a < b;
  const out = new Float64Array(outer * inner);
  for (let o = 0; o < outer; o++) {
    for (let i = 0; i < inner; i++) {
      const base = o * length * inner + i;
      let best = 0;
      let bestValue = src[base];
      for (let k = 1; k < length; k++) {
        const v = src[base + k * inner];
        if (Number.isNaN(bestValue)) {
          if (selectLast && Number.isNaN(v)) best = k;
          continue;
        }
        if (Number.isNaN(v) || better(v, bestValue) || (selectLast && v === bestValue)) {
          best = k;
          bestValue = v;
        }
      }
      out[o * inner + i] = best;
    }
  }
  const shape = x.shape.flatMap((d, i) => (i !== axis ? [d] : keepdims ? [1] : []));
  return [Tensor.fromNumbers('i64', shape, out)];
}

export const argOps: OpDef[] = (['ArgMax', 'ArgMin'] as const).map((kind) => ({
  domain: '',
  op: kind,
  infer: inferArg,
  evaluate: (ctx: EvalContext) => evaluateArg(ctx, kind),
}));
