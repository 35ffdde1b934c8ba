/**
 * Row statistics shared by the normalization and softmax kernels: a pass over `n` contiguous
 * f32 elements with f32x4 accumulators and a scalar tail.
 */
import {
  KernelBuilder, add, max, reduce, rem, splat, sub, type Expr,
} from '../../../codegen/builder.js';

/**
 * Sums (or maxes) `term(i, vector)` over i in [0, n): `term` returns an f32x4 for vector
 * strips (i is the strip start) and an f32 for the tail.
 */
export function rowReduce(
  k: KernelBuilder, n: Expr, kind: 'add' | 'max', term: (i: Expr, vector: boolean) => Expr, name = 'acc',
): Expr {
  const init = kind === 'add' ? 0 : -Infinity;
  const vacc = k.mut(`${name}_v`, splat({ kind: 'const', type: 'f32', value: init }, 'f32x4'));
  const acc = k.mut(name, { kind: 'const', type: 'f32', value: init });
  const vend = k.let(`${name}_vend`, sub(n, rem(n, 4)));
  const combine = (a: Expr, b: Expr): Expr => (kind === 'add' ? add(a, b) : max(a, b));
  k.loop(`${name}_i`, 0, vend, (i) => k.set(vacc, combine(vacc, term(i, true))), { step: 4 });
  k.loop(`${name}_t`, vend, n, (i) => k.set(acc, combine(acc, term(i, false))));
  return k.let(`${name}_total`, combine(reduce(kind, vacc), acc));
}

/** Runs `body(i, vector)` over [0, n) in f32x4 strips, then a scalar tail. */
export function rowMap(k: KernelBuilder, n: Expr, body: (i: Expr, vector: boolean) => void, name = 'm'): void {
  const vend = k.let(`${name}_vend`, sub(n, rem(n, 4)));
  k.loop(`${name}_i`, 0, vend, (i) => body(i, true), { step: 4 });
  k.loop(`${name}_t`, vend, n, (i) => body(i, false));
}

/** A scalar f32 as the given width. */
export function lane(x: Expr, vector: boolean): Expr {
  return vector ? splat(x, 'f32x4') : x;
}
