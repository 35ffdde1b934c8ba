import type { DType } from '../../dtype.js';
import { isFloat, isInteger } from '../../dtype.js';
import type { Dim } from '../../graph.js';
import { dimAdd, dimDiv, dimMul, dimSub } from '../../dims.js';
import type { InferContext, OpContextBase, OpDef } from '../types.js';
import { mapBroadcast } from '../util/elementwise.js';
import { alignBinary, alignBinaryTypes, broadcastType, combineShapeValues, requireInput, requireType, withNode, withShapeValue } from './common.js';

/**
 * Add, Sub, Mul, Div: two inputs of one dtype, numpy broadcasting. Integer results wrap
 * like two's complement; integer division truncates toward zero (C semantics, as the
 * ONNX reference does) and division by zero gives 0.
 */
type Kind = 'Add' | 'Sub' | 'Mul' | 'Div';

const TWO_53 = 2 ** 53;

/** Exact 64-bit integer arithmetic via BigInt once doubles stop being exact. */
function int64Op(kind: Kind, a: number, b: number, unsigned: boolean): number {
  const x = BigInt(a);
  const y = BigInt(b);
  let r: bigint;
  switch (kind) {
    case 'Add': r = x + y; break;
    case 'Sub': r = x - y; break;
    case 'Mul': r = x * y; break;
    case 'Div': r = y === 0n ? 0n : x / y; break;
  }
  return Number(unsigned ? BigInt.asUintN(64, r) : BigInt.asIntN(64, r));
}

function scalarFunction(kind: Kind, dtype: DType): (a: number, b: number) => number {
  if (isFloat(dtype)) {
    switch (kind) {
      case 'Add': return (a, b) => a + b;
      case 'Sub': return (a, b) => a - b;
      case 'Mul': return (a, b) => a * b;
      case 'Div': return (a, b) => a / b;
    }
  }
  if (dtype === 'i64' || dtype === 'u64') {
    const unsigned = dtype === 'u64';
    const plain = scalarFunction(kind, 'i32');
    return (a, b) => {
      const r = kind === 'Div' ? (b === 0 ? 0 : Math.trunc(a / b)) : kind === 'Mul' ? a * b : plain(a, b);
      const exact = Math.abs(a) < TWO_53 && Math.abs(b) < TWO_53 && Math.abs(r) < TWO_53;
      if (exact && (!unsigned || r >= 0)) return r;
      return int64Op(kind, a, b, unsigned);
    };
  }
  // Integers up to 32 bits: the typed array wraps on store; Math.imul keeps products exact.
  switch (kind) {
    case 'Add': return (a, b) => a + b;
    case 'Sub': return (a, b) => a - b;
    case 'Mul': return (a, b) => Math.imul(a, b);
    case 'Div': return (a, b) => (b === 0 ? 0 : Math.trunc(a / b));
  }
}

/** Symbolic arithmetic on shape values; integer Div only when exact or both static. */
function dimFunction(kind: Kind): (a: Dim, b: Dim) => Dim | undefined {
  switch (kind) {
    case 'Add': return dimAdd;
    case 'Sub': return dimSub;
    case 'Mul': return dimMul;
    case 'Div': return (a, b) => {
      if (typeof a === 'number' && typeof b === 'number') return b === 0 ? 0 : Math.trunc(a / b);
      if (b === 0) return undefined;
      return dimDiv(a, b);
    };
  }
}

export function checkSameDtype(ctx: OpContextBase, a: DType, b: DType): void {
  if (a !== b) throw ctx.attrs.error(`${ctx.node.op} needs inputs of one dtype, got ${a} and ${b}`);
}

function define(kind: Kind): OpDef {
  return {
    domain: '',
    op: kind,
    infer(ctx: InferContext) {
      const a = requireType(ctx, 0);
      const b = requireType(ctx, 1);
      checkSameDtype(ctx, a.dtype, b.dtype);
      if (a.dtype === 'string' || a.dtype === 'bool') throw ctx.attrs.error(`${kind} does not accept ${a.dtype} inputs`);
      const type = broadcastType(ctx, a.dtype, alignBinaryTypes(ctx, a, b));
      const value = isInteger(a.dtype) ? combineShapeValues(ctx, dimFunction(kind)) : undefined;
      return [withShapeValue(type, value)];
    },
    evaluate(ctx) {
      const [a, b] = alignBinary(ctx, requireInput(ctx, 0), requireInput(ctx, 1));
      checkSameDtype(ctx, a.dtype, b.dtype);
      if (a.dtype === 'string' || a.dtype === 'bool') throw ctx.attrs.error(`${kind} does not accept ${a.dtype} inputs`);
      const f = scalarFunction(kind, a.dtype);
      return [withNode(ctx, () => mapBroadcast([a, b], a.dtype, (args) => f(args[0], args[1])))];
    },
  };
}

export const arithmeticOps: OpDef[] = (['Add', 'Sub', 'Mul', 'Div'] as const).map(define);
