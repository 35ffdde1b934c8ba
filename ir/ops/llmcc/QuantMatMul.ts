import type { Dim, TensorType } from '../../graph.js';
import type { DType } from '../../dtype.js';
import { Tensor } from '../../tensor.js';
import type { Attrs } from '../attrs.js';
import type { OpDef } from '../types.js';

/**
 * llmcc.QuantMatMul(A, codes, scales, zero_points?, bias?) → Y
 *
 *   Y[..., n] = Σ_k A[..., k] · w[n, k] + bias[n],   w[n, k] = (codes[n, k] − z[n, g]) · scales[n, g],
 *   g = floor(k / group_size).
 *
 * `codes` is u8 [N, K] (one unpacked code per weight). Without zero_points, z = 2^(bits−1)
 * (symmetric codes are stored offset-binary), or 1 for ternary. Each weight is dequantized
 * to f32 as `fround((q − z) · s)` (as MatMulNBits does; the same as DequantizeLinear's
 * `fround(fround(q − z) · s)` for integer zero points), the sum is taken in f64 and rounded
 * once to A's dtype. K need not be a multiple of group_size: the last group is
 * partial and there are ceil(K / group_size) groups (MatMulNBits allows this).
 */

const ACTIVATION_DTYPES: readonly DType[] = ['f32', 'f16', 'bf16'];
const SCALE_DTYPES: readonly DType[] = ['f32', 'f16'];

interface QuantParams {
  bits: number;
  groupSize: number;
  ternary: boolean;
  k: number;
  n: number;
  groups: number;
}

function readParams(attrs: Attrs): QuantParams {
  const bits = attrs.int('bits');
  const groupSize = attrs.int('group_size');
  const ternaryFlag = attrs.int('ternary', 0);
  const k = attrs.int('K');
  const n = attrs.int('N');
  if (![1, 2, 3, 4, 8].includes(bits)) throw attrs.error(`bits must be 1, 2, 3, 4 or 8, got ${bits}`);
  if (ternaryFlag !== 0 && ternaryFlag !== 1) throw attrs.error(`ternary must be 0 or 1, got ${ternaryFlag}`);
  if (ternaryFlag === 1 && bits !== 2) throw attrs.error(`ternary weights are stored as 2-bit codes, got bits=${bits}`);
  if (!(groupSize > 0)) throw attrs.error(`group_size must be positive, got ${groupSize}`);
  if (!(k > 0) || !(n > 0)) throw attrs.error(`K and N must be positive, got K=${k} N=${n}`);
  return { bits, groupSize, ternary: ternaryFlag === 1, k, n, groups: Math.ceil(k / groupSize) };
}

function checkShape(attrs: Attrs, what: string, actual: readonly Dim[] | undefined, expected: readonly number[]): void {
  if (!actual) return;
  const matches = actual.length === expected.length &&
    actual.every((d, i) => typeof d !== 'number' || d === expected[i]);
  if (!matches) throw attrs.error(`${what} must have shape [${expected.join(',')}], got [${actual.join(',')}]`);
}

function checkDtype(attrs: Attrs, what: string, dtype: DType, allowed: readonly DType[]): void {
  if (!allowed.includes(dtype)) throw attrs.error(`${what} must be ${allowed.join(' or ')}, got ${dtype}`);
}

