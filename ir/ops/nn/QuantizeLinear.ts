import { type DType, integerRange, isFloat } from '../../dtype.js';
import { type MiniFloat, roundToMiniFloat } from '../../float.js';
import { Tensor, convertNumber } from '../../tensor.js';
import type { Attrs } from '../attrs.js';
import type { OpDef } from '../types.js';
import { dtypeAttr, requireFloat, requireInput, roundHalfEven } from './common.js';
import { INTEGER_QUANT_TYPES, checkParamShape, isQuantType, paramIndex, promoteFloat, quantAxis } from './quant.js';

/**
 * y = saturate(round(x / y_scale) + y_zero_point), per tensor, per axis or blocked
 * (block_size, opset 21+). Integer targets round half to even and clip; float8 targets
 * cast (saturating unless saturate=0); float4 adds the zero point then casts.
 * The output type is the zero point's, else output_dtype, else uint8.
 */
function outputDtype(attrs: Attrs, zeroPoint: DType | undefined): DType {
  const code = attrs.int('output_dtype', 0);
  const requested = code ? dtypeAttr(attrs, 'output_dtype', code) : undefined;
  if (zeroPoint && requested && zeroPoint !== requested) {
    throw attrs.error(`output_dtype ${requested} differs from the zero point type ${zeroPoint}`);
  }
  const dtype = zeroPoint ?? requested ?? 'u8';
  if (!isQuantType(dtype)) throw attrs.error(`${dtype} is not a supported quantized type`);
  return dtype;
}

export const QuantizeLinear: OpDef = {
  domain: '',
  op: 'QuantizeLinear',
  infer(ctx) {
    const x = requireInput(ctx, 0, 'x');
    const scale = requireInput(ctx, 1, 'y_scale');
    requireFloat(ctx.attrs, x.dtype, 'x');
    const zeroPoint = ctx.inputs[2];
    const dtype = outputDtype(ctx.attrs, zeroPoint?.dtype);
    if (x.shape) {
      const axis = quantAxis(ctx.attrs, x.shape.length);
      const blockSize = ctx.attrs.int('block_size', 0);
      if (scale.shape) checkParamShape(ctx.attrs, 'y_scale', scale.shape, x.shape, axis, blockSize);
      if (zeroPoint?.shape) checkParamShape(ctx.attrs, 'y_zero_point', zeroPoint.shape, x.shape, axis, blockSize);
    }
    return [{ type: { dtype, shape: x.shape ? [...x.shape] : undefined } }];
  },
  evaluate(ctx) {
    const [x, scale, zeroPoint] = ctx.inputs;
    if (!x || !scale) throw ctx.attrs.error('x and y_scale are required');
    const dtype = outputDtype(ctx.attrs, zeroPoint?.dtype);
    const axis = quantAxis(ctx.attrs, x.rank);
    const blockSize = ctx.attrs.int('block_size', 0);
    if (blockSize < 0) throw ctx.attrs.error(`block_size must be >= 0, got ${blockSize}`);
    const saturate = ctx.attrs.int('saturate', 1) !== 0;
    const precisionCode = ctx.opset >= 23 ? ctx.attrs.int('precision', 0) : 0;
    const precision = precisionCode ? dtypeAttr(ctx.attrs, 'precision', precisionCode) : promoteFloat(x.dtype, scale.dtype);
    const scaleIndex = paramIndex(ctx.attrs, 'y_scale', scale, x, axis, blockSize);
    const zpIndex = zeroPoint ? paramIndex(ctx.attrs, 'y_zero_point', zeroPoint, x, axis, blockSize) : undefined;
    const xv = x.numbers();
    const sv = scale.numbers();
    const zv = zeroPoint?.numbers();
    const out = Tensor.zeros(dtype, x.shape);
    const data = out.numbers();
    const isInteger = INTEGER_QUANT_TYPES.includes(dtype);
    const [lo, hi] = isInteger ? integerRange(dtype) : [0, 0];
    for (let e = 0; e < xv.length; e++) {
      // The division happens in the computation precision, as the spec's reference does.
      const q = convertNumber(precision, convertNumber(precision, xv[e]) / convertNumber(precision, sv[scaleIndex[e]]));
      const zp = zv && zpIndex ? zv[zpIndex[e]] : 0;
      if (isInteger) {
        data[e] = Number.isNaN(q) ? lo : Math.min(hi, Math.max(lo, roundHalfEven(q) + zp));
      } else if (dtype === 'f4e2m1') {
        data[e] = roundToMiniFloat('f4e2m1', q + zp);
      } else if (isFloat(dtype)) {
        // float8: the zero point must be zero (the reference ignores it).
        data[e] = roundToMiniFloat(dtype as MiniFloat, q, saturate);
      }
    }
    return [out];
  },
};
