import {
  abs, and, cast, div, eq, exp, floor, i32, log, lt, mul, ne, neg, or, select, shr, sqrt, trunc, type Expr,
  type KernelBuilder,
} from '../../../codegen/builder.js';
import { isFloat } from '../../../ir/dtype.js';
import { computeOf, defineElementwise, wrapInt, type ElementFn } from './elementwise.js';

/** x^n for a small non-negative integer n, by repeated squaring (exact for exact products). */
function powConstInt(x: Expr, n: number): Expr {
  let result: Expr | undefined;
  let base = x;
  for (let e = n; e > 0; e >>= 1) {
    if (e & 1) result = result ? mul(result, base) : base;
    if (e > 1) base = mul(base, base);
  }
  return result ?? { kind: 'const', type: x.type, value: 1 };
}

/** Float pow for a runtime exponent: exact products for integer |b| < 16, else exp(b·log|a|). */
function powFloat(k: KernelBuilder, a: Expr, b: Expr): Expr {
  const bInt = k.let('pow_bint', eq(b, trunc(b)));
  const n = k.let('pow_n', cast(abs(b), a.type === 'f32x4' ? 'i32x4' : 'i32'));
  // Square-and-multiply over 4 bits, selecting lanes where the bit is set.
  let result: Expr = { kind: 'const', type: a.type, value: 1 };
  let base = k.let('pow_base', a);
  for (let bit = 0; bit < 4; bit++) {
    const set = ne(and(shr(n, bit), { kind: 'const', type: n.type, value: 1 }), { kind: 'const', type: n.type, value: 0 });
    result = k.let('pow_r', select(set, mul(result, base), result));
    if (bit < 3) base = k.let('pow_base', mul(base, base));
  }
  const small = select(lt(b, 0), div(1, result), result);
  const magnitude = exp(mul(b, log(abs(a))));
  const half = mul(b, 0.5);
  const odd = k.let('pow_odd', and(bInt, ne(floor(half), half)));
  const signed = select(lt(a, 0), select(bInt, select(odd, neg(magnitude), magnitude), { kind: 'const', type: a.type, value: NaN }), magnitude);
  const general = select(and(bInt, lt(abs(b), 16)), small, signed);
  // pow(x, 0) = 1 and pow(1, y) = 1 even for NaN.
  return select(or(eq(b, 0), eq(a, 1)), 1, general);
}

/** Integer pow (exponent ≥ 0; negative exponents follow the reference's C answer). */
function powInt(k: KernelBuilder, a: Expr, b: Expr): Expr {
  const result = k.mut('ipow_r', i32(1));
  const base = k.mut('ipow_b', a);
  const e = k.let('ipow_e', b);
  k.loop('ipow_bit', 0, 31, (bit) => {
    k.if(ne(and(shr(e, bit), 1), 0), () => k.set(result, mul(result, base)));
    k.set(base, mul(base, base));
  });
  const negative = select(eq(a, 1), 1, select(eq(a, -1), select(eq(and(e, 1), 0), i32(1), i32(-1)), 0));
  return select(lt(e, 0), negative, result);
}

/** Pow: base float or integer; exponent any numeric dtype (converted); constant exponents specialise. */
export const powKernel = defineElementwise('', 'Pow', (ctx) => {
  const base = ctx.inputs[0]?.dtype;
  const expo = ctx.inputs[1]?.dtype;
  if (!base || !expo || base === 'bool' || expo === 'bool' || base === 'string' || expo === 'string') return 'Pow needs numeric inputs';
  const constant = ctx.constant(1);
  const c = constant && constant.size === 1 ? constant.numbers()[0] : undefined;
  if (isFloat(base)) {
    const exponent = (x: Expr | undefined): Expr => (computeOf(expo) === 'f32' ? x! : cast(x!, 'f32'));
    if (c !== undefined) {
      const fn: ElementFn = (k, x) => {
        const a = x[0]!;
        if (c === 0.5) return sqrt(a);
        if (Number.isInteger(c) && Math.abs(c) <= 16) {
          const p = powConstInt(a, Math.abs(c));
          return c < 0 ? div(1, p) : p;
        }
        return powFloat(k, a, { kind: 'const', type: a.type, value: c });
      };
      return computeOf(expo) === 'f32' ? { scalar: fn, vector: fn } : { scalar: fn };
    }
    const fn: ElementFn = (k, x) => powFloat(k, x[0]!, exponent(x[1]));
    return computeOf(expo) === 'f32' ? { scalar: fn, vector: fn } : { scalar: fn };
  }
  if (isFloat(expo)) {
    // Integer base, float exponent: the float power truncated to the base's dtype.
    return { scalar: (k, x) => wrapInt(cast(powFloat(k, cast(x[0]!, 'f32'), x[1]!), 'i32'), base) };
  }
  return { scalar: (k, x) => wrapInt(powInt(k, x[0]!, x[1]!), base) };
});