/** Checks every input's type against the attributes; shared by infer and evaluate. */
function checkInputs(attrs: Attrs, p: QuantParams, inputs: readonly (TensorType | undefined)[]): TensorType {
  const [a, codes, scales, zeroPoints, bias] = inputs;
  if (!a || !codes || !scales) throw attrs.error('inputs A, codes and scales are required');
  checkDtype(attrs, 'A', a.dtype, ACTIVATION_DTYPES);
  if (a.shape) {
    if (a.shape.length === 0) throw attrs.error('A must have rank >= 1');
    const last = a.shape[a.shape.length - 1];
    if (typeof last === 'number' && last !== p.k) throw attrs.error(`A's last dim is ${last}, expected K=${p.k}`);
  }
  checkDtype(attrs, 'codes', codes.dtype, ['u8']);
  checkShape(attrs, 'codes', codes.shape, [p.n, p.k]);
  checkDtype(attrs, 'scales', scales.dtype, SCALE_DTYPES);
  checkShape(attrs, 'scales', scales.shape, [p.n, p.groups]);
  if (zeroPoints) {
    checkDtype(attrs, 'zero_points', zeroPoints.dtype, ['f32']);
    checkShape(attrs, 'zero_points', zeroPoints.shape, [p.n, p.groups]);
  }
  if (bias) {
    checkDtype(attrs, 'bias', bias.dtype, ['f32']);
    checkShape(attrs, 'bias', bias.shape, [p.n]);
  }
  return a;
}

/** The zero point a group uses when no zero_points input is given. */
export function defaultZeroPoint(bits: number, ternary: boolean): number {
  return ternary ? 1 : 2 ** (bits - 1);
}

/** Dequantizes the weight to f32 values, row-major [N, K]: exactly what the op multiplies by. */
export function dequantizeCodes(
  codes: ArrayLike<number>, scales: ArrayLike<number>, zeroPoints: ArrayLike<number> | undefined,
  p: { bits: number; ternary: boolean; groupSize: number; k: number; n: number },
): Float32Array {
  const groups = Math.ceil(p.k / p.groupSize);
  const fallback = defaultZeroPoint(p.bits, p.ternary);
  const w = new Float32Array(p.n * p.k);
  for (let row = 0; row < p.n; row++) {
    for (let col = 0; col < p.k; col++) {
      const g = row * groups + Math.floor(col / p.groupSize);
      const z = zeroPoints ? zeroPoints[g] : fallback;
      w[row * p.k + col] = Math.fround((codes[row * p.k + col] - z) * scales[g]);
    }
  }
  return w;
}

export const QuantMatMul: OpDef = {
  domain: 'llmcc',
  op: 'QuantMatMul',
  infer(ctx) {
    const p = readParams(ctx.attrs);
    const a = checkInputs(ctx.attrs, p, ctx.inputs);
    const shape = a.shape ? [...a.shape.slice(0, -1), p.n] : undefined;
    return [{ type: { dtype: a.dtype, shape } }];
  },
  evaluate(ctx) {
    const p = readParams(ctx.attrs);
    const [a, codes, scales, zeroPoints, bias] = ctx.inputs;
    checkInputs(ctx.attrs, p, ctx.inputs.map((t) => t && { dtype: t.dtype, shape: [...t.shape] }));
    if (!a || !codes || !scales) throw ctx.attrs.error('inputs A, codes and scales are required');
    const codeValues = codes.numbers();
    const limit = 2 ** p.bits - 1;
    for (let i = 0; i < codeValues.length; i++) {
      if (codeValues[i] > limit || (p.ternary && codeValues[i] > 2)) {
        throw ctx.attrs.error(`code ${codeValues[i]} at index ${i} is out of range for ${p.ternary ? 'ternary' : `${p.bits}-bit`} weights`);
      }
    }
    const w = dequantizeCodes(codeValues, scales.numbers(), zeroPoints?.numbers(), p);
    const av = a.numbers();
    const biasValues = bias?.numbers();
    const rows = av.length / p.k;
    const out = new Float64Array(rows * p.n);
    for (let m = 0; m < rows; m++) {
      const aBase = m * p.k;
      for (let n = 0; n < p.n; n++) {
        const wBase = n * p.k;
        let acc = 0;
        for (let k = 0; k < p.k; k++) acc += av[aBase + k] * w[wBase + k];
        out[m * p.n + n] = biasValues ? acc + biasValues[n] : acc;
      }
    }
    return [Tensor.fromNumbers(a.dtype, [...a.shape.slice(0, -1), p.n], out)];
  },
};
