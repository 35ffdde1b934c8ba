import type { OpDef } from '../types.js';
import type { Dim } from '../../graph.js';
import { sizeOf } from '../../tensor.js';
import { inputTensor, inputType, outputInfo, stridesOf, takeElements } from './common.js';

/**
 * GatherND: each innermost index tuple of `indices` (length k) selects a slice of data;
 * the first `batch_dims` dims are shared by data and indices.
 * Output shape: indices.shape[:-1] ++ data.shape[batch_dims + k:].
 */
export const GatherND: OpDef = {
  domain: '',
  op: 'GatherND',
  infer(ctx) {
    const data = inputType(ctx, 0);
    const indices = inputType(ctx, 1);
    const batchDims = ctx.attrs.int('batch_dims', 0);
    if (!data.shape || !indices.shape) return [outputInfo(data.dtype, undefined)];
    const k = indices.shape[indices.shape.length - 1];
    if (typeof k !== 'number') return [outputInfo(data.dtype, undefined)];
    const shape: Dim[] = [...indices.shape.slice(0, -1), ...data.shape.slice(batchDims + k)];
    return [outputInfo(data.dtype, shape)];
  },
  evaluate(ctx) {
    const data = inputTensor(ctx, 0);
    const indices = inputTensor(ctx, 1);
    const b = ctx.attrs.int('batch_dims', 0);
    if (indices.rank < 1) throw ctx.attrs.error('GatherND indices must have rank >= 1');
    const k = indices.shape[indices.rank - 1];
    if (b < 0 || b >= Math.min(data.rank, indices.rank) || b + k > data.rank) {
      throw ctx.attrs.error(`GatherND batch_dims ${b} and index length ${k} do not fit data rank ${data.rank}`);
    }
    for (let d = 0; d < b; d++) {
      if (data.shape[d] !== indices.shape[d]) throw ctx.attrs.error(`GatherND batch dim ${d} differs between data and indices`);
    }
    const strides = stridesOf(data.shape);
    const sliceSize = sizeOf(data.shape.slice(b + k));
    const batchCount = sizeOf(data.shape.slice(0, b));
    const batchStride = b > 0 ? strides[b - 1] : 0;
    const tuplesPerBatch = sizeOf(indices.shape.slice(b, -1));
    const idx = indices.numbers();
    const outShape = [...indices.shape.slice(0, -1), ...data.shape.slice(b + k)];
    const source = new Int32Array(batchCount * tuplesPerBatch * sliceSize);
    let w = 0;
    for (let batch = 0; batch < batchCount; batch++) {
      for (let t = 0; t < tuplesPerBatch; t++) {
        const tuple = (batch * tuplesPerBatch + t) * k;
        let o = batch * batchStride;
        for (let j = 0; j < k; j++) {
          const dim = data.shape[b + j];
          let p = idx[tuple + j];
          if (p < -dim || p >= dim) throw ctx.attrs.error(`GatherND index ${p} is out of range for axis size ${dim}`);
          if (p < 0) p += dim;
          o += p * strides[b + j];
        }
        for (let i = 0; i < sliceSize; i++) source[w++] = o + i;
      }
    }
    return [takeElements(data, outShape, source)];
  },
};
