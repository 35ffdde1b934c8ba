import { Tensor } from '../../tensor.js';
import type { OpDef } from '../types.js';
import { dtypeAttr, requireFloat, requireInput } from './common.js';
import { checkRowParam, normalizationAxis, rowLayout, rowParamIndex } from './normalization.js';

/** Y = X / sqrt(mean(X^2) + epsilon) * scale over the dims from `axis` on (opset 23). */
export const RMSNormalization: OpDef = {
  domain: '',
  op: 'RMSNormalization',
  infer(ctx) {
    const x = requireInput(ctx, 0, 'X');
    const scale = requireInput(ctx, 1, 'scale');
    requireFloat(ctx.attrs, x.dtype, 'X');
    dtypeAttr(ctx.attrs, 'stash_type', ctx.attrs.int('stash_type', 1));
    if (x.shape) {
      const axis = normalizationAxis(ctx.attrs, x.shape.length);
      if (scale.shape) checkRowParam(ctx.attrs, 'scale', scale.shape, x.shape.slice(axis));
    }
    return [{ type: { dtype: x.dtype, shape: x.shape ? [...x.shape] : undefined } }];
  },
  evaluate(ctx) {
    const [x, scale] = ctx.inputs;
    if (!x || !scale) throw ctx.attrs.error('X and scale are required');
    const epsilon = ctx.attrs.float('epsilon', 1e-5);
    const axis = normalizationAxis(ctx.attrs, x.rank);
    const scaleIndex = rowParamIndex(ctx.attrs, 'scale', scale, x.shape.slice(axis));
    const { rows, cols } = rowLayout(x.shape, axis);
    const xv = x.numbers();
    const sv = scale.numbers();
    const y = new Float64Array(xv.length);
    for (let r = 0; r < rows; r++) {
      const base = r * cols;
      let sq = 0;
      for (let c = 0; c < cols; c++) sq += xv[base + c] ** 2;
      const inv = 1 / Math.sqrt(sq / cols + epsilon);
      for (let c = 0; c < cols; c++) y[base + c] = xv[base + c] * inv * sv[scaleIndex[c]];
    }
    return [Tensor.fromNumbers(x.dtype, x.shape, y)];
  },
};
