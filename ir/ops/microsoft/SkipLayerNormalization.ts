import type { Dim } from '../../graph.js';
import { Tensor } from '../../tensor.js';
import type { EvalContext, InferContext, OpDef, OutputInfo } from '../types.js';
import { input, inputType, requireFloat, inferredOutputs, declaredOutputs } from './common.js';

/**
 * SkipLayerNormalization / SkipSimplifiedLayerNormalization (com.microsoft), as ORT's CPU
 * kernel: x = input + skip (+ bias), then LayerNorm (or RMSNorm) over the last axis.
 * Inputs: input (B,S,H) or (T,H); skip broadcast over leading dims (same size, (1,S,H) or
 * (S,H)); gamma (H); beta (H, LayerNorm only); bias (H).
 * Outputs: output, mean, inv_std_var (f32, shape [..., 1]), input_skip_bias_sum.
 */
function makeSkipNorm(op: string, simplified: boolean): OpDef {
  const biasIndex = simplified ? 3 : 4;
  return {
    domain: 'com.microsoft',
    op,
    infer(ctx: InferContext): OutputInfo[] {
      const x = inputType(ctx, 0, 'input');
      requireFloat(ctx, x.dtype, 'input');
      const statShape: Dim[] | undefined = x.shape ? [...x.shape.slice(0, -1), 1] : undefined;
      return inferredOutputs(ctx, [
        { type: { dtype: x.dtype, shape: x.shape } },
        { type: { dtype: 'f32', shape: statShape } },
        { type: { dtype: 'f32', shape: statShape } },
        { type: { dtype: x.dtype, shape: x.shape } },
      ]);
    },
    evaluate(ctx: EvalContext): Tensor[] {
      const x = input(ctx, 0, 'input');
      const skip = input(ctx, 1, 'skip');
      const gamma = input(ctx, 2, 'gamma');
      const beta = simplified ? undefined : ctx.inputs[3];
      const bias = ctx.inputs[biasIndex];
      requireFloat(ctx, x.dtype, 'input');
      if (x.rank < 2) throw ctx.attrs.error(`input must have rank 2 or 3, got rank ${x.rank}`);
      const hidden = x.shape[x.rank - 1];
      const epsilon = ctx.attrs.float('epsilon', 1e-12);
      if (skip.shape[skip.rank - 1] !== hidden || x.size % skip.size !== 0) {
        throw ctx.attrs.error(`skip shape [${skip.shape.join(',')}] does not broadcast to input [${x.shape.join(',')}]`);
      }
      for (const [t, name] of [[gamma, 'gamma'], [beta, 'beta'], [bias, 'bias']] as const) {
        if (t && t.size !== hidden) throw ctx.attrs.error(`${name} must have ${hidden} elements (hidden size), got ${t.size}`);
      }
      const xs = x.numbers(), ss = skip.numbers(), gs = gamma.numbers();
      const bs = beta?.numbers(), biases = bias?.numbers();
      const rows = x.size / hidden;
      const out = new Float64Array(x.size);
      const sum = new Float64Array(x.size);
      const means = new Float64Array(rows);
      const invStd = new Float64Array(rows);
      for (let r = 0; r < rows; r++) {
        const off = r * hidden;
        const skipOff = off % skip.size;
        let mean = 0, meanSquare = 0;
        for (let h = 0; h < hidden; h++) {
          let v = xs[off + h] + ss[skipOff + h];
          if (biases) v += biases[h];
          sum[off + h] = v;
          mean += v;
          meanSquare += v * v;
        }
        mean /= hidden;
        // ORT's formula: sqrt(E[x^2] - E[x]^2 + eps) (simplified: sqrt(E[x^2] + eps)).
        const denom = simplified ? Math.sqrt(meanSquare / hidden + epsilon)
          : Math.sqrt(meanSquare / hidden - mean * mean + epsilon);
        means[r] = mean;
        invStd[r] = 1 / denom;
        for (let h = 0; h < hidden; h++) {
          const centered = simplified ? sum[off + h] : sum[off + h] - mean;
          out[off + h] = (centered / denom) * gs[h] + (bs ? bs[h] : 0);
        }
      }
      const statShape = [...x.shape.slice(0, -1), 1];
      const results = [
        Tensor.fromNumbers(x.dtype, x.shape, out),
        Tensor.fromNumbers('f32', statShape, means),
        Tensor.fromNumbers('f32', statShape, invStd),
        Tensor.fromNumbers(x.dtype, x.shape, sum),
      ];
      return declaredOutputs(ctx, results);
    },
  };
}

export const skipLayerNormalization = makeSkipNorm('SkipLayerNormalization', false);
export const skipSimplifiedLayerNormalization = makeSkipNorm('SkipSimplifiedLayerNormalization', true);
