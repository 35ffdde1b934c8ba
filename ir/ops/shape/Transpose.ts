import type { OpDef, InferContext, EvalContext } from '../types.js';
import { forEachIndex, inputTensor, inputType, outputInfo, stridesOf, takeElements } from './common.js';

/** The permutation: the attribute, validated, or the reversed axes by default. */
function permutation(ctx: InferContext | EvalContext, rank: number): number[] {
  const perm = ctx.attrs.optionalInts('perm') ?? Array.from({ length: rank }, (_, i) => rank - 1 - i);
  const sorted = [...perm].sort((a, b) => a - b);
  if (perm.length !== rank || sorted.some((p, i) => p !== i)) {
    throw ctx.attrs.error(`perm [${perm.join(',')}] is not a permutation of ${rank} axes`);
  }
  return perm;
}

/** Transpose: output dim i is input dim perm[i]. */
export const Transpose: OpDef = {
  domain: '',
  op: 'Transpose',
  infer(ctx) {
    const input = inputType(ctx, 0);
    if (!input.shape) {
      const perm = ctx.attrs.optionalInts('perm');
      return [outputInfo(input.dtype, perm ? perm.map(() => ctx.symbols.fresh()) : undefined)];
    }
    const shape = input.shape;
    return [outputInfo(input.dtype, permutation(ctx, shape.length).map((p) => shape[p]))];
  },
  evaluate(ctx) {
    const data = inputTensor(ctx, 0);
    const perm = permutation(ctx, data.rank);
    const outShape = perm.map((p) => data.shape[p]);
    const inStrides = stridesOf(data.shape);
    const permutedStrides = perm.map((p) => inStrides[p]);
    const source = new Int32Array(data.size);
    forEachIndex(outShape, (index, flat) => {
      let o = 0;
      for (let i = 0; i < index.length; i++) o += index[i] * permutedStrides[i];
      source[flat] = o;
    });
    return [takeElements(data, outShape, source)];
  },
};
