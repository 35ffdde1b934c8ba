import type { Dim } from '../../graph.js';
import { Tensor } from '../../tensor.js';
import { normalizeAxis } from '../util/shape.js';
import type { EvalContext, InferContext, OpDef, OutputInfo } from '../types.js';
import { input, inputType, requireFloat, inferredOutputs, declaredOutputs } from './common.js';

/**
 * SimplifiedLayerNormalization (RMSNorm), which ORT registers in the ai.onnx domain (and
 * exporters sometimes write as com.microsoft): y = x / sqrt(mean(x^2) + epsilon) * scale,
 * normalizing over the dims from `axis` on. Output 1 is inv_std_var (f32, kept dims as 1).
 */
function makeSimplifiedLayerNorm(domain: string): OpDef {
  return {
    domain,
    op: 'SimplifiedLayerNormalization',
    infer(ctx: InferContext): OutputInfo[] {
      const x = inputType(ctx, 0, 'X');
      requireFloat(ctx, x.dtype, 'X');
      let statShape: Dim[] | undefined;
      if (x.shape) {
        const axis = normalizeAxis(ctx.attrs.int('axis', -1), x.shape.length);
        statShape = x.shape.map((d, i) => (i < axis ? d : 1));
      }
      return inferredOutputs(ctx, [
        { type: { dtype: x.dtype, shape: x.shape } },
        { type: { dtype: 'f32', shape: statShape } },
      ]);
    },
    evaluate(ctx: EvalContext): Tensor[] {
      const x = input(ctx, 0, 'X');
      const scale = input(ctx, 1, 'scale');
      requireFloat(ctx, x.dtype, 'X');
      const axis = normalizeAxis(ctx.attrs.int('axis', -1), x.rank);
      const epsilon = ctx.attrs.float('epsilon', 1e-5);
      const norm = x.shape.slice(axis).reduce((a, b) => a * b, 1);
      if (scale.size !== norm) {
        throw ctx.attrs.error(`scale must have ${norm} elements (the normalized size), got ${scale.size}`);
      }
      const xs = x.numbers(), gs = scale.numbers();
      const rows = norm === 0 ? 0 : x.size / norm;
      const out = new Float64Array(x.size);
      const invStd = new Float64Array(rows);
      for (let r = 0; r < rows; r++) {
        const off = r * norm;
        let meanSquare = 0;
        for (let i = 0; i < norm; i++) meanSquare += xs[off + i] * xs[off + i];
        const denom = Math.sqrt(meanSquare / norm + epsilon);
        invStd[r] = 1 / denom;
        for (let i = 0; i < norm; i++) out[off + i] = (xs[off + i] / denom) * gs[i];
      }
      return declaredOutputs(ctx, [
        Tensor.fromNumbers(x.dtype, x.shape, out),
        Tensor.fromNumbers('f32', x.shape.map((d, i) => (i < axis ? d : 1)), invStd),
      ]);
    },
  };
}

export const simplifiedLayerNormalization = makeSimplifiedLayerNorm('');
export const simplifiedLayerNormalizationMs = makeSimplifiedLayerNorm('com.microsoft');
