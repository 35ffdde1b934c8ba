/**
 * The one-input elementwise ops of the ai.onnx domain (Abs … Not), as a table: each entry
 * gives the scalar form (f32, or i32/u32 for integer dtypes) and, where it exists, the f32x4
 * form. Transcendentals expand through codegen/mathlib.ts in the module builder.
 */
import {
  KernelBuilder, abs, add, ceil, cos, div, eq, erf, exp, floor, gt, log, lt, mul, nearest, neg, select, sigmoid, sin,
  sqrt, sub, tanh, xor, type Expr,
} from '../../../codegen/builder.js';
import type { DType } from '../../../ir/dtype.js';
import { isFloat } from '../../../ir/dtype.js';
import type { WasmKernelDef } from '../kernel-def.js';
import { computeOf, defineElementwise, wrapInt, type ElementFn } from './elementwise.js';

type Accepts = 'float' | 'signed' | 'numeric' | 'bool';

interface UnaryEntry {
  op: string;
  accepts: Accepts;
  /** Works for f32 and f32x4 alike (the builder lifts constants to the operand's type). */
  float?: (k: KernelBuilder, x: Expr) => Expr;
  /** Integer form (i32/u32 values); dtype for wrapping. */
  int?: (k: KernelBuilder, x: Expr, dtype: DType) => Expr;
  /** false when `float` has no f32x4 form. */
  vector?: boolean;
}

/** log(1 + u) accurate for small u: the classic log(w)·u/(w − 1) correction. */
export function log1p(k: KernelBuilder, u: Expr): Expr {
  const w = k.let('l1p_w', add(u, 1));
  return select(eq(w, 1), u, div(mul(log(w), u), sub(w, 1)));
}

/** Softplus log(1 + e^x) without overflow: x + log1p(e^−x) for x > 0, else log1p(e^x). */
export function softplus(k: KernelBuilder, x: Expr): Expr {
  const e = exp(neg(abs(x)));
  const l = log1p(k, e);
  return select(gt(x, 0), add(x, l), l);
}

const ENTRIES: UnaryEntry[] = [
  { op: 'Abs', accepts: 'numeric', float: (_k, x) => abs(x), int: (_k, x, t) => (t.startsWith('u') ? x : wrapInt(abs(x), t)) },
  { op: 'Neg', accepts: 'signed', float: (_k, x) => neg(x), int: (_k, x, t) => wrapInt(neg(x), t) },
  { op: 'Reciprocal', accepts: 'float', float: (_k, x) => div(1, x) },
  { op: 'Sqrt', accepts: 'float', float: (_k, x) => sqrt(x) },
  { op: 'Exp', accepts: 'float', float: (_k, x) => exp(x) },
  { op: 'Log', accepts: 'float', float: (_k, x) => log(x) },
  { op: 'Erf', accepts: 'float', float: (_k, x) => erf(x) },
  { op: 'Ceil', accepts: 'float', float: (_k, x) => ceil(x) },
  { op: 'Floor', accepts: 'float', float: (_k, x) => floor(x) },
  { op: 'Round', accepts: 'float', float: (_k, x) => nearest(x) },
  { op: 'Sin', accepts: 'float', float: (_k, x) => sin(x) },
  { op: 'Cos', accepts: 'float', float: (_k, x) => cos(x) },
  { op: 'Tanh', accepts: 'float', float: (_k, x) => tanh(x) },
  { op: 'Sigmoid', accepts: 'float', float: (_k, x) => sigmoid(x) },
  // select keeps NaN and −0 exactly as the reference's x < 0 ? 0 : x.
  { op: 'Relu', accepts: 'signed', float: (_k, x) => select(lt(x, 0), 0, x), int: (_k, x) => select(lt(x, 0), 0, x) },
  { op: 'Softplus', accepts: 'float', float: softplus },
  {
    op: 'Sign', accepts: 'numeric',
    float: (_k, x) => select(gt(x, 0), 1, select(lt(x, 0), -1, x)),
    int: (_k, x) => select(gt(x, 0), 1, select(lt(x, 0), -1, x)),
  },
  { op: 'Not', accepts: 'bool', int: (_k, x) => xor(x, 1) },
];

function accepted(accepts: Accepts, dtype: DType): boolean {
  switch (accepts) {
    case 'float': return isFloat(dtype);
    case 'signed': return isFloat(dtype) || /^i\d+$/.test(dtype);
    case 'numeric': return dtype !== 'string' && dtype !== 'bool';
    case 'bool': return dtype === 'bool';
  }
}

function define(entry: UnaryEntry): WasmKernelDef {
  return defineElementwise('', entry.op, (ctx) => {
    const dtype = ctx.inputs[0]?.dtype;
    if (!dtype || !accepted(entry.accepts, dtype)) return `${entry.op} does not accept ${dtype ?? 'unknown'} inputs`;
    if (computeOf(dtype) === 'f32') {
      const f = entry.float;
      if (!f) return `${entry.op} has no float form`;
      const fn: ElementFn = (k, x) => f(k, x[0]!);
      return { scalar: fn, vector: entry.vector === false ? undefined : fn };
    }
    const g = entry.int;
    if (!g) return `${entry.op} does not accept ${dtype} inputs on wasm`;
    return { scalar: (k, x) => g(k, x[0]!, dtype) };
  });
}

export const unaryKernels: WasmKernelDef[] = ENTRIES.map(define);
