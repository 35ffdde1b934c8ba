import type { OpDef } from '../types.js';
import { castKeepsShapeValue, castOptions, castTarget, castTensor } from './convert.js';
import { requireInput, requireType, withShapeValue } from './common.js';

/** Cast: converts every element to the `to` dtype (see convert.ts for the rules). */
export const Cast: OpDef = {
  domain: '',
  op: 'Cast',
  infer(ctx) {
    const input = requireType(ctx, 0);
    const to = castTarget(ctx);
    castOptions(ctx);
    const value = castKeepsShapeValue(input.dtype, to) ? ctx.shapeValue(0) : undefined;
    return [withShapeValue({ dtype: to, shape: input.shape }, value)];
  },
  evaluate(ctx) {
    return [castTensor(requireInput(ctx, 0), castTarget(ctx), castOptions(ctx))];
  },
};
