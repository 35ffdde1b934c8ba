import type { OpDef } from '../types.js';
import { inputTensor, inputType, knownDims, outputInfo } from './common.js';

/** Identity: the input, unchanged (its tracked shape elements too). */
export const Identity: OpDef = {
  domain: '',
  op: 'Identity',
  infer(ctx) {
    const t = inputType(ctx, 0);
    return [outputInfo(t.dtype, t.shape, knownDims(ctx, 0))];
  },
  evaluate(ctx) {
    return [inputTensor(ctx, 0)];
  },
};
