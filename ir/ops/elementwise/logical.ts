import type { OpDef } from '../types.js';
import { compareBroadcast } from './compare.js';
import { alignBinary, alignBinaryTypes, broadcastType, requireInput, requireType } from './common.js';

/** And, Or, Xor on bool tensors with numpy broadcasting (Not lives with the unary ops). */
type Kind = 'And' | 'Or' | 'Xor';

const LOGIC: Record<Kind, (a: number, b: number) => boolean> = {
  And: (a, b) => a !== 0 && b !== 0,
  Or: (a, b) => a !== 0 || b !== 0,
  Xor: (a, b) => (a !== 0) !== (b !== 0),
};

function checkBool(error: (m: string) => Error, op: string, a: string, b: string): void {
  if (a !== 'bool' || b !== 'bool') throw error(`${op} needs bool inputs, got ${a} and ${b}`);
}

function define(kind: Kind): OpDef {
  return {
    domain: '',
    op: kind,
    infer(ctx) {
      const a = requireType(ctx, 0);
      const b = requireType(ctx, 1);
      checkBool((m) => ctx.attrs.error(m), kind, a.dtype, b.dtype);
      return [{ type: broadcastType(ctx, 'bool', alignBinaryTypes(ctx, a, b)) }];
    },
    evaluate(ctx) {
      const [a, b] = alignBinary(ctx, requireInput(ctx, 0), requireInput(ctx, 1));
      checkBool((m) => ctx.attrs.error(m), kind, a.dtype, b.dtype);
      const f = LOGIC[kind];
      return [compareBroadcast(ctx, a, b, (x, y) => f(x as number, y as number))];
    },
  };
}

export const logicalOps: OpDef[] = (['And', 'Or', 'Xor'] as const).map(define);
