import type { OpDef } from '../types.js';
import type { Dim, Graph, TensorType } from '../../graph.js';
import { MAX_TENSOR_ELEMENTS, Tensor } from '../../tensor.js';
import { copyElement, knownInts, outputInfo } from './common.js';

/** Whether the body passes its condition input straight through (a plain counted loop). */
function conditionIsPassThrough(body: Graph): boolean {
  const condIn = body.inputs[1]?.name;
  const condOut = body.outputs[0]?.name;
  if (!condIn || !condOut) return false;
  if (condIn === condOut) return true;
  const producer = body.nodes.find((n) => n.outputs.includes(condOut));
  return producer !== undefined && producer.domain === '' && producer.op === 'Identity' && producer.inputs[0] === condIn;
}

/** Stacks per-iteration tensors of one shape along a new leading axis. */
function stack(parts: Tensor[], fallback: TensorType | undefined): Tensor {
  if (parts.length === 0) {
    const shape = fallback?.shape?.every((d) => typeof d === 'number') ? (fallback.shape as number[]) : [];
    return Tensor.zeros(fallback?.dtype ?? 'f32', [0, ...shape]);
  }
  const first = parts[0];
  const out = Tensor.zeros(first.dtype, [parts.length, ...first.shape]);
  parts.forEach((p, k) => {
    for (let i = 0; i < p.size; i++) copyElement(out, k * first.size + i, p, i);
  });
  return out;
}

/**
 * Loop: runs `body` while iteration < M and cond holds. Body inputs are
 * (iteration, cond, carried…), outputs (cond, carried…, scan…); the node returns the
 * final carried values, then each scan output stacked over the iterations.
 */
export const Loop: OpDef = {
  domain: '',
  op: 'Loop',
  infer(ctx) {
    const body = ctx.attrs.graph('body');
    const carriedTypes = ctx.inputs.slice(2).map((t, i) => {
      if (!t) throw ctx.attrs.error(`missing loop-carried input ${i}`);
      return t;
    });
    const bodyTypes = ctx.inferSubgraph(body, [{ dtype: 'i64', shape: [] }, { dtype: 'bool', shape: [] }, ...carriedTypes]);
    const n = carriedTypes.length;
    if (bodyTypes.length < 1 + n) throw ctx.attrs.error(`Loop body has ${bodyTypes.length} outputs for ${n} loop-carried values`);
    const carried = carriedTypes.map((initial, i) => {
      const next = bodyTypes[1 + i];
      const stable = initial.shape && next.shape && initial.shape.length === next.shape.length &&
        initial.shape.every((d, k) => d === next.shape?.[k]);
      if (stable) return outputInfo(initial.dtype, [...(initial.shape as Dim[])], undefined);
      // The shape may change between iterations (allowed since opset 11): keep only the rank.
      const rank = next.shape?.length;
      return outputInfo(initial.dtype, rank === undefined ? undefined : next.shape?.map(() => ctx.symbols.fresh()));
    });
    const tripCount = knownInts(ctx, 0)?.[0];
    const counted = tripCount !== undefined && (!ctx.inputs[1] || (knownInts(ctx, 1)?.[0] === 1 && conditionIsPassThrough(body)));
    const iterations: Dim = counted ? tripCount : ctx.symbols.fresh();
    const scans = bodyTypes.slice(1 + n).map((t) => outputInfo(t.dtype, t.shape ? [iterations, ...t.shape] : undefined));
    return [...carried, ...scans];
  },
  evaluate(ctx) {
    const body = ctx.attrs.graph('body');
    const tripInput = ctx.inputs[0];
    const condInput = ctx.inputs[1];
    const maxTrips = tripInput ? tripInput.get(0) : Infinity;
    let condition = condInput ? condInput.get(0) !== 0 : true;
    if (!tripInput && !condInput) throw ctx.attrs.error('Loop with neither a trip count nor a condition never ends');
    let carried = ctx.inputs.slice(2).map((t, i) => {
      if (!t) throw ctx.attrs.error(`missing loop-carried input ${i}`);
      return t;
    });
    const n = carried.length;
    const scanCount = body.outputs.length - 1 - n;
    if (scanCount < 0) throw ctx.attrs.error(`Loop body has ${body.outputs.length} outputs for ${n} loop-carried values`);
    const scans: Tensor[][] = Array.from({ length: scanCount }, () => []);
    for (let i = 0; i < maxTrips && condition; i++) {
      const outputs = ctx.runSubgraph(body, [Tensor.scalar('i64', i), Tensor.scalar('bool', condition ? 1 : 0), ...carried]);
      condition = outputs[0].get(0) !== 0;
      carried = outputs.slice(1, 1 + n);
      outputs.slice(1 + n).forEach((t, k) => {
        const first = scans[k][0];
        if (first && (first.rank !== t.rank || first.shape.some((d, j) => d !== t.shape[j]))) {
          throw ctx.attrs.error(`Loop scan output ${k} changes shape between iterations`);
        }
        scans[k].push(t);
        // A huge trip count would grow the scan outputs until memory runs out: refuse it up front.
        if (i === 0 && Number.isFinite(maxTrips) && maxTrips * t.size > MAX_TENSOR_ELEMENTS) {
          throw ctx.attrs.error(`Loop trip count ${maxTrips} makes scan output ${k} larger than ${MAX_TENSOR_ELEMENTS} elements`);
        }
      });
    }
    return [...carried, ...scans.map((parts, k) => stack(parts, body.outputs[1 + n + k]?.type))];
  },
};
