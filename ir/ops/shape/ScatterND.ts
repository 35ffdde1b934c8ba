import type { OpDef } from '../types.js';
import { sizeOf } from '../../tensor.js';
import { cloneTensor, inputTensor, inputType, outputInfo, stridesOf } from './common.js';
import { reductionOf, scatterInto } from './scatter.js';

/**
 * ScatterND: a copy of data where each index tuple (last dim of indices, length k)
 * addresses a slice data[tuple] that takes (or is reduced with) the matching slice of updates.
 */
export const ScatterND: OpDef = {
  domain: '',
  op: 'ScatterND',
  infer(ctx) {
    const data = inputType(ctx, 0);
    return [outputInfo(data.dtype, data.shape ? [...data.shape] : undefined)];
  },
  evaluate(ctx) {
    const data = inputTensor(ctx, 0);
    const indices = inputTensor(ctx, 1);
    const updates = inputTensor(ctx, 2);
    const reduction = reductionOf(ctx);
    if (indices.rank < 1) throw ctx.attrs.error('ScatterND indices must have rank >= 1');
    const k = indices.shape[indices.rank - 1];
    if (k > data.rank) throw ctx.attrs.error(`ScatterND index length ${k} exceeds data rank ${data.rank}`);
    const expected = [...indices.shape.slice(0, -1), ...data.shape.slice(k)];
    if (expected.length !== updates.rank || expected.some((d, i) => d !== updates.shape[i])) {
      throw ctx.attrs.error(`ScatterND updates shape [${updates.shape.join(',')}] should be [${expected.join(',')}]`);
    }
    const out = cloneTensor(data);
    const strides = stridesOf(data.shape);
    const sliceSize = sizeOf(data.shape.slice(k));
    const tuples = sizeOf(indices.shape.slice(0, -1));
    const idx = indices.numbers();
    for (let t = 0; t < tuples; t++) {
      let o = 0;
      for (let j = 0; j < k; j++) {
        const dim = data.shape[j];
        let p = idx[t * k + j];
        if (p < -dim || p >= dim) throw ctx.attrs.error(`ScatterND index ${p} is out of range for axis size ${dim}`);
        if (p < 0) p += dim;
        o += p * strides[j];
      }
      for (let i = 0; i < sliceSize; i++) scatterInto(ctx, out, o + i, updates, t * sliceSize + i, reduction);
    }
    return [out];
  },
};
