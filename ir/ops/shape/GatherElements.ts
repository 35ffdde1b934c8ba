import type { OpDef } from '../types.js';
import { forEachIndex, inputTensor, inputType, outputInfo, resolveAxis, stridesOf, takeElements } from './common.js';

/** GatherElements: out[i…] = data[i… with index[i…] on `axis`]; the output has the indices' shape. */
export const GatherElements: OpDef = {
  domain: '',
  op: 'GatherElements',
  infer(ctx) {
    const data = inputType(ctx, 0);
    const indices = inputType(ctx, 1);
    return [outputInfo(data.dtype, indices.shape ? [...indices.shape] : undefined)];
  },
  evaluate(ctx) {
    const data = inputTensor(ctx, 0);
    const indices = inputTensor(ctx, 1);
    if (indices.rank !== data.rank) throw ctx.attrs.error(`indices rank ${indices.rank} differs from data rank ${data.rank}`);
    const axis = resolveAxis(ctx, ctx.attrs.int('axis', 0), data.rank);
    const dim = data.shape[axis];
    const strides = stridesOf(data.shape);
    const picks = indices.numbers();
    const source = new Int32Array(indices.size);
    forEachIndex(indices.shape, (index, flat) => {
      let p = picks[flat];
      if (p < -dim || p >= dim) throw ctx.attrs.error(`GatherElements index ${p} is out of range for axis size ${dim}`);
      if (p < 0) p += dim;
      let o = 0;
      for (let d = 0; d < index.length; d++) {
        const at = d === axis ? p : index[d];
        if (d !== axis && at >= data.shape[d]) throw ctx.attrs.error('GatherElements indices shape exceeds the data shape');
        o += at * strides[d];
      }
      source[flat] = o;
    });
    return [takeElements(data, indices.shape, source)];
  },
};
