import type { DType } from '../../dtype.js';
import type { Dim, TensorType } from '../../graph.js';
import type { Tensor } from '../../tensor.js';
import type { EvalContext, InferContext, OutputInfo } from '../types.js';

/**
 * Helpers shared by the com.microsoft ops. These ops mirror ONNX Runtime's CPU kernels:
 * arithmetic runs in f64 here (ORT uses f32, or f32 for f16 inputs) and only outputs are
 * rounded to the output dtype, so f16 models match ORT's "compute in f32, store f16".
 */

export const FLOAT_TYPES: readonly DType[] = ['f32', 'f16', 'bf16', 'f64'];

/** A required input at evaluation, with a node-naming error when it is omitted. */
export function input(ctx: EvalContext, index: number, name: string): Tensor {
  const t = ctx.inputs[index];
  if (!t) throw ctx.attrs.error(`missing required input ${index} '${name}'`);
  return t;
}

/** A required input's type at inference. */
export function inputType(ctx: InferContext, index: number, name: string): TensorType {
  const t = ctx.inputs[index];
  if (!t) throw ctx.attrs.error(`missing required input ${index} '${name}'`);
  return t;
}

export function requireFloat(ctx: EvalContext | InferContext, dtype: DType, name: string): void {
  if (!FLOAT_TYPES.includes(dtype)) throw ctx.attrs.error(`input '${name}' must be a float tensor, got ${dtype}`);
}

export function requireRank(ctx: EvalContext | InferContext, shape: readonly unknown[], ranks: number[], name: string): void {
  if (!ranks.includes(shape.length)) {
    throw ctx.attrs.error(`input '${name}' must have rank ${ranks.join(' or ')}, got rank ${shape.length}`);
  }
}

/** True when the node asks for output i (it exists and is not ''). */
export function wantsOutput(ctx: EvalContext | InferContext, index: number): boolean {
  return index < ctx.node.outputs.length && ctx.node.outputs[index] !== '';
}

/** The elements as f64 (copying), for arithmetic. */
export function f64(t: Tensor): Float64Array {
  return Float64Array.from(t.numbers());
}

/** Dim at `index` of a possibly unknown shape, or a fresh symbol. */
export function dimOf(ctx: InferContext, shape: Dim[] | undefined, index: number): Dim {
  if (!shape) return ctx.symbols.fresh();
  const d = shape[index < 0 ? shape.length + index : index];
  return d ?? ctx.symbols.fresh();
}

/**
 * Softmax over row[start, start+len) in place, the way MLAS does it: max, exp(x - max),
 * then divide by the sum. Inputs are rounded to f32 first, since ORT holds scores in f32;
 * that matters when masks add -3.4e38 (f64 would keep differences f32 loses).
 */
export function softmaxInPlace(row: Float64Array, start: number, len: number): void {
  let max = -Infinity;
  for (let i = start; i < start + len; i++) {
    row[i] = Math.fround(row[i]);
    if (row[i] > max) max = row[i];
  }
  let sum = 0;
  for (let i = start; i < start + len; i++) {
    row[i] = Math.exp(row[i] - max);
    sum += row[i];
  }
  for (let i = start; i < start + len; i++) row[i] /= sum;
}

/** Reads a tensor in (B, S, N, H) layout as (B, N, S, H). */
export function toBNSH(data: ArrayLike<number>, b: number, s: number, n: number, h: number): Float64Array {
  const out = new Float64Array(b * n * s * h);
  for (let bi = 0; bi < b; bi++) {
    for (let si = 0; si < s; si++) {
      for (let ni = 0; ni < n; ni++) {
        const src = ((bi * s + si) * n + ni) * h;
        const dst = ((bi * n + ni) * s + si) * h;
        for (let hi = 0; hi < h; hi++) out[dst + hi] = data[src + hi];
      }
    }
  }
  return out;
}

/** Offset into an attention bias of shape (B or 1, N or 1, S, T) for batch b, head n. */
export function biasOffset(shape: readonly number[], b: number, n: number): number {
  const matrix = shape[2] * shape[3];
  let offset = 0;
  if (shape[0] !== 1) offset += b * shape[1] * matrix;
  if (shape[1] !== 1) offset += n * matrix;
  return offset;
}

/** Checks an attention bias against (B or 1, N or 1, S, T). */
export function checkAttentionBias(
  ctx: EvalContext, bias: Tensor, b: number, n: number, s: number, t: number,
): void {
  const [b0, n0, s0, t0] = bias.shape;
  const ok = bias.rank === 4 && (b0 === 1 || b0 === b) && (n0 === 1 || n0 === n) && s0 === s && t0 === t;
  if (!ok) {
    throw ctx.attrs.error(
      `attention_bias must have shape (${b} or 1, ${n} or 1, ${s}, ${t}), got [${bias.shape.join(',')}]`,
    );
  }
}

/** The outputs the node declares (at least one), from the full list an op can produce. */
export function declaredOutputs<T>(ctx: EvalContext | InferContext, all: T[]): T[] {
  return all.slice(0, Math.max(1, ctx.node.outputs.length));
}

/** declaredOutputs for inference results (typed, so literals check against OutputInfo). */
export function inferredOutputs(ctx: InferContext, all: OutputInfo[]): OutputInfo[] {
  return declaredOutputs(ctx, all);
}
