import type { Dim } from '../../graph.js';
import { Tensor } from '../../tensor.js';
import type { EvalContext, OpDef } from '../types.js';
import { checkSameDtype } from './arithmetic.js';
import { alignBinary, alignBinaryTypes, broadcastMaps, broadcastType, combineShapeValues, requireInput, requireType, withShapeValue } from './common.js';

/**
 * Equal, Less, LessOrEqual, Greater, GreaterOrEqual: bool output, numpy broadcasting.
 * Equal also compares strings. NaN compares false, -0 equals 0 (IEEE).
 */
type Kind = 'Equal' | 'Less' | 'LessOrEqual' | 'Greater' | 'GreaterOrEqual';

type Compare = (a: number | string, b: number | string) => boolean;

const COMPARATORS: Record<Kind, Compare> = {
  Equal: (a, b) => a === b,
  Less: (a, b) => a < b,
  LessOrEqual: (a, b) => a <= b,
  Greater: (a, b) => a > b,
  GreaterOrEqual: (a, b) => a >= b,
};

/** Applies a comparison over two broadcast tensors of any element kind, into a bool tensor. */
export function compareBroadcast(ctx: EvalContext, a: Tensor, b: Tensor, f: Compare): Tensor {
  const { shape, maps } = broadcastMaps(ctx, [a, b]);
  const out = Tensor.zeros('bool', shape);
  const data = out.numbers();
  const [ma, mb] = maps;
  const da = a.data;
  const db = b.data;
  for (let i = 0; i < data.length; i++) data[i] = f(da[ma ? ma[i] : i], db[mb ? mb[i] : i]) ? 1 : 0;
  return out;
}

/** Equal on shape values: decidable for numbers, identical symbols, and symbol vs a negative number. */
function equalDims(a: Dim, b: Dim): Dim | undefined {
  if (a === b) return 1;
  if (typeof a === 'number' && typeof b === 'number') return 0;
  const other = typeof a === 'number' ? a : typeof b === 'number' ? b : undefined;
  return other !== undefined && other < 0 ? 0 : undefined;
}

function define(kind: Kind): OpDef {
  return {
    domain: '',
    op: kind,
    infer(ctx) {
      const a = requireType(ctx, 0);
      const b = requireType(ctx, 1);
      checkSameDtype(ctx, a.dtype, b.dtype);
      if (a.dtype === 'string' && kind !== 'Equal') throw ctx.attrs.error(`${kind} does not accept string inputs`);
      const type = broadcastType(ctx, 'bool', alignBinaryTypes(ctx, a, b));
      return [withShapeValue(type, kind === 'Equal' ? combineShapeValues(ctx, equalDims) : undefined)];
    },
    evaluate(ctx) {
      const [a, b] = alignBinary(ctx, requireInput(ctx, 0), requireInput(ctx, 1));
      checkSameDtype(ctx, a.dtype, b.dtype);
      if (a.dtype === 'string' && kind !== 'Equal') throw ctx.attrs.error(`${kind} does not accept string inputs`);
      return [compareBroadcast(ctx, a, b, COMPARATORS[kind])];
    },
  };
}

export const compareOps: OpDef[] = (['Equal', 'Less', 'LessOrEqual', 'Greater', 'GreaterOrEqual'] as const).map(define);
