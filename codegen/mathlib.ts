/**
 * Target-neutral expansions of transcendentals and f16 conversions into kernel-form code,
 * for targets without native forms (WASM; HLS may use them too). Each expansion works on f32
 * or f32x4 alike (constants lift to the operand's type; conditions are selects, not branches),
 * with range reduction + minimax/Taylor polynomials accurate to a few f32 ulps:
 *
 *   exp      Cephes expf: n = round(x·log2 e), two-part ln 2 reduction, degree-6 polynomial;
 *            2^n applied as two factors so denormal results and overflow to inf come out right.
 *   log      Cephes logf: frexp via bits (denormals pre-scaled), polynomial in m − 1.
 *   tanh     odd polynomial for |x| < 0.625, else 1 − 2/(e^{2|x|} + 1).
 *   sigmoid  1 / (1 + e^{−x}).
 *   erf      Taylor series to x^21 for |x| < 1, else 1 − erfc with the Numerical Recipes
 *            Chebyshev erfc (relative error < 1.2e-7).
 *   sin/cos  Cody–Waite reduction by π/2 in three parts (accurate for |x| up to about 1e4),
 *            Cephes minimax polynomials on [−π/4, π/4].
 *
 * NaN propagates through every function; ±inf give the limits.
 */
import {
  KernelBuilder,
  abs,
  add,
  and,
  bitcast,
  cast,
  div,
  eq,
  ge,
  gt,
  lt,
  max,
  min,
  mul,
  nearest,
  neg,
  or,
  select,
  shl,
  shr,
  sub,
  xor,
  type ExprLike,
} from './builder.js';
import type { Expr, Stmt, ValueType } from './kernel.js';

export type MathOp = 'exp' | 'log' | 'tanh' | 'erf' | 'sin' | 'cos' | 'sigmoid' | 'f16_to_f32' | 'f32_to_f16' | 'round_f16';

/** A one-argument function in kernel form: `body` computes, `result` is the return value. */
export interface MathFunction {
  arg: string;
  argType: ValueType;
  body: Stmt[];
  result: Expr;
}

/** Expansion of `op` for an argument of `type` (f32/f32x4; i32 half bits for f16_to_f32). */
export function mathFunction(op: MathOp, type: ValueType): MathFunction {
  const k = new KernelBuilder(`math_${op}`);
  const arg = k.fresh('x');
  const x: Expr = { kind: 'var', name: arg, type };
  const result = expandMath(k, op, x);
  return { arg, argType: type, body: k.build().body, result };
}

/** Emits the statements computing `op(x)` into `k` and returns the result expression. */
export function expandMath(k: KernelBuilder, op: MathOp, x: Expr): Expr {
  switch (op) {
    case 'exp': return expandExp(k, x);
    case 'log': return expandLog(k, x);
    case 'tanh': return expandTanh(k, x);
    case 'sigmoid': return expandSigmoid(k, x);
    case 'erf': return expandErf(k, x);
    case 'sin': return expandSinCos(k, x, 0);
    case 'cos': return expandSinCos(k, x, 1);
    case 'f16_to_f32': return expandF16ToF32(k, x);
    case 'f32_to_f16': return expandF32ToF16(k, x);
    case 'round_f16': return expandF16ToF32(k, expandF32ToF16(k, x));
  }
}

/** The integer type of the same shape as a float type. */
function intType(t: ValueType): ValueType {
  if (t === 'f32') return 'i32';
  if (t === 'f32x4') return 'i32x4';
  throw new Error(`mathlib: expected f32 or f32x4, got ${t}`);
}

/** Horner evaluation of c[0]·z^(n−1) + … + c[n−1]. */
function horner(z: Expr, coefficients: number[]): Expr {
  let p: Expr = { kind: 'const', type: z.type, value: coefficients[0] };
  for (const c of coefficients.slice(1)) p = add(mul(p, z), c);
  return p;
}

/** 2^n for an integer-typed n in [−126, 127], as a float. */
function pow2(n: ExprLike, floatType: ValueType): Expr {
  const it = intType(floatType);
  return bitcast(shl(add(n as Expr, { kind: 'const', type: it, value: 127 }), 23), floatType);
}

