import * as fs from 'node:fs';
import * as path from 'node:path';
import ort from 'onnxruntime-node';
import { fromOrt, toOrt } from '../../examples/llama-gen/ort.js';
import { loadModel } from '../../src/onnx/load.js';
import { type DecoderEngine, type DecoderHints, generate, hintsFromGenaiConfig, signatureOfGraph } from '../../src/runtime/generate.js';

/** The single-graph decoders in ../shared/models (the pipeline model is tested on its own). */
export const SHARED_DECODERS = [
  'genai-tiny-random-gpt2-fp32',
  'genai-tiny-random-llama-fp16',
  'genai-tiny-qwen35-decoder-fp16',
  'genai-webgpu-tiny-gqa-fp16',
  'genai-static-scatter-bias-decoder',
];

/** genai_config.json next to the model (static cache length, cache names), when there is one. */
export function hintsFor(modelPath: string): DecoderHints {
  const file = path.join(path.dirname(modelPath), 'genai_config.json');
  return fs.existsSync(file) ? hintsFromGenaiConfig(JSON.parse(fs.readFileSync(file, 'utf8'))) : {};
}

/** An onnxruntime-node session as a generate() engine's `run` (every output back as an IR tensor). */
export function ortRun(session: ort.InferenceSession): DecoderEngine['run'] {
  return async (feeds) => {
    const input: Record<string, ort.Tensor> = {};
    for (const [name, t] of feeds) input[name] = toOrt(t);
    const result = await session.run(input);
    return new Map(session.outputNames.map((name) => [name, fromOrt(result[name])]));
  };
}

/** onnxruntime-node's greedy ids for the fp32/fp16 graph, through the same binding logic (generate() itself). */
export async function ortTokens(modelPath: string, promptIds: number[], maxTokens: number): Promise<number[]> {
  const session = await ort.InferenceSession.create(modelPath, { executionProviders: ['cpu'], logSeverityLevel: 3 });
  try {
    const model = await loadModel(modelPath);
    const engine: DecoderEngine = { ...signatureOfGraph(model.graph), run: ortRun(session) };
    return (await generate(engine, { promptIds, maxTokens, hints: hintsFor(modelPath) })).tokens;
  } finally {
    await session.release();
  }
}
