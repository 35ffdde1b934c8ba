import { Tensor } from '../../tensor.js';
import type { OpDef } from '../types.js';
import { dtypeAttr, requireFloat, requireInput } from './common.js';
import { checkRowParam, normalizationAxis, reducedShape, rowLayout, rowParamIndex } from './normalization.js';

/**
 * Y = (X - mean) / sqrt(var + epsilon) * Scale + B over the dims from `axis` on; also
 * returns Mean and InvStdDev (reduced dims kept as 1), typed by stash_type.
 */
export const LayerNormalization: OpDef = {
  domain: '',
  op: 'LayerNormalization',
  infer(ctx) {
    const x = requireInput(ctx, 0, 'X');
    const scale = requireInput(ctx, 1, 'Scale');
    requireFloat(ctx.attrs, x.dtype, 'X');
    const stash = dtypeAttr(ctx.attrs, 'stash_type', ctx.attrs.int('stash_type', 1));
    if (!x.shape) {
      return [{ type: { dtype: x.dtype, shape: undefined } }, { type: { dtype: stash, shape: undefined } },
        { type: { dtype: stash, shape: undefined } }];
    }
    const axis = normalizationAxis(ctx.attrs, x.shape.length);
    const rowShape = x.shape.slice(axis);
    if (scale.shape) checkRowParam(ctx.attrs, 'Scale', scale.shape, rowShape);
    const bias = ctx.inputs[2];
    if (bias?.shape) checkRowParam(ctx.attrs, 'B', bias.shape, rowShape);
    const reduced = reducedShape(x.shape, axis);
    return [
      { type: { dtype: x.dtype, shape: [...x.shape] } },
      { type: { dtype: stash, shape: reduced } },
      { type: { dtype: stash, shape: [...reduced] } },
    ];
  },
  evaluate(ctx) {
    const [x, scale, bias] = ctx.inputs;
    if (!x || !scale) throw ctx.attrs.error('X and Scale are required');
    const epsilon = ctx.attrs.float('epsilon', 1e-5);
    const stash = dtypeAttr(ctx.attrs, 'stash_type', ctx.attrs.int('stash_type', 1));
    const axis = normalizationAxis(ctx.attrs, x.rank);
    const rowShape = x.shape.slice(axis);
    const scaleIndex = rowParamIndex(ctx.attrs, 'Scale', scale, rowShape);
    const biasIndex = bias ? rowParamIndex(ctx.attrs, 'B', bias, rowShape) : undefined;
    const { rows, cols } = rowLayout(x.shape, axis);
    const xv = x.numbers();
    const sv = scale.numbers();
    const bv = bias?.numbers();
    const y = new Float64Array(xv.length);
    const means = new Float64Array(rows);
    const invStd = new Float64Array(rows);
    for (let r = 0; r < rows; r++) {
      const base = r * cols;
      let sum = 0;
      for (let c = 0; c < cols; c++) sum += xv[base + c];
      const mean = sum / cols;
      let sq = 0;
      for (let c = 0; c < cols; c++) sq += (xv[base + c] - mean) ** 2;
      const inv = 1 / Math.sqrt(sq / cols + epsilon);
      means[r] = mean;
      invStd[r] = inv;
      for (let c = 0; c < cols; c++) {
        let v = (xv[base + c] - mean) * inv * sv[scaleIndex[c]];
        if (bv && biasIndex) v += bv[biasIndex[c]];
        y[base + c] = v;
      }
    }
    const reduced = reducedShape(x.shape, axis);
    return [
      Tensor.fromNumbers(x.dtype, x.shape, y),
      Tensor.fromNumbers(stash, reduced, means),
      Tensor.fromNumbers(stash, reduced, invStd),
    ];
  },
};
