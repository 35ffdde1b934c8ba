import type { Dim, TensorType } from '../../graph.js';
import type { DType } from '../../dtype.js';
import { Tensor } from '../../tensor.js';
import type { Attrs } from '../attrs.js';
import type { OpDef } from '../types.js';
import { defaultZeroPoint } from './QuantMatMul.js';
import { atNode } from './LutPrecompute.js';
import { checkSparseLayout, keptPerRow, type NMPattern } from '../../../passes/sparsity/pattern.js';
import { indexBytesPerRow, unpackIndices } from '../../../passes/sparsity/pack.js';

/**
 * llmcc.SparseQuantMatMul(A, values, indices, scales, zero_points?, bias?) → Y
 * attrs bits, ternary (0|1), group_size, K, N, sparsity_n, sparsity_m.
 *
 * An N:M sparse QuantMatMul: of every sparsity_m consecutive weights along K, row n stores
 * sparsity_n codes `values` u8 [N, K·n/m] and their positions in the group, packed
 * log2(m) bits each in `indices` u8 [N, ceil(K·n/m·log2(m)/8)] (passes/sparsity/pack.ts).
 * The dense weight is
 *   w[n, k] = fround((values[n, f] − z[n, g]) · scales[n, g])  when k = group(f)·m + position(f),
 *   w[n, k] = 0                                                 otherwise,   g = floor(k / group_size),
 * and Y[..., n] = Σ_k A[..., k]·w[n, k] + bias[n], summed in f64 in k order (the pruned zeros
 * add nothing) and rounded once to A's dtype, exactly as llmcc.QuantMatMul sums.
 * zero_points default as in QuantMatMul (2^(bits−1); ternary 1). group_size is counted in
 * positions along K and must be a multiple of m; K a multiple of group_size.
 */

const ACTIVATION_DTYPES: readonly DType[] = ['f32', 'f16', 'bf16'];

export interface SparseQuantParams {
  bits: number;
  ternary: boolean;
  groupSize: number;
  K: number;
  N: number;
  pattern: NMPattern;
  /** K / group_size. */
  groups: number;
  /** Kept weights per row, K·n/m. */
  kept: number;
  /** Packed index bytes per row. */
  indexBytes: number;
}

export function sparseQuantParams(attrs: Attrs): SparseQuantParams {
  const bits = attrs.int('bits');
  const ternary = attrs.int('ternary', 0);
  const groupSize = attrs.int('group_size');
  const K = attrs.int('K');
  const N = attrs.int('N');
  const pattern = { n: attrs.int('sparsity_n'), m: attrs.int('sparsity_m') };
  if (![1, 2, 3, 4, 8].includes(bits)) throw attrs.error(`bits must be 1, 2, 3, 4 or 8, got ${bits}`);
  if (ternary !== 0 && ternary !== 1) throw attrs.error(`ternary must be 0 or 1, got ${ternary}`);
  if (ternary === 1 && bits !== 2) throw attrs.error(`ternary weights are stored as 2-bit codes, got bits=${bits}`);
  if (!(K > 0) || !(N > 0) || !(groupSize > 0)) throw attrs.error(`K, N and group_size must be positive, got K=${K} N=${N} group_size=${groupSize}`);
  atNode(attrs, () => checkSparseLayout(pattern, K, groupSize));
  if (K % groupSize !== 0) throw attrs.error(`K = ${K} is not a multiple of group_size = ${groupSize}`);
  return {
    bits, ternary: ternary === 1, groupSize, K, N, pattern,
    groups: K / groupSize, kept: keptPerRow(K, pattern), indexBytes: indexBytesPerRow(K, pattern),
  };
}

function expect(attrs: Attrs, what: string, type: TensorType | undefined, dtypes: readonly DType[], shape: readonly number[]): void {
  if (!type) return;
  if (!dtypes.includes(type.dtype)) throw attrs.error(`${what} must be ${dtypes.join(' or ')}, got ${type.dtype}`);
  const actual: readonly Dim[] | undefined = type.shape;
  if (!actual) return;
  const ok = actual.length === shape.length && actual.every((d, i) => typeof d !== 'number' || d === shape[i]);
  if (!ok) throw attrs.error(`${what} must have shape [${shape.join(',')}], got [${actual.join(',')}]`);
}

