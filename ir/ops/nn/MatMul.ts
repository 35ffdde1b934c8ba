import { Tensor } from '../../tensor.js';
import type { OpDef } from '../types.js';
import { matmulShape, matmulValues, requireInput } from './common.js';

/** numpy-style matrix product; accumulates in f64, rounds once to the output dtype. */
export const MatMul: OpDef = {
  domain: '',
  op: 'MatMul',
  infer(ctx) {
    const a = requireInput(ctx, 0, 'A');
    const b = requireInput(ctx, 1, 'B');
    if (a.dtype !== b.dtype) throw ctx.attrs.error(`operand dtypes differ: ${a.dtype} and ${b.dtype}`);
    const shape = a.shape && b.shape ? matmulShape(ctx.attrs, a.shape, b.shape) : undefined;
    return [{ type: { dtype: a.dtype, shape } }];
  },
  evaluate(ctx) {
    const [a, b] = ctx.inputs as Tensor[];
    const { shape, values } = matmulValues(ctx.attrs, a.numbers(), a.shape, b.numbers(), b.shape);
    return [Tensor.fromNumbers(a.dtype, shape, values)];
  },
};
