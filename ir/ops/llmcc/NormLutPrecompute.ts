import type { Dim, TensorType } from '../../graph.js';
import { Tensor } from '../../tensor.js';
import type { Attrs } from '../attrs.js';
import type { EvalContext, InferContext, OpDef, OutputInfo } from '../types.js';
import {
  checkActivationType, evaluatePrecompute, precomputeAttrs, precomputeOutputTypes,
} from './LutPrecompute.js';

/**
 * llmcc.NormLutPrecompute(x, gamma, beta?, skip?, skip_bias?) →
 *   (y, tables, table_scales, act_sums, skip_sum?)
 * attrs norm ('rms' | 'layer'), epsilon (default 1e-5), g, group_size, table (as LutPrecompute).
 *
 * A norm over the last axis fused with the table precompute, so activations are read once
 * (LUT Tensor Core's "RMSNorm writes the tables"):
 *   v = x (+ skip (+ skip_bias))            skip: [..., H] broadcast over leading rows
 *   rms:   y = v / sqrt(mean(v²) + ε) · gamma
 *   layer: y = (v − mean(v)) / sqrt(mean((v − mean)²) + ε) · gamma + beta
 * y is rounded to x's dtype, and the tables are built from that rounded y exactly as
 * LutPrecompute(y) would. Output 4 is v (the residual sum SkipLayerNormalization returns as
 * its output 3). Arithmetic is f64, like the norm ops of the reference interpreter; the
 * variance is the two-pass centered one (ORT's Skip*Normalization uses E[v²] − E[v]², equal
 * up to f64 rounding).
 */

type NormKind = 'rms' | 'layer';

function normKind(attrs: Attrs): NormKind {
  const norm = attrs.string('norm');
  if (norm !== 'rms' && norm !== 'layer') throw attrs.error(`attribute 'norm' must be 'rms' or 'layer', got '${norm}'`);
  return norm;
}

function checkRowParam(attrs: Attrs, what: string, type: TensorType | undefined, hidden: Dim | undefined): void {
  if (!type?.shape || hidden === undefined) return;
  const size = type.shape.reduce<number | undefined>((acc, d) => (acc === undefined || typeof d !== 'number' ? undefined : acc * d), 1);
  if (type.shape.length !== 1 || (typeof hidden === 'number' && size !== undefined && size !== hidden)) {
    throw attrs.error(`${what} must have shape [${hidden}] (the last axis), got [${type.shape.join(',')}]`);
  }
}

export const NormLutPrecompute: OpDef = {
  domain: 'llmcc',
  op: 'NormLutPrecompute',
  infer(ctx: InferContext): OutputInfo[] {
    const x = ctx.inputs[0];
    if (!x) throw ctx.attrs.error('missing required input 0 \'x\'');
    if (!ctx.inputs[1]) throw ctx.attrs.error('missing required input 1 \'gamma\'');
    checkActivationType(ctx.attrs, x.dtype, 'x');
    const norm = normKind(ctx.attrs);
    if (norm === 'rms' && ctx.inputs[2]) throw ctx.attrs.error('beta is only used with norm = \'layer\'');
    const hidden = x.shape ? x.shape[x.shape.length - 1] : undefined;
    checkRowParam(ctx.attrs, 'gamma', ctx.inputs[1], hidden);
    checkRowParam(ctx.attrs, 'beta', ctx.inputs[2], hidden);
    checkRowParam(ctx.attrs, 'skip_bias', ctx.inputs[4], hidden);
    if (ctx.inputs[4] && !ctx.inputs[3]) throw ctx.attrs.error('skip_bias needs skip');
    const skip = ctx.inputs[3];
    if (skip?.shape && hidden !== undefined) {
      const last = skip.shape[skip.shape.length - 1];
      if (typeof last === 'number' && typeof hidden === 'number' && last !== hidden) {
        throw ctx.attrs.error(`skip's last dim ${last} differs from x's ${hidden}`);
      }
    }
    const y: OutputInfo = { type: { dtype: x.dtype, shape: x.shape ? [...x.shape] : undefined } };
    const outputs = [y, ...precomputeOutputTypes(ctx, x, precomputeAttrs(ctx.attrs))];
    if (ctx.node.outputs.length > 4 && ctx.node.outputs[4]) {
      if (!skip) throw ctx.attrs.error('output 4 (skip_sum) needs the skip input');
      outputs.push({ type: { dtype: x.dtype, shape: x.shape ? [...x.shape] : undefined } });
    }
    return outputs;
  },
  evaluate(ctx: EvalContext): Tensor[] {
    const [x, gamma, beta, skip, skipBias] = ctx.inputs;
    if (!x || !gamma) throw ctx.attrs.error('x and gamma are required');
    checkActivationType(ctx.attrs, x.dtype, 'x');
    const norm = normKind(ctx.attrs);
    const p = precomputeAttrs(ctx.attrs);
    const epsilon = ctx.attrs.float('epsilon', 1e-5);
    if (x.rank < 1) throw ctx.attrs.error('x must have rank ≥ 1');
    const hidden = x.shape[x.rank - 1];
    for (const [t, name] of [[gamma, 'gamma'], [beta, 'beta'], [skipBias, 'skip_bias']] as const) {
      if (t && t.size !== hidden) throw ctx.attrs.error(`${name} must have ${hidden} elements (the last axis), got ${t.size}`);
    }
    if (norm === 'rms' && beta) throw ctx.attrs.error('beta is only used with norm = \'layer\'');
    if (skipBias && !skip) throw ctx.attrs.error('skip_bias needs skip');
    if (skip && (skip.shape[skip.rank - 1] !== hidden || skip.size === 0 || x.size % skip.size !== 0)) {
      throw ctx.attrs.error(`skip shape [${skip.shape.join(',')}] does not broadcast to x [${x.shape.join(',')}]`);
    }
    const xs = x.numbers(), gs = gamma.numbers();
    const bs = beta?.numbers(), ss = skip?.numbers(), sb = skipBias?.numbers();
    const rows = hidden === 0 ? 0 : x.size / hidden;
    const sum = new Float64Array(x.size);
    const out = new Float64Array(x.size);
    for (let r = 0; r < rows; r++) {
      const off = r * hidden;
      for (let h = 0; h < hidden; h++) {
        let v = xs[off + h];
        if (ss) v += ss[(off % ss.length) + h];
        if (sb) v += sb[h];
        sum[off + h] = v;
      }
      let mean = 0;
      if (norm === 'layer') {
        for (let h = 0; h < hidden; h++) mean += sum[off + h];
        mean /= hidden;
      }
      let sq = 0;
      for (let h = 0; h < hidden; h++) sq += (sum[off + h] - mean) ** 2;
      const denom = Math.sqrt(sq / hidden + epsilon);
      for (let h = 0; h < hidden; h++) out[off + h] = ((sum[off + h] - mean) / denom) * gs[h] + (bs ? bs[h] : 0);
    }
    const y = Tensor.fromNumbers(x.dtype, x.shape, out);
    const results = [y, ...evaluatePrecompute(ctx.attrs, y, p)];
    if (ctx.node.outputs.length > 4 && ctx.node.outputs[4]) results.push(Tensor.fromNumbers(x.dtype, x.shape, sum));
    return results;
  },
};
