import type { OpDef, InferContext, EvalContext } from '../types.js';
import type { Dim } from '../../graph.js';
import { sizeOf } from '../../tensor.js';
import { divideProducts } from './factors.js';
import { freshDims, inputTensor, inputType, knownDims, outputInfo } from './common.js';

/** Opset 1-4 take the target shape as an attribute; later opsets as input 1. */
function targetFromAttribute(ctx: InferContext | EvalContext): number[] | undefined {
  return ctx.opset < 5 ? ctx.attrs.ints('shape') : undefined;
}

function allowZero(ctx: InferContext | EvalContext): boolean {
  return ctx.opset >= 14 && ctx.attrs.int('allowzero', 0) !== 0;
}

/**
 * Resolves 0 (copy the input dim unless allowzero) and -1 (whatever size is left) in a
 * target shape, statically or symbolically.
 */
function resolveTarget(
  ctx: InferContext | EvalContext,
  input: readonly Dim[] | undefined,
  target: readonly Dim[],
  fresh: () => Dim,
): Dim[] {
  const zeroCopies = !allowZero(ctx);
  let inferred = -1;
  const dims = target.map((t, i) => {
    if (t === -1) {
      if (inferred >= 0) throw ctx.attrs.error('Reshape target shape has more than one -1');
      inferred = i;
      return -1;
    }
    if (t === 0 && zeroCopies) {
      if (!input) return fresh();
      if (i >= input.length) throw ctx.attrs.error(`Reshape target dim ${i} is 0 but the input has rank ${input.length}`);
      return input[i];
    }
    if (typeof t === 'number' && (t < 0 || !Number.isInteger(t))) throw ctx.attrs.error(`Reshape target dim ${t} is invalid`);
    return t;
  });
  if (inferred >= 0) {
    if (zeroCopies === false && target.includes(0)) {
      throw ctx.attrs.error('Reshape with allowzero=1 cannot combine 0 and -1 in the target shape');
    }
    const others = dims.filter((_, i) => i !== inferred);
    if (!input) dims[inferred] = fresh();
    else if (others.some((d) => d === 0)) {
      throw ctx.attrs.error('Reshape cannot infer a -1 dim next to a zero-size dim');
    } else dims[inferred] = divideProducts(input, others);
  }
  return dims;
}

/** Reshape: same elements, new shape. */
export const Reshape: OpDef = {
  domain: '',
  op: 'Reshape',
  infer(ctx) {
    const input = inputType(ctx, 0);
    let target: Dim[] | undefined = targetFromAttribute(ctx) ?? knownDims(ctx, 1);
    if (!target) {
      const length = ctx.inputs[1]?.shape?.[0];
      if (typeof length !== 'number') return [outputInfo(input.dtype, undefined)];
      target = freshDims(ctx, length);
    }
    const shape = resolveTarget(ctx, input.shape, target, () => ctx.symbols.fresh());
    const dims = knownDims(ctx, 0);
    return [outputInfo(input.dtype, shape, dims)];
  },
  evaluate(ctx) {
    const data = inputTensor(ctx, 0);
    const target = targetFromAttribute(ctx) ?? inputTensor(ctx, 1).toArray();
    const shape = resolveTarget(ctx, data.shape, target, () => 0) as number[];
    if (shape.some((d) => !Number.isInteger(d) || d < 0) || sizeOf(shape) !== data.size) {
      throw ctx.attrs.error(
        `cannot reshape [${data.shape.join(',')}] (${data.size} elements) to [${target.join(',')}]`,
      );
    }
    return [data.reshape(shape)];
  },
};
