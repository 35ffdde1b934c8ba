import type { OpDef, InferContext, EvalContext } from '../types.js';
import type { Dim } from '../../graph.js';
import { dimDiv } from '../../dims.js';
import { Tensor, sizeOf } from '../../tensor.js';
import { copyElement, inputTensor, inputType, knownDims, knownInts, outputInfo, resolveAxis } from './common.js';

/**
 * Chunk sizes along the axis when no explicit split is given: equal parts (opset < 18
 * requires an even split), or from opset 18 `num_outputs` parts of ceil(dim/n) with a
 * smaller last part.
 */
function equalParts(ctx: InferContext | EvalContext, dim: number, outputs: number): number[] {
  const numOutputs = ctx.opset >= 18 ? ctx.attrs.optionalInt('num_outputs') : undefined;
  if (numOutputs !== undefined) {
    if (numOutputs < 1) throw ctx.attrs.error(`num_outputs ${numOutputs} must be positive`);
    if (numOutputs !== outputs) throw ctx.attrs.error(`num_outputs is ${numOutputs} but the node has ${outputs} outputs`);
    const chunk = Math.ceil(dim / numOutputs);
    return Array.from({ length: numOutputs }, (_, i) => Math.max(0, Math.min(chunk, dim - chunk * i)));
  }
  if (dim % outputs !== 0) throw ctx.attrs.error(`cannot split a dim of ${dim} into ${outputs} equal parts`);
  return new Array<number>(outputs).fill(dim / outputs);
}

function checkSplit(ctx: InferContext | EvalContext, split: number[], dim: Dim, outputs: number): void {
  if (split.length !== outputs) throw ctx.attrs.error(`split has ${split.length} entries but the node has ${outputs} outputs`);
  if (split.some((s) => s < 0)) throw ctx.attrs.error(`split [${split.join(',')}] has a negative size`);
  const total = split.reduce((a, b) => a + b, 0);
  if (typeof dim === 'number' && total !== dim) {
    throw ctx.attrs.error(`split [${split.join(',')}] sums to ${total} but the axis has size ${dim}`);
  }
}

/** Split: cuts the input into consecutive parts along an axis. */
export const Split: OpDef = {
  domain: '',
  op: 'Split',
  infer(ctx) {
    const input = inputType(ctx, 0);
    const outputs = ctx.node.outputs.length;
    if (!input.shape) return ctx.node.outputs.map(() => outputInfo(input.dtype, undefined));
    const shape = input.shape;
    const axis = resolveAxis(ctx, ctx.attrs.int('axis', 0), shape.length);
    const dim = shape[axis];
    const splitGiven = ctx.opset < 13 ? ctx.attrs.has('split') : ctx.inputs[1] !== undefined;
    const split = ctx.opset < 13 ? ctx.attrs.optionalInts('split') : knownInts(ctx, 1);
    let sizes: Dim[];
    if (split) {
      checkSplit(ctx, split, dim, outputs);
      sizes = split;
    } else if (splitGiven) {
      sizes = ctx.node.outputs.map(() => ctx.symbols.fresh());
    } else if (typeof dim === 'number') {
      sizes = equalParts(ctx, dim, outputs);
    } else {
      // Exporters split symbolic dims evenly (e.g. fused qkv); assume divisibility.
      sizes = ctx.node.outputs.map(() => dimDiv(dim, outputs));
    }
    const elements = shape.length === 1 ? knownDims(ctx, 0) : undefined;
    let start = 0;
    return sizes.map((size) => {
      const outShape = [...shape];
      outShape[axis] = size;
      let part: Dim[] | undefined;
      if (elements && typeof size === 'number') part = elements.slice(start, start + size);
      if (typeof size === 'number') start += size;
      return outputInfo(input.dtype, outShape, part);
    });
  },
  evaluate(ctx) {
    const data = inputTensor(ctx, 0);
    const outputs = ctx.node.outputs.length;
    const axis = resolveAxis(ctx, ctx.attrs.int('axis', 0), data.rank);
    const dim = data.shape[axis];
    const splitTensor = ctx.opset >= 13 ? ctx.inputs[1] : undefined;
    const split = ctx.opset < 13 ? ctx.attrs.optionalInts('split') : splitTensor?.toArray();
    const sizes = split ?? equalParts(ctx, dim, outputs);
    checkSplit(ctx, sizes, dim, outputs);
    const outer = sizeOf(data.shape.slice(0, axis));
    const inner = sizeOf(data.shape.slice(axis + 1));
    let offset = 0;
    return sizes.map((size) => {
      const shape = [...data.shape];
      shape[axis] = size;
      const out = Tensor.zeros(data.dtype, shape);
      const row = size * inner;
      for (let o = 0; o < outer; o++) {
        for (let i = 0; i < row; i++) copyElement(out, o * row + i, data, o * dim * inner + offset * inner + i);
      }
      offset += size;
      return out;
    });
  },
};
