import type { OpDef, InferContext } from '../types.js';
import type { Dim } from '../../graph.js';
import { Tensor, sizeOf } from '../../tensor.js';
import { broadcastIndex, broadcastShapes } from '../util/shape.js';
import { copyElement, inputTensor, inputType, knownDims, outputInfo } from './common.js';

/**
 * Where over tracked shape vectors (exporters write Where(Equal(shape, -1), 1, shape)):
 * picks element-wise when the condition's elements are known numbers.
 */
function selectShapeValues(ctx: InferContext): Dim[] | undefined {
  const condition = ctx.shapeValue(0) ?? knownDims(ctx, 0);
  const x = knownDims(ctx, 1);
  const y = knownDims(ctx, 2);
  if (!condition || !x || !y || condition.some((c) => typeof c !== 'number')) return undefined;
  const n = Math.max(condition.length, x.length, y.length);
  if ([condition, x, y].some((v) => v.length !== n && v.length !== 1)) return undefined;
  const at = (v: Dim[], i: number): Dim => (v.length === 1 ? v[0] : v[i]);
  return Array.from({ length: n }, (_, i) => (at(condition, i) !== 0 ? at(x, i) : at(y, i)));
}

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
      return [outputInfo(x.dtype, broadcastShapes(condition.shape, x.shape, y.shape), selectShapeValues(ctx))];
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
