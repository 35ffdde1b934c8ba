/**
 * onnxruntime-node as a RunFn (llmcc Tensors in and out), and the writer of the backend-test
 * data sets: test_data_set_0 = prefill of a prompt, test_data_set_1 = one decode step fed
 * with the prefill's present.* (expected outputs from onnxruntime-node).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import ort from 'onnxruntime-node';
import type { DType } from '../../ir/dtype.js';
import { LlmccError } from '../../ir/errors.js';
import { f16BitsToNumber } from '../../ir/float.js';
import { Tensor } from '../../ir/tensor.js';
import { encodeTensorProto } from '../../src/onnx/tensor-proto.js';
import { toOrtTensor } from '../../src/bench/ort-tensor.js';
import { argmaxRow, stepFeeds, type DecoderIo, type RunFn } from './greedy.js';

export function toOrt(t: Tensor): ort.Tensor {
  return toOrtTensor(ort.Tensor, t);
}

export function fromOrt(t: ort.Tensor): Tensor {
  const shape = t.dims.map(Number);
  const convert = (dtype: DType, values: ArrayLike<number>): Tensor => Tensor.fromNumbers(dtype, shape, values);
  switch (t.type) {
    case 'float32': return convert('f32', t.data as Float32Array);
    case 'float16': return convert('f16', Array.from(t.data as Uint16Array, f16BitsToNumber));
    case 'int64': return convert('i64', Array.from(t.data as BigInt64Array, Number));
    case 'int32': return convert('i32', t.data as Int32Array);
    default: throw new LlmccError(`no conversion from onnxruntime ${t.type} tensors`);
  }
}

/** An onnxruntime-node CPU session as a RunFn (the model is read from its file, external data too). */
export async function ortRunner(modelPath: string): Promise<{ run: RunFn; release: () => Promise<void> }> {
  const session = await ort.InferenceSession.create(modelPath, { executionProviders: ['cpu'], graphOptimizationLevel: 'all' });
  const run: RunFn = async (feeds) => {
    const input: Record<string, ort.Tensor> = {};
    for (const [name, t] of feeds) input[name] = toOrt(t);
    const result = await session.run(input);
    return new Map(session.outputNames.map((name) => [name, fromOrt(result[name])]));
  };
  return { run, release: () => session.release() };
}

/**
 * Writes test_data_set_0 (prefill of `promptIds`) and test_data_set_1 (decode of the
 * prefill's greedy next token) next to the model, inputs and outputs in graph order.
 */
export async function writeTestData(
  dir: string, run: RunFn, io: DecoderIo, inputOrder: string[], outputOrder: string[], promptIds: number[],
): Promise<string[]> {
  const written: string[] = [];
  const write = (set: number, feeds: Map<string, Tensor>, outputs: Map<string, Tensor>): void => {
    const setDir = path.join(dir, `test_data_set_${set}`);
    fs.rmSync(setDir, { recursive: true, force: true });
    fs.mkdirSync(setDir, { recursive: true });
    inputOrder.forEach((name, k) => {
      const t = feeds.get(name);
      if (!t) throw new LlmccError(`no feed for input '${name}'`);
      fs.writeFileSync(path.join(setDir, `input_${k}.pb`), encodeTensorProto(t, name));
    });
    outputOrder.forEach((name, k) => {
      const t = outputs.get(name);
      if (!t) throw new LlmccError(`onnxruntime returned no '${name}'`);
      fs.writeFileSync(path.join(setDir, `output_${k}.pb`), encodeTensorProto(t, name));
    });
    written.push(setDir);
  };
  const prefillFeeds = stepFeeds(io, promptIds, 0, undefined);
  const prefill = await run(prefillFeeds);
  write(0, prefillFeeds, prefill);
  const logits = prefill.get('logits');
  if (!logits) throw new LlmccError("onnxruntime returned no 'logits'");
  const next = argmaxRow(logits.numbers(), logits.shape[1] - 1, logits.shape[2]);
  const decodeFeeds = stepFeeds(io, [next], promptIds.length, prefill);
  write(1, decodeFeeds, await run(decodeFeeds));
  return written;
}
