import { isFloat, isInteger } from '../../dtype.js';
import type { OpDef } from '../types.js';
import { mapBroadcast } from '../util/elementwise.js';
import { alignBinary, alignBinaryTypes, broadcastType, requireInput, requireType, withNode } from './common.js';

/**
 * Pow: base and exponent may have different numeric dtypes; the output has the base's.
 * Integer results beyond 2^53 are computed by BigInt so wrapping matches int64 arithmetic.
 */
function integerPower(base: number, exponent: number, bits: number, unsigned: boolean): number {
  if (exponent < 0) {
    // numpy errors here; ONNX leaves it undefined. 1/b^n truncated is the C answer.
    return base === 1 ? 1 : base === -1 ? (exponent % 2 === 0 ? 1 : -1) : 0;
  }
  const plain = Math.pow(base, exponent);
  if (Math.abs(plain) < 2 ** 53) return plain;
  let result = 1n;
  let b = BigInt(base);
  let e = BigInt(exponent);
  const wrap = (v: bigint) => (unsigned ? BigInt.asUintN(bits, v) : BigInt.asIntN(bits, v));
  while (e > 0n) {
    if (e & 1n) result = wrap(result * b);
    b = wrap(b * b);
    e >>= 1n;
  }
  return Number(result);
}

function numericOrError(dtype: string, error: (m: string) => Error): void {
  if (!isFloat(dtype as never) && !isInteger(dtype as never)) throw error(`Pow does not accept ${dtype} inputs`);
}

export const Pow: OpDef = {
  domain: '',
  op: 'Pow',
  infer(ctx) {
    const base = requireType(ctx, 0);
    const exponent = requireType(ctx, 1);
    numericOrError(base.dtype, (m) => ctx.attrs.error(m));
    numericOrError(exponent.dtype, (m) => ctx.attrs.error(m));
    return [{ type: broadcastType(ctx, base.dtype, alignBinaryTypes(ctx, base, exponent)) }];
  },
  evaluate(ctx) {
    const [base, exponent] = alignBinary(ctx, requireInput(ctx, 0), requireInput(ctx, 1));
    numericOrError(base.dtype, (m) => ctx.attrs.error(m));
    numericOrError(exponent.dtype, (m) => ctx.attrs.error(m));
    const integerResult = isInteger(base.dtype);
    const bothInteger = integerResult && isInteger(exponent.dtype);
    const bits = base.dtype === 'i64' || base.dtype === 'u64' ? 64 : 32;
    const unsigned = base.dtype.startsWith('u');
    const f = bothInteger
      ? (args: number[]) => integerPower(args[0], args[1], bits, unsigned)
      : (args: number[]) => Math.pow(args[0], args[1]);
    return [withNode(ctx, () => mapBroadcast([base, exponent], base.dtype, f))];
  },
};
