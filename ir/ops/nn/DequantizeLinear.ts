import { type DType, isFloat } from '../../dtype.js';
import { Tensor } from '../../tensor.js';
import type { Attrs } from '../attrs.js';
import type { OpDef } from '../types.js';
import { dtypeAttr, requireInput } from './common.js';
import { checkParamShape, isQuantType, paramIndex, quantAxis } from './quant.js';

/**
 * y = (x - x_zero_point) * x_scale, per tensor, per axis or blocked. Computed in f32 as
 * the reference does, then cast to output_dtype (opset 23+) or the scale's type.
 * Float8/float4 inputs take no zero point (it must be zero).
 */
function outputDtype(attrs: Attrs, opset: number, scale: DType): DType {
  const code = opset >= 23 ? attrs.int('output_dtype', 0) : 0;
  const dtype = code ? dtypeAttr(attrs, 'output_dtype', code) : scale;
  if (!isFloat(dtype)) throw attrs.error(`output type must be a float type, got ${dtype}`);
  return dtype;
}

export const DequantizeLinear: OpDef = {
  domain: '',
  op: 'DequantizeLinear',
  infer(ctx) {
    const x = requireInput(ctx, 0, 'x');
    const scale = requireInput(ctx, 1, 'x_scale');
    if (!isQuantType(x.dtype) && x.dtype !== 'i32') throw ctx.attrs.error(`x must be a quantized type, got ${x.dtype}`);
    const zeroPoint = ctx.inputs[2];
    if (zeroPoint && zeroPoint.dtype !== x.dtype) {
      throw ctx.attrs.error(`x_zero_point type ${zeroPoint.dtype} differs from x type ${x.dtype}`);
    }
    const dtype = outputDtype(ctx.attrs, ctx.opset, scale.dtype);
    if (x.shape) {
      const axis = quantAxis(ctx.attrs, x.shape.length);
      const blockSize = ctx.attrs.int('block_size', 0);
      if (scale.shape) checkParamShape(ctx.attrs, 'x_scale', scale.shape, x.shape, axis, blockSize);
      if (zeroPoint?.shape) checkParamShape(ctx.attrs, 'x_zero_point', zeroPoint.shape, x.shape, axis, blockSize);
    }
    return [{ type: { dtype, shape: x.shape ? [...x.shape] : undefined } }];
  },
  evaluate(ctx) {
    const [x, scale, zeroPoint] = ctx.inputs;
    if (!x || !scale) throw ctx.attrs.error('x and x_scale are required');
    const dtype = outputDtype(ctx.attrs, ctx.opset, scale.dtype);
    const axis = quantAxis(ctx.attrs, x.rank);
    const blockSize = ctx.attrs.int('block_size', 0);
    if (blockSize < 0) throw ctx.attrs.error(`block_size must be >= 0, got ${blockSize}`);
    const scaleIndex = paramIndex(ctx.attrs, 'x_scale', scale, x, axis, blockSize);
    const useZeroPoint = zeroPoint !== undefined && !isFloat(x.dtype);
    const zpIndex = useZeroPoint ? paramIndex(ctx.attrs, 'x_zero_point', zeroPoint, x, axis, blockSize) : undefined;
    if (zeroPoint && !useZeroPoint && zeroPoint.numbers().some((z) => z !== 0)) {
      throw ctx.attrs.error(`x_zero_point must be zero for ${x.dtype} input`);
    }
    const xv = x.numbers();
    const sv = scale.numbers();
    const zv = zeroPoint?.numbers();
    const values = new Float64Array(xv.length);
    for (let e = 0; e < xv.length; e++) {
      const zp = zv && zpIndex ? zv[zpIndex[e]] : 0;
      // x - zero point in f32, times the scale in f32 (f64 for a f64 scale), like numpy.
      const product = Math.fround(xv[e] - zp) * sv[scaleIndex[e]];
      values[e] = scale.dtype === 'f64' ? product : Math.fround(product);
    }
    return [Tensor.fromNumbers(dtype, x.shape, values)];
  },
};
