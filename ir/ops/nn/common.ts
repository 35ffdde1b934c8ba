import type { Dim, TensorType } from '../../graph.js';
import { type DType, dtypeFromOnnx, isFloat } from '../../dtype.js';
import type { Attrs } from '../attrs.js';
import type { InferContext } from '../types.js';
import { broadcastIndex, broadcastShapes } from '../util/shape.js';
import { LlmccError } from '../../errors.js';

/** Helpers shared by the nn group's ops (matmul shapes and kernels, dtype attributes, rounding). */

/** The type of a required input, or an error naming it. */
export function requireInput(ctx: InferContext, index: number, name: string): TensorType {
  const type = ctx.inputs[index];
  if (!type) throw ctx.attrs.error(`missing required input ${index} (${name})`);
  return type;
}

/** A dtype named by an ONNX TensorProto code attribute (stash_type, output_dtype, precision …). */
export function dtypeAttr(attrs: Attrs, name: string, code: number): DType {
  const dtype = dtypeFromOnnx(code);
  if (!dtype) throw attrs.error(`attribute '${name}' names unsupported data type ${code}`);
  return dtype;
}

export function requireFloat(attrs: Attrs, dtype: DType, what: string): void {
  if (!isFloat(dtype)) throw attrs.error(`${what} must be a float tensor, got ${dtype}`);
}

/** numpy.rint: round half to even. */
export function roundHalfEven(x: number): number {
  if (!Number.isFinite(x)) return x;
  const r = Math.round(x);
  // Math.round rounds .5 up; step back when that lands on an odd number at an exact tie.
  return r - x === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/**
 * numpy matmul shape rule: 1-D operands are promoted (a to [1,K], b to [K,1]) and the
 * promoted dim is dropped again; leading (batch) dims broadcast.
 */
export function matmulShape(attrs: Attrs, a: readonly Dim[], b: readonly Dim[]): Dim[] {
  if (a.length === 0 || b.length === 0) throw attrs.error('MatMul operands must have rank >= 1');
  const aMat = a.length === 1 ? [1, a[0]] : a;
  const bMat = b.length === 1 ? [b[0], 1] : b;
  const k1 = aMat[aMat.length - 1];
  const k2 = bMat[bMat.length - 2];
  if (typeof k1 === 'number' && typeof k2 === 'number' && k1 !== k2) {
    throw attrs.error(`inner dimensions do not match: [${a.join(',')}] x [${b.join(',')}]`);
  }
  let batch: Dim[];
  try {
    batch = broadcastShapes(aMat.slice(0, -2), bMat.slice(0, -2));
  } catch (e) {
    if (e instanceof LlmccError) throw attrs.error(e.message);
    throw e;
  }
  const out = [...batch];
  if (a.length !== 1) out.push(aMat[aMat.length - 2]);
  if (b.length !== 1) out.push(bMat[bMat.length - 1]);
  return out;
}

/**
 * numpy matmul on plain numbers, accumulating in f64 (exact for the integer kernels, the
 * oracle's precision for floats). Returns the output shape and unrounded values.
 */
export function matmulValues(
  attrs: Attrs,
  a: ArrayLike<number>, aShape: readonly number[],
  b: ArrayLike<number>, bShape: readonly number[],
): { shape: number[]; values: Float64Array } {
  const shape = matmulShape(attrs, aShape, bShape) as number[];
  const aMat = aShape.length === 1 ? [1, aShape[0]] : [...aShape];
  const bMat = bShape.length === 1 ? [bShape[0], 1] : [...bShape];
  const m = aMat[aMat.length - 2];
  const k = aMat[aMat.length - 1];
  const n = bMat[bMat.length - 1];
  const aBatch = aMat.slice(0, -2);
  const bBatch = bMat.slice(0, -2);
  const outBatch = broadcastShapes(aBatch, bBatch) as number[];
  const batches = outBatch.reduce((x, y) => x * y, 1);
  const aIndex = broadcastIndex(outBatch, aBatch);
  const bIndex = broadcastIndex(outBatch, bBatch);
  const values = new Float64Array(batches * m * n);
  for (let bi = 0; bi < batches; bi++) {
    const aBase = aIndex[bi] * m * k;
    const bBase = bIndex[bi] * k * n;
    const outBase = bi * m * n;
    // i-p-j order walks B row by row; each output still sums its products in p order.
    for (let i = 0; i < m; i++) {
      const row = outBase + i * n;
      for (let p = 0; p < k; p++) {
        const aip = a[aBase + i * k + p];
        const bRow = bBase + p * n;
        for (let j = 0; j < n; j++) values[row + j] += aip * b[bRow + j];
      }
    }
  }
  return { shape, values };
}
