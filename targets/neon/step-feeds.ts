/**
 * The feeds a neon step program is compiled for: what `generate()` will feed at one step (token
 * ids as zeros, positions and masks as they will be, the cache as zeros of its past shape), for
 * a decoder graph or for one stage of a decoder pipeline. A stage input that no decoder input
 * gives (the embeddings an earlier stage makes) is sized from its declared shape, whose symbolic
 * dims (`batch`, `seq`, ...) are bound by the step's decoder feeds of the same declared names.
 */
import { LlmccError } from '../../ir/errors.js';
import { Tensor } from '../../ir/tensor.js';
import { type DecodePlan, type ValueSignature, stepFeeds } from '../../src/runtime/generate.js';

/** Feeds of the step with `past` cached positions and `tokens` new ones, for a graph with `inputs`. */
export function stepCompileFeeds(plan: DecodePlan, inputs: readonly ValueSignature[], past: number, tokens: number): Map<string, Tensor> {
  const { bindings } = plan;
  const cache = new Map(bindings.cache.map((c) => {
    const shape = [...c.initialShape];
    if (c.lengthAxis !== undefined) shape[c.lengthAxis] = past;
    return [c.present, Tensor.zeros(c.dtype, shape)];
  }));
  const decoderFeeds = stepFeeds(bindings, new Array<number>(tokens).fill(0), past, cache);
  const symbols = new Map<string, number>();
  const bind = (declared: ValueSignature['shape'], shape: readonly number[]): void => {
    declared?.forEach((d, axis) => { if (typeof d === 'string' && declared.length === shape.length) symbols.set(d, shape[axis]); });
  };
  bind(bindings.inputIds.shape, decoderFeeds.get(bindings.inputIds.name)!.shape);
  for (const input of inputs) {
    const given = decoderFeeds.get(input.name);
    if (given) bind(input.shape, given.shape);
  }
  const feeds = new Map<string, Tensor>();
  for (const input of inputs) {
    const given = decoderFeeds.get(input.name);
    if (given) {
      feeds.set(input.name, given);
      continue;
    }
    if (!input.shape) throw new LlmccError(`cannot size input '${input.name}' for a neon step program: it declares no shape`);
    const shape = input.shape.map((d) => {
      const size = typeof d === 'number' ? d : symbols.get(d);
      if (size === undefined) throw new LlmccError(`cannot size input '${input.name}' [${input.shape!.join(',')}] for the neon step program of past ${past}, ${tokens} token(s): no decoder input binds '${d}'`);
      return size;
    });
    feeds.set(input.name, Tensor.zeros(input.dtype, shape));
  }
  return feeds;
}
