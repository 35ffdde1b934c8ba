import { isFloat, isInteger } from '../../dtype.js';
import type { OpDef } from '../types.js';
import { mapBroadcast } from '../util/elementwise.js';
import { checkSameDtype } from './arithmetic.js';
import { broadcastType, requireInput, requireType, withNode } from './common.js';

/**
 * Mod. fmod = 0 (integers only): the remainder takes the divisor's sign, like Python's %.
 * fmod = 1: C fmod, the remainder takes the dividend's sign. x mod 0 gives 0 for integers
 * (numpy's answer) and NaN for floats.
 */
function pythonMod(a: number, b: number): number {
  if (b === 0) return 0;
  const r = a % b;
  return r !== 0 && (r < 0) !== (b < 0) ? r + b : r;
}

function cFmod(a: number, b: number, float: boolean): number {
  if (b === 0) return float ? NaN : 0;
  return a % b;
}

function checkArgs(ctx: { attrs: { error(m: string): Error; int(n: string, d?: number): number } }, dtype: string): boolean {
  const fmod = ctx.attrs.int('fmod', 0);
  if (fmod !== 0 && fmod !== 1) throw ctx.attrs.error(`fmod must be 0 or 1, got ${fmod}`);
  const float = isFloat(dtype as never);
  if (!float && !isInteger(dtype as never)) throw ctx.attrs.error(`Mod does not accept ${dtype} inputs`);
  if (float && fmod === 0) throw ctx.attrs.error('Mod on floating-point inputs needs fmod = 1');
  return fmod === 1;
}

export const Mod: OpDef = {
  domain: '',
  op: 'Mod',
  infer(ctx) {
    const a = requireType(ctx, 0);
    const b = requireType(ctx, 1);
    checkSameDtype(ctx, a.dtype, b.dtype);
    checkArgs(ctx, a.dtype);
    return [{ type: broadcastType(ctx, a.dtype) }];
  },
  evaluate(ctx) {
    const a = requireInput(ctx, 0);
    const b = requireInput(ctx, 1);
    checkSameDtype(ctx, a.dtype, b.dtype);
    const fmod = checkArgs(ctx, a.dtype);
    const float = isFloat(a.dtype);
    const f = fmod ? (args: number[]) => cFmod(args[0], args[1], float) : (args: number[]) => pythonMod(args[0], args[1]);
    return [withNode(ctx, () => mapBroadcast([a, b], a.dtype, f))];
  },
};
