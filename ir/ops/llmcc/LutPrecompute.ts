import type { DType } from '../../dtype.js';
import type { Dim, TensorType } from '../../graph.js';
import { Tensor } from '../../tensor.js';
import { LlmccError } from '../../errors.js';
import type { Attrs } from '../attrs.js';
import type { EvalContext, InferContext, OpDef, OutputInfo } from '../types.js';
import { checkGroupLayout, precomputeTables, storedEntries, type TableKind } from '../../../passes/lut/tables.js';

/**
 * llmcc.LutPrecompute(A, scale?) → (tables, table_scales, act_sums), attrs g (default 4),
 * group_size, table ('i8' | 'f32', default 'i8'). For A [..., K] (leading dims kept, M = their
 * product), with activations a = A, or a = A·scale rounded to A's dtype (exactly ONNX Mul) when
 * the optional `scale` (A's dtype, 1 or K elements: a scalar or a per-channel vector along the
 * last axis) is given, which is how a Mul by a constant is fused in:
 *   tables       [..., K/g, 2^(g−1)]  i8 or f32: the symmetrized half of each group's table
 *   table_scales [..., K/group_size]  f32: int8 scale per quant group (all 1 for f32 tables)
 *   act_sums     [..., K/group_size]  f32: Σ a over each quant group
 * Table math and rounding rules: passes/lut/tables.ts.
 */

export interface PrecomputeAttrs {
  g: number;
  groupSize: number;
  table: TableKind;
}

export function precomputeAttrs(attrs: Attrs): PrecomputeAttrs {
  const g = attrs.int('g', 4);
  const groupSize = attrs.int('group_size');
  const table = attrs.string('table', 'i8');
  if (table !== 'i8' && table !== 'f32') throw attrs.error(`attribute 'table' must be 'i8' or 'f32', got '${table}'`);
  return { g, groupSize, table };
}

const ACTIVATION_TYPES: readonly DType[] = ['f32', 'f16', 'bf16'];

export function checkActivationType(attrs: Attrs, dtype: DType, what: string): void {
  if (!ACTIVATION_TYPES.includes(dtype)) throw attrs.error(`${what} must be f32, f16 or bf16, got ${dtype}`);
}

/** Converts a math-level LlmccError (no location) into one naming the node. */
export function atNode<T>(attrs: Attrs, run: () => T): T {
  try {
    return run();
  } catch (e) {
    if (e instanceof LlmccError && !e.where) throw attrs.error(e.message);
    throw e;
  }
}

/** Types of (tables, table_scales, act_sums) for activations of type `a`. */
export function precomputeOutputTypes(ctx: InferContext, a: TensorType, p: PrecomputeAttrs): OutputInfo[] {
  const tableType: DType = p.table === 'i8' ? 'i8' : 'f32';
  if (!a.shape) {
    return [tableType, 'f32', 'f32'].map((dtype) => ({ type: { dtype: dtype as DType, shape: undefined } }));
  }
  if (a.shape.length < 1) throw ctx.attrs.error('activations must have rank ≥ 1 ([..., K])');
  const lead = a.shape.slice(0, -1);
  const K = a.shape[a.shape.length - 1];
  let groups: Dim;
  let blocks: Dim;
  if (typeof K === 'number') {
    atNode(ctx.attrs, () => checkGroupLayout(K, p.g, p.groupSize));
    groups = K / p.g;
    blocks = K / p.groupSize;
  } else {
    groups = ctx.symbols.fresh();
    blocks = ctx.symbols.fresh();
  }
  return [
    { type: { dtype: tableType, shape: [...lead, groups, storedEntries(p.g)] } },
    { type: { dtype: 'f32', shape: [...lead, blocks] } },
    { type: { dtype: 'f32', shape: [...lead, blocks] } },
  ];
}

/** Evaluates the three precompute outputs for activations `a` (already in their dtype). */
export function evaluatePrecompute(attrs: Attrs, a: Tensor, p: PrecomputeAttrs): Tensor[] {
  if (a.rank < 1) throw attrs.error('activations must have rank ≥ 1 ([..., K])');
  const K = a.shape[a.rank - 1];
  const lead = a.shape.slice(0, -1);
  const M = K === 0 ? 0 : a.size / K;
  const result = atNode(attrs, () => precomputeTables(a.numbers(), M, K, p.g, p.groupSize, p.table));
  const blocks = K / p.groupSize;
  const tableShape = [...lead, K / p.g, storedEntries(p.g)];
  const tables = p.table === 'i8'
    ? new Tensor('i8', tableShape, result.tables as Int8Array)
    : new Tensor('f32', tableShape, result.tables as Float32Array);
  return [
    tables,
    new Tensor('f32', [...lead, blocks], result.tableScales),
    new Tensor('f32', [...lead, blocks], result.actSums),
  ];
}

/** Checks the optional per-channel scale input's type: A's dtype, shape [1…, 1 or K]. */
function checkScaleType(attrs: Attrs, a: TensorType, scale: TensorType): void {
  if (scale.dtype !== a.dtype) throw attrs.error(`scale must have A's dtype ${a.dtype}, got ${scale.dtype}`);
  if (!scale.shape || !a.shape) return;
  const K = a.shape[a.shape.length - 1];
  const leadingOnes = scale.shape.slice(0, -1).every((d) => d === 1);
  const last = scale.shape.length ? scale.shape[scale.shape.length - 1] : 1;
  if (scale.shape.length > a.shape.length || !leadingOnes || (last !== 1 && last !== K && typeof last === 'number' && typeof K === 'number')) {
    throw attrs.error(`scale must be a scalar or a vector along the last axis (K = ${K}), got shape [${scale.shape.join(',')}]`);
  }
}

/** A·scale rounded to A's dtype, scale broadcast along the last axis. */
function scaleActivations(attrs: Attrs, a: Tensor, scale: Tensor): Tensor {
  checkScaleType(attrs, { dtype: a.dtype, shape: [...a.shape] }, { dtype: scale.dtype, shape: [...scale.shape] });
  const K = a.shape[a.rank - 1];
  if (scale.size !== 1 && scale.size !== K) throw attrs.error(`scale must have 1 or K = ${K} elements, got ${scale.size}`);
  const av = a.numbers(), sv = scale.numbers();
  const out = new Float64Array(av.length);
  for (let i = 0; i < av.length; i++) out[i] = av[i] * sv[scale.size === 1 ? 0 : i % K];
  return Tensor.fromNumbers(a.dtype, a.shape, out);
}

export const LutPrecompute: OpDef = {
  domain: 'llmcc',
  op: 'LutPrecompute',
  infer(ctx: InferContext): OutputInfo[] {
    const a = ctx.inputs[0];
    if (!a) throw ctx.attrs.error('missing required input 0 \'A\'');
    checkActivationType(ctx.attrs, a.dtype, 'A');
    const scale = ctx.inputs[1];
    if (scale) checkScaleType(ctx.attrs, a, scale);
    return precomputeOutputTypes(ctx, a, precomputeAttrs(ctx.attrs));
  },
  evaluate(ctx: EvalContext): Tensor[] {
    const a = ctx.inputs[0];
    if (!a) throw ctx.attrs.error('missing required input 0 \'A\'');
    checkActivationType(ctx.attrs, a.dtype, 'A');
    const scale = ctx.inputs[1];
    return evaluatePrecompute(ctx.attrs, scale ? scaleActivations(ctx.attrs, a, scale) : a, precomputeAttrs(ctx.attrs));
  },
};
