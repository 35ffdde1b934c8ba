import type { Dim } from '../../graph.js';
import { Tensor } from '../../tensor.js';
import type { Attrs } from '../attrs.js';
import type { EvalContext, InferContext, OpDef, OutputInfo } from '../types.js';
import { quantizeActivationsQ8 } from '../../../passes/dot/q8-math.js';
import { checkActivationType } from './LutPrecompute.js';

/**
 * llmcc.QuantizeActQ8(A) → (q, scales, sums), attr group_size. For A [..., K] (f32, f16 or
 * bf16), per row and block of group_size along K (the last block may be partial):
 *   q      [..., ceil(K/group_size)·group_size] i8: round-half-even(a / s) clamped to ±127, zero padded
 *   scales [..., ceil(K/group_size)] f32: s = fround(max|a| / 127)
 *   sums   [..., ceil(K/group_size)] i32: Σ q over the block
 * The activation side of llmcc.QuantMatMulQ8 (math: passes/dot/q8-math.ts).
 */

function groupSizeOf(attrs: Attrs): number {
  const groupSize = attrs.int('group_size');
  if (!(groupSize > 0)) throw attrs.error(`group_size must be positive, got ${groupSize}`);
  return groupSize;
}

export const QuantizeActQ8: OpDef = {
  domain: 'llmcc',
  op: 'QuantizeActQ8',
  infer(ctx: InferContext): OutputInfo[] {
    const a = ctx.inputs[0];
    if (!a) throw ctx.attrs.error('missing required input 0 \'A\'');
    checkActivationType(ctx.attrs, a.dtype, 'A');
    const groupSize = groupSizeOf(ctx.attrs);
    if (!a.shape) return [{ type: { dtype: 'i8', shape: undefined } }, { type: { dtype: 'f32', shape: undefined } }, { type: { dtype: 'i32', shape: undefined } }];
    if (a.shape.length < 1) throw ctx.attrs.error('A must have rank ≥ 1 ([..., K])');
    const lead = a.shape.slice(0, -1);
    const K = a.shape[a.shape.length - 1];
    let padded: Dim;
    let groups: Dim;
    if (typeof K === 'number') {
      groups = Math.ceil(K / groupSize);
      padded = groups * groupSize;
    } else {
      groups = ctx.symbols.fresh();
      padded = ctx.symbols.fresh();
    }
    return [
      { type: { dtype: 'i8', shape: [...lead, padded] } },
      { type: { dtype: 'f32', shape: [...lead, groups] } },
      { type: { dtype: 'i32', shape: [...lead, groups] } },
    ];
  },
  evaluate(ctx: EvalContext): Tensor[] {
    const a = ctx.inputs[0];
    if (!a) throw ctx.attrs.error('missing required input 0 \'A\'');
    checkActivationType(ctx.attrs, a.dtype, 'A');
    if (a.rank < 1) throw ctx.attrs.error('A must have rank ≥ 1 ([..., K])');
    const groupSize = groupSizeOf(ctx.attrs);
    const K = a.shape[a.rank - 1];
    const lead = a.shape.slice(0, -1);
    const M = K === 0 ? 0 : a.size / K;
    const groups = Math.ceil(K / groupSize);
    const result = quantizeActivationsQ8(a.numbers(), M, K, groupSize);
    return [
      new Tensor('i8', [...lead, groups * groupSize], result.q),
      new Tensor('f32', [...lead, groups], result.scales),
      new Tensor('i32', [...lead, groups], result.sums),
    ];
  },
};