export function expandExp(k: KernelBuilder, x: Expr): Expr {
  const t = x.type;
  const it = intType(t);
  // Beyond these bounds the result is inf or 0 anyway; clamping keeps 2^n in range.
  const xc = k.let('exp_x', max(min(x, 89), -104));
  const n = k.let('exp_n', nearest(mul(xc, 1.44269504088896341)));
  const r = k.let('exp_r', sub(sub(xc, mul(n, 0.693359375)), mul(n, -2.12194440e-4)));
  const z = mul(r, r);
  const p = horner(r, [1.9875691500e-4, 1.3981999507e-3, 8.3334519073e-3, 4.1665795894e-2, 1.6666665459e-1, 5.0000001201e-1]);
  const e = k.let('exp_e', add(add(mul(p, z), r), 1));
  const ni = k.let('exp_ni', cast(n, it));
  const n1 = k.let('exp_n1', shr(ni, 1));
  const n2 = sub(ni, n1);
  return mul(mul(e, pow2(n1, t)), pow2(n2, t));
}

export function expandLog(k: KernelBuilder, x: Expr): Expr {
  const t = x.type;
  const it = intType(t);
  const ic = (v: number): Expr => ({ kind: 'const', type: it, value: v });
  const isSubnormal = k.let('log_sub', lt(x, 1.17549435e-38));
  const xs = k.let('log_xs', select(isSubnormal, mul(x, 8388608), x));
  const bits = k.let('log_bits', bitcast(xs, it));
  const exponent = sub(sub(and(shr(bits, 23), ic(0xff)), ic(126)), select(isSubnormal, ic(23), ic(0)));
  const m = k.let('log_m', bitcast(or(and(bits, ic(0x007fffff)), ic(0x3f000000)), t));
  const small = k.let('log_small', lt(m, 0.707106781186547524));
  const e = k.let('log_e', cast(sub(exponent, select(small, ic(1), ic(0))), t));
  const f = k.let('log_f', select(small, sub(add(m, m), 1), sub(m, 1)));
  const z = k.let('log_z', mul(f, f));
  const p = horner(f, [
    7.0376836292e-2, -1.1514610310e-1, 1.1676998740e-1, -1.2420140846e-1, 1.4249322787e-1,
    -1.6668057665e-1, 2.0000714765e-1, -2.4999993993e-1, 3.3333331174e-1,
  ]);
  let y = mul(mul(p, f), z);
  y = add(y, mul(e, -2.12194440e-4));
  y = sub(y, mul(z, 0.5));
  const r = add(add(f, y), mul(e, 0.693359375));
  const finitePositive = and(gt(x, 0), lt(x, Infinity));
  const fc = (v: number): Expr => ({ kind: 'const', type: t, value: v });
  const special = select(eq(x, 0), fc(-Infinity), select(eq(x, Infinity), fc(Infinity), fc(NaN)));
  return select(finitePositive, r, special);
}

export function expandTanh(k: KernelBuilder, x: Expr): Expr {
  const a = k.let('tanh_a', abs(x));
  const z = k.let('tanh_z', mul(x, x));
  const small = add(mul(mul(horner(z, [-5.70498872745e-3, 2.06390887954e-2, -5.37397155531e-2, 1.33314422036e-1, -3.33332819422e-1]), z), x), x);
  const e2 = expandExp(k, mul(a, 2));
  const large = k.let('tanh_l', sub(1, div(2, add(e2, 1))));
  return select(lt(a, 0.625), small, select(lt(x, 0), neg(large), large));
}

export function expandSigmoid(k: KernelBuilder, x: Expr): Expr {
  const e = expandExp(k, neg(x));
  return div(1, add(e, 1));
}

export function expandErf(k: KernelBuilder, x: Expr): Expr {
  const a = k.let('erf_a', abs(x));
  // Taylor: erf(x) = 2/√π · Σ (−1)^n x^(2n+1) / (n! (2n+1)).
  const taylor: number[] = [];
  let factorial = 1;
  for (let n = 0; n <= 10; n++) {
    if (n > 0) factorial *= n;
    taylor.push(((n % 2 === 0 ? 1 : -1) / (factorial * (2 * n + 1))) * 1.1283791670955126);
  }
  const z = k.let('erf_z', mul(x, x));
  const small = mul(horner(z, taylor.reverse()), x);
  // erfc(a) = t·exp(−a² + P(t)), t = 1/(1 + a/2) (Numerical Recipes erfcc).
  const t = k.let('erf_t', div(1, add(mul(a, 0.5), 1)));
  const poly = horner(t, [
    0.17087277, -0.82215223, 1.48851587, -1.13520398, 0.27886807, -0.18628806, 0.09678418, 0.37409196,
    1.00002368, -1.26551223,
  ]);
  const erfc = mul(t, expandExp(k, sub(poly, mul(a, a))));
  const large = k.let('erf_l', sub(1, erfc));
  return select(lt(a, 1), small, select(lt(x, 0), neg(large), large));
}

