import { integerRange } from '../../dtype.js';
import { Tensor, convertNumber } from '../../tensor.js';
import type { OpDef } from '../types.js';
import { matmulShape, matmulValues, requireInput, roundHalfEven } from './common.js';
import { subtractZeroPoint } from './MatMulInteger.js';

/**
 * Quantized matmul: y = saturate(round((A - a_zp)(B - b_zp) * a_scale * b_scale / y_scale) + y_zp).
 * The integer product is exact; the combined multiplier is computed in the scales' float
 * type (as the reference does), the rest in f64. Scales: scalars, or A's per row / B's and
 * y's per column.
 */
export const QLinearMatMul: OpDef = {
  domain: '',
  op: 'QLinearMatMul',
  infer(ctx) {
    const a = requireInput(ctx, 0, 'a');
    const b = requireInput(ctx, 3, 'b');
    requireInput(ctx, 1, 'a_scale');
    requireInput(ctx, 4, 'b_scale');
    requireInput(ctx, 6, 'y_scale');
    const yZero = ctx.inputs[7];
    const dtype = yZero?.dtype ?? a.dtype;
    for (const t of [a.dtype, b.dtype, dtype]) {
      if (t !== 'u8' && t !== 'i8') throw ctx.attrs.error(`quantized tensors must be u8 or i8, got ${t}`);
    }
    const shape = a.shape && b.shape ? matmulShape(ctx.attrs, a.shape, b.shape) : undefined;
    return [{ type: { dtype, shape } }];
  },
  evaluate(ctx) {
    const [a, aScale, aZero, b, bScale, bZero, yScale, yZero] = ctx.inputs;
    if (!a || !aScale || !b || !bScale || !yScale) throw ctx.attrs.error('a, a_scale, b, b_scale and y_scale are required');
    const av = subtractZeroPoint(ctx.attrs, 'a_zero_point', a, aZero, 'rows');
    const bv = subtractZeroPoint(ctx.attrs, 'b_zero_point', b, bZero, 'cols');
    const { shape, values } = matmulValues(ctx.attrs, av, a.shape, bv, b.shape);
    const dtype = yZero?.dtype ?? a.dtype;
    const [lo, hi] = integerRange(dtype);
    const scaleType = aScale.dtype;
    const n = shape.length >= 1 && b.rank >= 2 ? shape[shape.length - 1] : 1;
    const m = a.rank >= 2 ? a.shape[a.rank - 2] : 1;
    const pick = (t: Tensor | undefined, i: number, j: number, perRow: boolean): number => {
      if (!t) return 0;
      if (t.size === 1) return t.get(0);
      const index = perRow ? i : j;
      if (t.rank !== 1 || t.size !== (perRow ? m : n)) {
        throw ctx.attrs.error(`quantization parameters must be scalars or 1-D per ${perRow ? 'row' : 'column'}`);
      }
      return t.get(index);
    };
    const out = new Float64Array(values.length);
    for (let e = 0; e < values.length; e++) {
      const j = e % n;
      const i = Math.floor(e / n) % m;
      const multiplier = convertNumber(scaleType,
        convertNumber(scaleType, pick(aScale, i, j, true) * pick(bScale, i, j, false)) / pick(yScale, i, j, false));
      const y = roundHalfEven(values[e] * multiplier + pick(yZero, i, j, false));
      out[e] = Math.min(hi, Math.max(lo, y));
    }
    return [Tensor.fromNumbers(dtype, shape, out)];
  },
};
