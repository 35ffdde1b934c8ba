import type { OpDef } from '../types.js';
import { cloneTensor, forEachIndex, inputTensor, inputType, outputInfo, resolveAxis, stridesOf } from './common.js';
import { reductionOf, scatterInto } from './scatter.js';

/** ScatterElements: out[i… with index[i…] on `axis`] = updates[i…] (or reduced with it). */
export const ScatterElements: OpDef = {
  domain: '',
  op: 'ScatterElements',
  infer(ctx) {
    const data = inputType(ctx, 0);
    return [outputInfo(data.dtype, data.shape ? [...data.shape] : undefined)];
  },
  evaluate(ctx) {
    const data = inputTensor(ctx, 0);
    const indices = inputTensor(ctx, 1);
    const updates = inputTensor(ctx, 2);
    const reduction = reductionOf(ctx);
    if (indices.rank !== data.rank || updates.rank !== data.rank || indices.shape.some((d, i) => d !== updates.shape[i])) {
      throw ctx.attrs.error('ScatterElements data, indices and updates must have equal ranks, indices and updates equal shapes');
    }
    const axis = resolveAxis(ctx, ctx.attrs.int('axis', 0), data.rank);
    const dim = data.shape[axis];
    const strides = stridesOf(data.shape);
    const picks = indices.numbers();
    const out = cloneTensor(data);
    forEachIndex(indices.shape, (index, flat) => {
      let p = picks[flat];
      if (p < -dim || p >= dim) throw ctx.attrs.error(`ScatterElements index ${p} is out of range for axis size ${dim}`);
      if (p < 0) p += dim;
      let o = 0;
      for (let d = 0; d < index.length; d++) {
        const at = d === axis ? p : index[d];
        if (d !== axis && at >= data.shape[d]) throw ctx.attrs.error('ScatterElements indices shape exceeds the data shape');
        o += at * strides[d];
      }
      scatterInto(ctx, out, o, updates, flat, reduction);
    });
    return [out];
  },
};