/** sin(x) for quadrantOffset 0, cos(x) = sin(x + π/2) for 1. */
export function expandSinCos(k: KernelBuilder, x: Expr, quadrantOffset: 0 | 1): Expr {
  const t = x.type;
  const it = intType(t);
  const ic = (v: number): Expr => ({ kind: 'const', type: it, value: v });
  const n = k.let('trig_n', nearest(mul(x, 0.63661977236758134)));
  // Beyond the reduction's range the remainder is inexact; clamping keeps the result in [−1, 1].
  const r = k.let('trig_r', max(min(sub(sub(sub(x, mul(n, 1.5703125)), mul(n, 4.837512969970703125e-4)), mul(n, 7.54978995489188216e-8)), 0.7854), -0.7854));
  const z = k.let('trig_z', mul(r, r));
  const s = add(mul(mul(r, z), horner(z, [-1.9515295891e-4, 8.3321608736e-3, -1.6666654611e-1])), r);
  const c = add(sub(1, mul(z, 0.5)), mul(mul(z, z), horner(z, [2.443315711809948e-5, -1.388731625493765e-3, 4.166664568298827e-2])));
  const q = k.let('trig_q', add(cast(n, it), ic(quadrantOffset)));
  const odd = eq(and(q, ic(1)), ic(1));
  const value = select(odd, c, s);
  // Quadrants 2 and 3 negate: flip the sign bit.
  const signBit = shl(and(q, ic(2)), 30);
  return bitcast(xor(bitcast(value, it), signBit), t);
}

/** IEEE half bits (i32, low 16 bits) → f32; exact, denormals and inf/NaN included. */
export function expandF16ToF32(k: KernelBuilder, h: Expr): Expr {
  const it: ValueType = h.type === 'i32x4' ? 'i32x4' : 'i32';
  const ft: ValueType = it === 'i32' ? 'f32' : 'f32x4';
  const ic = (v: number): Expr => ({ kind: 'const', type: it, value: v });
  const magnitude = k.let('h_abs', shl(and(h, ic(0x7fff)), 13));
  // Rebias by 2^112: exact for normals and turns half denormals into f32 normals.
  const scaled = bitcast(mul(bitcast(magnitude, ft), 5.192296858534828e33), it);
  const infOrNan = eq(and(h, ic(0x7c00)), ic(0x7c00));
  const bits = select(infOrNan, or(magnitude, ic(0x7f800000)), scaled);
  return bitcast(or(bits, shl(and(h, ic(0x8000)), 16)), ft);
}

/** f32 → IEEE half bits (i32), round to nearest even; NaN → 0x7e00. */
export function expandF32ToF16(k: KernelBuilder, x: Expr): Expr {
  const it = intType(x.type);
  const ic = (v: number): Expr => ({ kind: 'const', type: it, value: v });
  const bits = k.let('f_bits', bitcast(x, it));
  const sign = and(shr(bits, 16), ic(0x8000));
  const a = k.let('f_abs', and(bits, ic(0x7fffffff)));
  const overflow = select(gt(a, ic(0x7f800000)), ic(0x7e00), ic(0x7c00));
  // Below 2^-14 the half is denormal: adding 0.5 lets the FPU round the mantissa for us.
  const denormal = sub(bitcast(add(bitcast(a, x.type), 0.5), it), ic(0x3f000000));
  const mantissaOdd = and(shr(a, 13), ic(1));
  const normal = shr(add(add(a, ic(-0x37fff001)), mantissaOdd), 13);
  const h = select(ge(a, ic(0x47800000)), overflow, select(lt(a, ic(0x38800000)), denormal, normal));
  return or(h, sign);
}
