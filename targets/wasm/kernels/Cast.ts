import {
  abs, add, and, bitcast, cast, constant, eq, i32, lt, ne, select, shr, type Expr,
} from '../../../codegen/builder.js';
import type { DType } from '../../../ir/dtype.js';
import { isFloat } from '../../../ir/dtype.js';
import type { KernelBuildContext } from '../kernel-def.js';
import { computeOf, defineElementwise, elemOf, wrapInt, type ElementwiseSpec } from './elementwise.js';

/** Rounds an f32 to the nearest bf16 (ties to even), keeping NaN. */
function roundBf16(x: Expr): Expr {
  const bits = bitcast(x, 'i32');
  const rounded = and(add(bits, add(and(shr(bits, 16), 1), 0x7fff)), i32(-65536));
  return select(ne(x, x), x, bitcast(rounded, 'f32'));
}

/** An f32 value rounded to a float dtype's precision (it stays f32 in the arena). */
function toFloatDtype(x: Expr, dtype: DType): Expr {
  if (dtype === 'f16') return cast(x, 'f16');
  if (dtype === 'bf16') return roundBf16(x);
  return x;
}

const SUPPORTED_FLOATS = new Set<DType>(['f32', 'f16', 'bf16', 'f64']);

/**
 * Cast between the arena types: floats (f32/f16/bf16/f64 rounded as f32 values), integers
 * (i32 slots, wrapped to the target width), bool (u8). float → int truncates toward zero;
 * NaN, ±inf and magnitudes beyond 2^31 give 0 (the reference wraps finite huge values).
 */
function castSpec(ctx: KernelBuildContext): ElementwiseSpec | string {
  const from = ctx.inputs[0]?.dtype;
  const to = ctx.outputs[0]?.dtype;
  if (!from || !to) return 'Cast types unknown';
  for (const t of [from, to]) {
    if (isFloat(t) && !SUPPORTED_FLOATS.has(t)) return `Cast with ${t} is not supported on wasm`;
    if (!elemOf(t) || t === 'string') return `Cast with ${t} is not supported on wasm`;
  }
  const fromF = computeOf(from) === 'f32';
  return {
    scalar: (_k, xs) => {
      const x = xs[0]!;
      if (to === 'bool') return fromF ? and(ne(x, 0), eq(x, x)) : ne(x, 0);
      if (isFloat(to)) {
        const f = fromF ? x : cast(x, 'f32');
        return toFloatDtype(f, to);
      }
      const target = computeOf(to);
      if (fromF) {
        const inRange = lt(abs(x), 2147483648);
        return wrapInt(select(inRange, cast(x, 'i32'), constant('i32', 0)), to);
      }
      return wrapInt(target === x.type ? x : bitcast(x, target), to);
    },
  };
}

export const castKernel = defineElementwise('', 'Cast', castSpec);

/** CastLike: Cast to the dtype of input 1 (whose values are not read). */
export const castLikeKernel = defineElementwise('', 'CastLike', castSpec, 1);
