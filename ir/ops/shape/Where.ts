import type { OpDef } from '../types.js';
import { Tensor, sizeOf } from '../../tensor.js';
import { broadcastIndex, broadcastShapes } from '../util/shape.js';
import { copyElement, inputTensor, inputType, outputInfo } from './common.js';

/** Where: elementwise condition ? X : Y with numpy broadcasting of all three. */
export const Where: OpDef = {
  domain: '',
  op: 'Where',
  infer(ctx) {
    const condition = inputType(ctx, 0);
    const x = inputType(ctx, 1);
    const y = inputType(ctx, 2);
    if (x.dtype !== y.dtype) throw ctx.attrs.error(`Where X and Y have dtypes ${x.dtype} and ${y.dtype}`);
    if (!condition.shape || !x.shape || !y.shape) return [outputInfo(x.dtype, undefined)];
    try {
      return [outputInfo(x.dtype, broadcastShapes(condition.shape, x.shape, y.shape))];
    } catch {
      throw ctx.attrs.error(`Where inputs [${condition.shape}], [${x.shape}], [${y.shape}] cannot be broadcast`);
    }
  },
  evaluate(ctx) {
    const condition = inputTensor(ctx, 0);
    const x = inputTensor(ctx, 1);
    const y = inputTensor(ctx, 2);
    let shape: number[];
    try {
      shape = broadcastShapes(condition.shape, x.shape, y.shape) as number[];
    } catch {
      throw ctx.attrs.error(`Where inputs [${condition.shape}], [${x.shape}], [${y.shape}] cannot be broadcast`);
    }
    const out = Tensor.zeros(x.dtype, shape);
    const cMap = broadcastIndex(shape, condition.shape);
    const xMap = broadcastIndex(shape, x.shape);
    const yMap = broadcastIndex(shape, y.shape);
    const cond = condition.numbers();
    for (let i = 0; i < sizeOf(shape); i++) {
      if (cond[cMap[i]]) copyElement(out, i, x, xMap[i]);
      else copyElement(out, i, y, yMap[i]);
    }
    return [out];
  },
};
