import type { OpDef } from '../types.js';
import { Tensor } from '../../tensor.js';
import { copyElement, inputTensor, inputType, outputInfo } from './common.js';

/**
 * Trilu: keeps the upper (j - i >= k) or lower (j - i <= k) triangle of the last two
 * dims and zeroes the rest.
 */
export const Trilu: OpDef = {
  domain: '',
  op: 'Trilu',
  infer(ctx) {
    const input = inputType(ctx, 0);
    if (input.shape && input.shape.length < 2) throw ctx.attrs.error(`Trilu needs rank >= 2, got ${input.shape.length}`);
    return [outputInfo(input.dtype, input.shape ? [...input.shape] : undefined)];
  },
  evaluate(ctx) {
    const data = inputTensor(ctx, 0);
    if (data.rank < 2) throw ctx.attrs.error(`Trilu needs rank >= 2, got ${data.rank}`);
    const kInput = ctx.inputs[1];
    if (kInput && kInput.size !== 1) throw ctx.attrs.error('Trilu k must be a scalar');
    const k = kInput ? kInput.get(0) : 0;
    const upper = ctx.attrs.int('upper', 1) !== 0;
    const rows = data.shape[data.rank - 2];
    const cols = data.shape[data.rank - 1];
    const out = Tensor.zeros(data.dtype, data.shape);
    for (let flat = 0; flat < data.size; flat++) {
      const j = flat % cols;
      const i = Math.floor(flat / cols) % rows;
      const keep = upper ? j - i >= k : j - i <= k;
      if (keep) copyElement(out, flat, data, flat);
    }
    return [out];
  },
};
