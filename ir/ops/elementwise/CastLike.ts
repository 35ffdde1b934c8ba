import type { OpDef } from '../types.js';
import { castKeepsShapeValue, castOptions, castTensor } from './convert.js';
import { requireInput, requireType, withShapeValue } from './common.js';

/** CastLike: Cast to the dtype of the second input (whose values are not read). */
export const CastLike: OpDef = {
  domain: '',
  op: 'CastLike',
  infer(ctx) {
    const input = requireType(ctx, 0);
    const like = requireType(ctx, 1);
    castOptions(ctx);
    const value = castKeepsShapeValue(input.dtype, like.dtype) ? ctx.shapeValue(0) : undefined;
    return [withShapeValue({ dtype: like.dtype, shape: input.shape }, value)];
  },
  evaluate(ctx) {
    const like = requireInput(ctx, 1);
    return [castTensor(requireInput(ctx, 0), like.dtype, castOptions(ctx))];
  },
};
