import { isFloat } from '../../dtype.js';
import { Tensor, sizeOf } from '../../tensor.js';
import type { EvalContext, InferContext, OpDef } from '../types.js';
import { normalizeAxis } from '../util/shape.js';
import { requireInput, requireType, withNode } from './common.js';

/**
 * Softmax and LogSoftmax. Opset >= 13: along one axis (default -1). Before 13 the input
 * is coerced to 2-D at `axis` (default 1) and the normalisation runs over the whole
 * flattened trailing block. Computed in f64 with the max subtracted for stability.
 */
type Kind = 'Softmax' | 'LogSoftmax';

function checkType(ctx: InferContext | EvalContext, dtype: string): void {
  if (!isFloat(dtype as never)) throw ctx.attrs.error(`${ctx.node.op} does not accept ${dtype} inputs`);
}

function define(kind: Kind): OpDef {
  return {
    domain: '',
    op: kind,
    infer(ctx) {
      const input = requireType(ctx, 0);
      checkType(ctx, input.dtype);
      if (input.shape) {
        const rank = input.shape.length;
        const axis = ctx.attrs.int('axis', ctx.opset >= 13 ? -1 : 1);
        // Legacy (opset < 13) axes may also equal the rank.
        if (rank > 0 && !(ctx.opset < 13 && axis === rank)) withNode(ctx, () => normalizeAxis(axis, rank));
      }
      return [{ type: { dtype: input.dtype, shape: input.shape } }];
    },
    evaluate(ctx) {
      const x = requireInput(ctx, 0);
      checkType(ctx, x.dtype);
      const rank = x.rank;
      const legacy = ctx.opset < 13;
      const axisAttr = ctx.attrs.int('axis', legacy ? 1 : -1);
      // A scalar normalises over its single element.
      const axis = rank === 0 ? 0 : withNode(ctx, () => (legacy && axisAttr === rank ? rank : normalizeAxis(axisAttr, rank)));
      const shape = rank === 0 ? [1] : x.shape;
      let outer: number;
      let length: number;
      let inner: number;
      if (legacy) {
        outer = sizeOf(shape.slice(0, axis));
        length = sizeOf(shape.slice(axis));
        inner = 1;
      } else {
        outer = sizeOf(shape.slice(0, axis));
        length = shape[axis];
        inner = sizeOf(shape.slice(axis + 1));
      }
      const src = x.numbers();
      const values = new Float64Array(src.length);
      for (let o = 0; o < outer; o++) {
        for (let i = 0; i < inner; i++) {
          const base = o * length * inner + i;
          let max = -Infinity;
          for (let k = 0; k < length; k++) max = Math.max(max, src[base + k * inner]);
          let sum = 0;
          for (let k = 0; k < length; k++) sum += Math.exp(src[base + k * inner] - max);
          for (let k = 0; k < length; k++) {
            const shifted = src[base + k * inner] - max;
            values[base + k * inner] = kind === 'Softmax' ? Math.exp(shifted) / sum : shifted - Math.log(sum);
          }
        }
      }
      return [Tensor.fromNumbers(x.dtype, x.shape, values)];
    },
  };
}

export const softmaxOps: OpDef[] = (['Softmax', 'LogSoftmax'] as const).map(define);
