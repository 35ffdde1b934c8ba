/**
 * IR tensor → onnxruntime tensor, for onnxruntime-node and -web alike: the caller passes its
 * package's Tensor constructor, so nothing here imports onnxruntime (a dev dependency).
 */
import { LlmccError } from '../../ir/errors.js';
import { numberToF16Bits } from '../../ir/float.js';
import type { Tensor } from '../../ir/tensor.js';

export type OrtTensorConstructor<T> = new (type: 'float32' | 'float16' | 'int64' | 'int32', data: Float32Array | Uint16Array | BigInt64Array | Int32Array, dims: number[]) => T;

export function toOrtTensor<T>(OrtTensor: OrtTensorConstructor<T>, t: Tensor): T {
  const dims = [...t.shape];
  const values = t.numbers();
  switch (t.dtype) {
    case 'f32': return new OrtTensor('float32', Float32Array.from(values), dims);
    case 'f16': return new OrtTensor('float16', Uint16Array.from(values, numberToF16Bits), dims);
    case 'i64': return new OrtTensor('int64', BigInt64Array.from(Array.from(values, (v) => BigInt(v))), dims);
    case 'i32': return new OrtTensor('int32', Int32Array.from(values), dims);
    default: throw new LlmccError(`no onnxruntime conversion for ${t.dtype} tensors`);
  }
}