function checkInputs(attrs: Attrs, p: SparseQuantParams, inputs: readonly (TensorType | undefined)[]): TensorType {
  const [a, values, indices, scales, zeroPoints, bias] = inputs;
  if (!a || !values || !indices || !scales) throw attrs.error('inputs A, values, indices and scales are required');
  if (!ACTIVATION_DTYPES.includes(a.dtype)) throw attrs.error(`A must be f32, f16 or bf16, got ${a.dtype}`);
  if (a.shape) {
    if (a.shape.length === 0) throw attrs.error('A must have rank >= 1');
    const last = a.shape[a.shape.length - 1];
    if (typeof last === 'number' && last !== p.K) throw attrs.error(`A's last dim is ${last}, expected K=${p.K}`);
  }
  expect(attrs, 'values', values, ['u8'], [p.N, p.kept]);
  expect(attrs, 'indices', indices, ['u8'], [p.N, p.indexBytes]);
  expect(attrs, 'scales', scales, ['f32', 'f16'], [p.N, p.groups]);
  expect(attrs, 'zero_points', zeroPoints, ['f32'], [p.N, p.groups]);
  expect(attrs, 'bias', bias, ['f32'], [p.N]);
  return a;
}

/** The dense weight [N, K] (f32, zeros at pruned positions): exactly what the op multiplies by. */
export function sparseDenseWeight(
  values: ArrayLike<number>, positions: ArrayLike<number>, scales: ArrayLike<number>,
  zeroPoints: ArrayLike<number> | undefined, p: SparseQuantParams,
): Float32Array {
  const { n: keepN, m } = p.pattern;
  const fallback = defaultZeroPoint(p.bits, p.ternary);
  const w = new Float32Array(p.N * p.K);
  for (let row = 0; row < p.N; row++) {
    for (let f = 0; f < p.kept; f++) {
      const k = Math.floor(f / keepN) * m + positions[row * p.kept + f];
      const g = row * p.groups + Math.floor(k / p.groupSize);
      const z = zeroPoints ? zeroPoints[g] : fallback;
      w[row * p.K + k] = Math.fround((values[row * p.kept + f] - z) * scales[g]);
    }
  }
  return w;
}

export const SparseQuantMatMul: OpDef = {
  domain: 'llmcc',
  op: 'SparseQuantMatMul',
  infer(ctx) {
    const p = sparseQuantParams(ctx.attrs);
    const a = checkInputs(ctx.attrs, p, ctx.inputs);
    return [{ type: { dtype: a.dtype, shape: a.shape ? [...a.shape.slice(0, -1), p.N] : undefined } }];
  },
  evaluate(ctx) {
    const p = sparseQuantParams(ctx.attrs);
    checkInputs(ctx.attrs, p, ctx.inputs.map((t) => t && { dtype: t.dtype, shape: [...t.shape] }));
    const [a, values, indices, scales, zeroPoints, bias] = ctx.inputs as (Tensor | undefined)[];
    if (!a || !values || !indices || !scales) throw ctx.attrs.error('inputs A, values, indices and scales are required');
    const codes = values.numbers();
    const limit = p.ternary ? 2 : 2 ** p.bits - 1;
    for (let i = 0; i < codes.length; i++) {
      if (codes[i] > limit) throw ctx.attrs.error(`code ${codes[i]} at index ${i} is out of range for ${p.ternary ? 'ternary' : `${p.bits}-bit`} weights`);
    }
    const positions = atNode(ctx.attrs, () => unpackIndices(indices.numbers(), p.N, p.K, p.pattern));
    const w = sparseDenseWeight(codes, positions, scales.numbers(), zeroPoints?.numbers(), p);
    const av = a.numbers();
    const biasValues = bias?.numbers();
    const rows = av.length / p.K;
    const out = new Float64Array(rows * p.N);
    for (let r = 0; r < rows; r++) {
      for (let n = 0; n < p.N; n++) {
        let acc = 0;
        for (let k = 0; k < p.K; k++) acc += av[r * p.K + k] * w[n * p.K + k];
        out[r * p.N + n] = biasValues ? acc + biasValues[n] : acc;
      }
    }
    return [Tensor.fromNumbers(a.dtype, [...a.shape.slice(0, -1), p.N], out)];
  },
};
