import type { DType } from '../../dtype.js';
import type { Dim } from '../../graph.js';
import { Tensor } from '../../tensor.js';
import type { Attrs } from '../attrs.js';
import type { EvalContext, InferContext, OpDef, OutputInfo } from '../types.js';
import { atNode, checkActivationType } from './LutPrecompute.js';
import { checkSparseLutLayout, precomputeSparseTables, sparseTableLayout } from '../../../passes/sparsity/lut.js';
import type { NMPattern } from '../../../passes/sparsity/pattern.js';

/**
 * llmcc.SparseLutPrecompute(A) → (tables, table_scales), attrs sparsity_n, sparsity_m,
 * group_size, table ('i8' | 'f32', default 'i8'). For A [..., K]:
 *   tables       [..., K/m, S]      i8 or f32: per group of m activations, the symmetrized
 *                                   tables of every N-subset of its positions (S slots)
 *   table_scales [..., K/group_size] f32: int8 scale per quant block (1 for f32 tables)
 * Math and layout: passes/sparsity/lut.ts.
 */

export interface SparsePrecomputeAttrs {
  pattern: NMPattern;
  groupSize: number;
  table: 'i8' | 'f32';
}

export function sparsePrecomputeAttrs(attrs: Attrs): SparsePrecomputeAttrs {
  const table = attrs.string('table', 'i8');
  if (table !== 'i8' && table !== 'f32') throw attrs.error(`attribute 'table' must be 'i8' or 'f32', got '${table}'`);
  return { pattern: { n: attrs.int('sparsity_n'), m: attrs.int('sparsity_m') }, groupSize: attrs.int('group_size'), table };
}

export const SparseLutPrecompute: OpDef = {
  domain: 'llmcc',
  op: 'SparseLutPrecompute',
  infer(ctx: InferContext): OutputInfo[] {
    const a = ctx.inputs[0];
    if (!a) throw ctx.attrs.error("missing required input 0 'A'");
    checkActivationType(ctx.attrs, a.dtype, 'A');
    const p = sparsePrecomputeAttrs(ctx.attrs);
    const slots = atNode(ctx.attrs, () => sparseTableLayout(p.pattern).slots);
    const tableType: DType = p.table;
    if (!a.shape) return [{ type: { dtype: tableType, shape: undefined } }, { type: { dtype: 'f32', shape: undefined } }];
    if (a.shape.length < 1) throw ctx.attrs.error('activations must have rank ≥ 1 ([..., K])');
    const lead = a.shape.slice(0, -1);
    const K = a.shape[a.shape.length - 1];
    let groups: Dim;
    let blocks: Dim;
    if (typeof K === 'number') {
      atNode(ctx.attrs, () => checkSparseLutLayout(p.pattern, K, p.groupSize));
      groups = K / p.pattern.m;
      blocks = K / p.groupSize;
    } else {
      groups = ctx.symbols.fresh();
      blocks = ctx.symbols.fresh();
    }
    return [{ type: { dtype: tableType, shape: [...lead, groups, slots] } }, { type: { dtype: 'f32', shape: [...lead, blocks] } }];
  },
  evaluate(ctx: EvalContext): Tensor[] {
    const a = ctx.inputs[0];
    if (!a) throw ctx.attrs.error("missing required input 0 'A'");
    checkActivationType(ctx.attrs, a.dtype, 'A');
    const p = sparsePrecomputeAttrs(ctx.attrs);
    if (a.rank < 1) throw ctx.attrs.error('activations must have rank ≥ 1 ([..., K])');
    const K = a.shape[a.rank - 1];
    const lead = a.shape.slice(0, -1);
    const rows = K === 0 ? 0 : a.size / K;
    const result = atNode(ctx.attrs, () => precomputeSparseTables(a.numbers(), rows, K, p.pattern, p.groupSize, p.table));
    const slots = sparseTableLayout(p.pattern).slots;
    const shape = [...lead, K / p.pattern.m, slots];
    const tables = p.table === 'i8' ? new Tensor('i8', shape, result.tables as Int8Array) : new Tensor('f32', shape, result.tables as Float32Array);
    return [tables, new Tensor('f32', [...lead, K / p.groupSize], result.tableScales)];
  },
};
