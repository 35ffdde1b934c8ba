import type { OpDef } from '../types.js';
import { Tensor } from '../../tensor.js';
import { dimProduct } from '../../dims.js';
import { inputTensor, inputType, outputInfo } from './common.js';

/** Size: the input's element count as an i64 scalar. */
export const Size: OpDef = {
  domain: '',
  op: 'Size',
  infer(ctx) {
    const shape = inputType(ctx, 0).shape;
    return [outputInfo('i64', [], shape ? [dimProduct(shape)] : [ctx.symbols.fresh()])];
  },
  evaluate(ctx) {
    return [Tensor.scalar('i64', inputTensor(ctx, 0).size)];
  },
};
