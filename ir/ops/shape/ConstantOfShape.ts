import type { OpDef, OpContextBase } from '../types.js';
import { Tensor } from '../../tensor.js';
import type { Dim } from '../../graph.js';
import { MAX_SHAPE_VALUE_ELEMENTS, freshDims, inputTensor, inputType, knownDims, outputInfo } from './common.js';

/** The fill value: a one-element tensor attribute, f32 zero by default. */
function fillValue(ctx: OpContextBase): Tensor {
  if (!ctx.attrs.has('value')) return Tensor.scalar('f32', 0);
  const value = ctx.attrs.tensor('value');
  if (value.size !== 1) throw ctx.attrs.error(`ConstantOfShape value must hold one element, got ${value.size}`);
  return value;
}

/** ConstantOfShape: a tensor of the given shape filled with one value. */
export const ConstantOfShape: OpDef = {
  domain: '',
  op: 'ConstantOfShape',
  infer(ctx) {
    const value = fillValue(ctx);
    const shapeInput = inputType(ctx, 0);
    let shape: Dim[] | undefined = knownDims(ctx, 0);
    if (!shape) {
      const length = shapeInput.shape?.[0];
      shape = typeof length === 'number' ? freshDims(ctx, length) : undefined;
    }
    // A small integer fill of static length is itself a shape value (e.g. a vector of ones for Expand).
    let elements: Dim[] | undefined;
    if (shape && shape.length === 1 && typeof shape[0] === 'number' && shape[0] <= MAX_SHAPE_VALUE_ELEMENTS) {
      elements = new Array<Dim>(shape[0]).fill(value.get(0));
    } else if (shape && shape.length === 0) {
      elements = [value.get(0)];
    }
    return [outputInfo(value.dtype, shape, Array.isArray(value.data) ? undefined : elements)];
  },
  evaluate(ctx) {
    const value = fillValue(ctx);
    const shape = inputTensor(ctx, 0).toArray();
    if (shape.some((d) => d < 0 || !Number.isInteger(d))) {
      throw ctx.attrs.error(`ConstantOfShape shape [${shape.join(',')}] has a negative or non-integer dim`);
    }
    const out = Tensor.zeros(value.dtype, shape);
    if (Array.isArray(out.data)) out.data.fill((value.data as string[])[0]);
    else out.data.fill(value.get(0));
    return [out];
  },
};
