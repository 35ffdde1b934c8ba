import type { Tensor } from '../../tensor.js';
import { Tensor as TensorClass } from '../../tensor.js';
import type { Attrs } from '../attrs.js';
import type { OpDef } from '../types.js';
import { matmulShape, matmulValues, requireInput } from './common.js';

/** Subtracts a zero point that is a scalar, per row of A (`rows`) or per column of B (`cols`). */
export function subtractZeroPoint(attrs: Attrs, what: string, t: Tensor, zeroPoint: Tensor | undefined, along: 'rows' | 'cols'): Float64Array {
  const values = Float64Array.from(t.numbers());
  if (!zeroPoint) return values;
  const zp = zeroPoint.numbers();
  if (zeroPoint.size === 1) return values.map((v) => v - zp[0]);
  if (zeroPoint.rank !== 1 || t.rank < 2) throw attrs.error(`${what} must be a scalar or a 1-D per-${along === 'rows' ? 'row' : 'column'} vector`);
  const cols = t.shape[t.rank - 1];
  const rows = t.shape[t.rank - 2];
  const expected = along === 'rows' ? rows : cols;
  if (zeroPoint.size !== expected) throw attrs.error(`${what} has ${zeroPoint.size} elements, expected ${expected}`);
  for (let e = 0; e < values.length; e++) {
    const index = along === 'rows' ? Math.floor(e / cols) % rows : e % cols;
    values[e] -= zp[index];
  }
  return values;
}

/** Integer matrix product of (A - a_zero_point) and (B - b_zero_point), exact, as int32. */
export const MatMulInteger: OpDef = {
  domain: '',
  op: 'MatMulInteger',
  infer(ctx) {
    const a = requireInput(ctx, 0, 'A');
    const b = requireInput(ctx, 1, 'B');
    for (const t of [a, b]) {
      if (t.dtype !== 'u8' && t.dtype !== 'i8') throw ctx.attrs.error(`operands must be u8 or i8, got ${t.dtype}`);
    }
    const shape = a.shape && b.shape ? matmulShape(ctx.attrs, a.shape, b.shape) : undefined;
    return [{ type: { dtype: 'i32', shape } }];
  },
  evaluate(ctx) {
    const [a, b, aZero, bZero] = ctx.inputs;
    if (!a || !b) throw ctx.attrs.error('A and B are required');
    const av = subtractZeroPoint(ctx.attrs, 'a_zero_point', a, aZero, 'rows');
    const bv = subtractZeroPoint(ctx.attrs, 'b_zero_point', b, bZero, 'cols');
    const { shape, values } = matmulValues(ctx.attrs, av, a.shape, bv, b.shape);
    return [TensorClass.fromNumbers('i32', shape, values)];
  },
};
