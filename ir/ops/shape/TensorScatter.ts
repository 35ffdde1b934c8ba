import type { OpDef } from '../types.js';
import { sizeOf } from '../../tensor.js';
import { cloneTensor, copyElement, inputTensor, inputType, outputInfo, resolveAxis } from './common.js';

/**
 * TensorScatter (opset 24): writes `update` into a copy of the KV cache `past_cache` along
 * the sequence `axis`, starting at write_indices[batch] (0 when absent) for every batch
 * entry; mode "circular" wraps positions modulo the cache length.
 */
export const TensorScatter: OpDef = {
  domain: '',
  op: 'TensorScatter',
  infer(ctx) {
    const past = inputType(ctx, 0);
    return [outputInfo(past.dtype, past.shape ? [...past.shape] : undefined)];
  },
  evaluate(ctx) {
    const past = inputTensor(ctx, 0);
    const update = inputTensor(ctx, 1);
    const mode = ctx.attrs.string('mode', 'linear');
    if (mode !== 'linear' && mode !== 'circular') throw ctx.attrs.error(`TensorScatter mode '${mode}' is not linear or circular`);
    const rank = past.rank;
    const axis = resolveAxis(ctx, ctx.attrs.int('axis', -2), rank);
    if (axis === 0) throw ctx.attrs.error('TensorScatter axis cannot be the batch axis 0');
    if (update.rank !== rank || update.shape.some((d, i) => (i === axis ? d > past.shape[i] : d !== past.shape[i]))) {
      throw ctx.attrs.error(
        `TensorScatter update [${update.shape.join(',')}] does not fit past_cache [${past.shape.join(',')}] along axis ${axis}`,
      );
    }
    const batch = past.shape[0];
    const writeIndices = ctx.inputs[2]?.toArray() ?? new Array<number>(batch).fill(0);
    if (writeIndices.length !== batch) throw ctx.attrs.error(`TensorScatter write_indices has ${writeIndices.length} entries for batch ${batch}`);
    const maxLength = past.shape[axis];
    const length = update.shape[axis];
    const inner = sizeOf(past.shape.slice(axis + 1));
    const prefixCount = sizeOf(past.shape.slice(0, axis));
    const perBatch = prefixCount / (batch || 1);
    const out = cloneTensor(past);
    for (let prefix = 0; prefix < prefixCount; prefix++) {
      const b = Math.floor(prefix / perBatch);
      for (let s = 0; s < length; s++) {
        let at = writeIndices[b] + s;
        if (mode === 'circular') at = ((at % maxLength) + maxLength) % maxLength;
        if (at < 0 || at >= maxLength) {
          throw ctx.attrs.error(`TensorScatter writes position ${at} outside the cache length ${maxLength}`);
        }
        const to = (prefix * maxLength + at) * inner;
        const from = (prefix * length + s) * inner;
        for (let i = 0; i < inner; i++) copyElement(out, to + i, update, from + i);
      }
    }
    return [out];
  },
};
