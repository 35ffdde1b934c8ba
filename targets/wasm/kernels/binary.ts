/**
 * Two-input and variadic elementwise ops with numpy broadcasting: Add/Sub/Mul/Div,
 * comparisons (bool out), And/Or/Xor, Sum/Mean/Min/Max.
 *
 * Integer semantics follow the reference: results wrap to the dtype; Div truncates toward
 * zero and x/0 = 0 (wasm would trap, so the divisor is guarded; so is INT_MIN / −1).
 */
import {
  add, and, div, eq, ge, gt, le, lt, max, min, mul, ne, neg, or, select, sub, xor, type Expr, type KernelBuilder,
} from '../../../codegen/builder.js';
import type { DType } from '../../../ir/dtype.js';
import type { WasmKernelDef } from '../kernel-def.js';
import { computeOf, defineElementwise, wrapInt, type ElementFn } from './elementwise.js';

type Combine = (a: Expr, b: Expr) => Expr;

/** Integer division as the reference does it (truncating, x/0 = 0, no trap on INT_MIN/−1). */
export function safeIntDiv(k: KernelBuilder, a: Expr, b: Expr): Expr {
  const bv = k.let('div_b', b);
  const unsafe = k.let('div_unsafe', a.type === 'u32' ? eq(bv, 0) : or(eq(bv, 0), eq(bv, -1)));
  const q = div(a, select(unsafe, 1, bv));
  if (a.type === 'u32') return select(unsafe, 0, q);
  return select(unsafe, select(eq(bv, 0), 0, neg(a)), q);
}

function arithmetic(op: 'Add' | 'Sub' | 'Mul' | 'Div'): WasmKernelDef {
  const combine: Record<typeof op, Combine> = { Add: add, Sub: sub, Mul: mul, Div: div };
  return defineElementwise('', op, (ctx) => {
    const dtype = ctx.inputs[0]?.dtype;
    if (!dtype || dtype === 'bool' || dtype === 'string') return `${op} does not accept ${dtype ?? 'unknown'} inputs`;
    if (ctx.inputs[1]?.dtype !== dtype) return `${op} needs inputs of one dtype`;
    if (computeOf(dtype) === 'f32') {
      const fn: ElementFn = (_k, x) => combine[op](x[0]!, x[1]!);
      return { scalar: fn, vector: fn };
    }
    if (op === 'Div') return { scalar: (k, x) => wrapInt(safeIntDiv(k, x[0]!, x[1]!), dtype) };
    return { scalar: (_k, x) => wrapInt(combine[op](x[0]!, x[1]!), dtype) };
  });
}

function comparison(op: 'Equal' | 'Less' | 'LessOrEqual' | 'Greater' | 'GreaterOrEqual'): WasmKernelDef {
  const compare: Record<typeof op, Combine> = { Equal: eq, Less: lt, LessOrEqual: le, Greater: gt, GreaterOrEqual: ge };
  return defineElementwise('', op, (ctx) => {
    const dtype = ctx.inputs[0]?.dtype;
    if (!dtype || dtype === 'string') return `${op} does not accept ${dtype ?? 'unknown'} inputs`;
    if (ctx.inputs[1]?.dtype !== dtype) return `${op} needs inputs of one dtype`;
    // Scalar compares give i32 0/1, which the u8 store keeps.
    return { scalar: (_k, x) => compare[op](x[0]!, x[1]!) };
  });
}

function logical(op: 'And' | 'Or' | 'Xor'): WasmKernelDef {
  const combine: Record<typeof op, Combine> = { And: and, Or: or, Xor: xor };
  return defineElementwise('', op, (ctx) => {
    if (ctx.inputs[0]?.dtype !== 'bool' || ctx.inputs[1]?.dtype !== 'bool') return `${op} needs bool inputs`;
    return { scalar: (_k, x) => combine[op](ne(x[0]!, 0), ne(x[1]!, 0)) };
  });
}

function variadic(op: 'Sum' | 'Mean' | 'Min' | 'Max'): WasmKernelDef {
  const combine: Record<typeof op, Combine> = { Sum: add, Mean: add, Min: min, Max: max };
  return defineElementwise('', op, (ctx) => {
    const types = ctx.inputs.filter((t, i) => t && ctx.node.inputs[i]);
    const dtype: DType | undefined = types[0]?.dtype;
    if (!dtype || types.some((t) => t!.dtype !== dtype)) return `${op} needs inputs of one dtype`;
    if (dtype === 'bool' || dtype === 'string') return `${op} does not accept ${dtype} inputs`;
    const isF32 = computeOf(dtype) === 'f32';
    if (op === 'Mean' && !isF32) return 'Mean needs float inputs';
    const fn: ElementFn = (_k, x) => {
      const present = x.filter((v): v is Expr => v !== undefined);
      const total = present.reduce((acc, v) => combine[op](acc, v));
      return op === 'Mean' ? div(total, present.length) : isF32 ? total : wrapInt(total, dtype);
    };
    return isF32 ? { scalar: fn, vector: fn } : { scalar: fn };
  });
}

export const binaryKernels: WasmKernelDef[] = [
  ...(['Add', 'Sub', 'Mul', 'Div'] as const).map(arithmetic),
  ...(['Equal', 'Less', 'LessOrEqual', 'Greater', 'GreaterOrEqual'] as const).map(comparison),
  ...(['And', 'Or', 'Xor'] as const).map(logical),
  ...(['Sum', 'Mean', 'Min', 'Max'] as const).map(variadic),
];
