import type { OpDef } from '../types.js';
import { dimMul } from '../../dims.js';
import { forEachIndex, inputTensor, inputType, knownDims, outputInfo, stridesOf, takeElements } from './common.js';

/** Tile: repeats the input `repeats[i]` times along each axis i. */
export const Tile: OpDef = {
  domain: '',
  op: 'Tile',
  infer(ctx) {
    const input = inputType(ctx, 0);
    if (!input.shape) return [outputInfo(input.dtype, undefined)];
    const shape = input.shape;
    const repeats = knownDims(ctx, 1);
    if (!repeats) return [outputInfo(input.dtype, shape.map(() => ctx.symbols.fresh()))];
    if (repeats.length !== shape.length) throw ctx.attrs.error(`Tile repeats has ${repeats.length} entries for rank ${shape.length}`);
    return [outputInfo(input.dtype, shape.map((d, i) => dimMul(d, repeats[i])))];
  },
  evaluate(ctx) {
    const data = inputTensor(ctx, 0);
    const repeats = inputTensor(ctx, 1).toArray();
    if (repeats.length !== data.rank) throw ctx.attrs.error(`Tile repeats has ${repeats.length} entries for rank ${data.rank}`);
    if (repeats.some((r) => r < 0)) throw ctx.attrs.error(`Tile repeats [${repeats.join(',')}] has a negative entry`);
    const outShape = data.shape.map((d, i) => d * repeats[i]);
    const strides = stridesOf(data.shape);
    const source = new Int32Array(outShape.reduce((a, b) => a * b, 1));
    forEachIndex(outShape, (index, flat) => {
      let o = 0;
      for (let d = 0; d < index.length; d++) o += (index[d] % data.shape[d]) * strides[d];
      source[flat] = o;
    });
    return [takeElements(data, outShape, source)];
  },
};
