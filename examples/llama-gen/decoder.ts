/**
 * The generator as a library: config in, model.onnx (+ model.onnx.data) and backend-test
 * data sets out. generate.ts is the command line around it; the tests call it directly.
 */
import { headDim, type LlamaConfig, validateConfig } from './config.js';
import type { DecoderIo } from './greedy.js';
import { buildDecoderGraph, pastKeyName, presentName, type ModelDType, type OpFlavour } from './graph.js';
import { toMatMulNBits } from './nbits.js';
import { ortRunner, writeTestData } from './ort.js';
import { writeModel, type WrittenModel } from './write.js';

export interface GenerateOptions {
  config: LlamaConfig;
  out: string;
  ops: OpFlavour;
  dtype: ModelDType;
  externalData: boolean;
  seed: number;
  /** Write test_data_set_0/1 with onnxruntime-node's outputs (needs the model in memory once). */
  testData: boolean;
  /** Prompt of the prefill data set; default 5 seeded token ids. */
  promptIds?: number[];
  /** Projections as com.microsoft.MatMulNBits with RTN weights of these bits, in blocks along K. */
  matmulNBits?: { bits: number; blockSize: number; accuracyLevel?: number };
}

export interface GeneratedDecoder extends WrittenModel {
  testDataSets: string[];
  promptIds: number[];
}

/** The KV bindings and inputs of a generated decoder, known from its config. */
export function decoderIoFromConfig(config: LlamaConfig, dtype: ModelDType): DecoderIo {
  const kv = [];
  for (let l = 0; l < config.numLayers; l++) {
    for (const kind of ['key', 'value'] as const) {
      kv.push({ past: pastKeyName(l, kind), present: presentName(l, kind), dtype, kvHeads: config.numKvHeads, headDim: headDim(config) });
    }
  }
  return { kv, positionIds: true };
}

/** Graph input and output names in declaration order (the data sets follow it). */
export function ioOrder(config: LlamaConfig): { inputs: string[]; outputs: string[] } {
  const inputs = ['input_ids', 'attention_mask', 'position_ids'];
  const outputs = ['logits'];
  for (let l = 0; l < config.numLayers; l++) {
    for (const kind of ['key', 'value'] as const) {
      inputs.push(pastKeyName(l, kind));
      outputs.push(presentName(l, kind));
    }
  }
  return { inputs, outputs };
}

/** Deterministic prompt ids in [0, vocab) from the seed. */
export function defaultPrompt(config: LlamaConfig, seed: number, length = 5): number[] {
  let s = (seed * 2654435761 + 12345) >>> 0;
  return Array.from({ length }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s % config.vocabSize;
  });
}

export async function generateDecoder(options: GenerateOptions): Promise<GeneratedDecoder> {
  const config = validateConfig(options.config);
  const float = buildDecoderGraph(config, { ops: options.ops, dtype: options.dtype, seed: options.seed });
  const nbits = options.matmulNBits;
  const graph = nbits ? toMatMulNBits(float, nbits.bits, nbits.blockSize, nbits.accuracyLevel) : float;
  const written = writeModel(options.out, graph, {
    dtype: options.dtype, externalData: options.externalData, config, seed: options.seed,
    flavour: nbits ? `${options.ops}+matmulnbits${nbits.bits}/${nbits.blockSize}` : options.ops,
  });
  const promptIds = options.promptIds ?? defaultPrompt(config, options.seed);
  let testDataSets: string[] = [];
  if (options.testData) {
    const { run, release } = await ortRunner(written.modelPath);
    try {
      const order = ioOrder(config);
      testDataSets = await writeTestData(options.out, run, decoderIoFromConfig(config, options.dtype), order.inputs, order.outputs, promptIds);
    } finally {
      await release();
    }
  }
  return { ...written, testDataSets, promptIds };
}
