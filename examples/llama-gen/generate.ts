#!/usr/bin/env node
/**
 * Writes a LLaMA-style decoder ONNX with seeded random weights (see README.md).
 *   npx tsx examples/llama-gen/generate.ts --config tiny --out /tmp/llama-tiny
 *   npx tsx examples/llama-gen/generate.ts --config 1b --out /tmp/llama-1b --external-data --dtype f16 --no-test-data
 */
import { Command, InvalidArgumentError, Option } from 'commander';
import { LlmccError } from '../../ir/errors.js';
import { resolveConfig } from './config.js';
import { generateDecoder } from './decoder.js';
import type { ModelDType, OpFlavour } from './graph.js';

function parseSeed(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) throw new InvalidArgumentError('expected an integer in [0, 2^32)');
  return n;
}

function parsePositive(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError('expected a positive integer');
  return n;
}

function parseAccuracyLevel(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 4) throw new InvalidArgumentError('expected 0, 1, 2, 3 or 4');
  return n;
}

function parseIds(value: string): number[] {
  const ids = value.split(',').map((s) => Number(s.trim()));
  if (ids.length === 0 || ids.some((n) => !Number.isInteger(n) || n < 0)) throw new InvalidArgumentError('expected comma-separated token ids');
  return ids;
}

interface CliOptions {
  config: string;
  out: string;
  ops: OpFlavour;
  dtype: ModelDType;
  externalData?: boolean;
  seed: number;
  testData: boolean;
  promptIds?: number[];
  matmulnbits?: number;
  blockSize: number;
  accuracyLevel: number;
}

const program = new Command('llama-gen')
  .description('Write a LLaMA-style decoder ONNX (random weights) of any size from a config.')
  .requiredOption('--config <name|file.json>', 'tiny, 1b, or a JSON config (our keys or Hugging Face config.json names)')
  .requiredOption('--out <dir>', 'output folder (model.onnx, model.onnx.data, config.json, test_data_set_0/1)')
  .addOption(new Option('--ops <flavour>', 'op flavour').choices(['primitive', 'contrib']).default('primitive'))
  .addOption(new Option('--dtype <dtype>', 'weight and activation type').choices(['f32', 'f16']).default('f32'))
  .option('--external-data', 'stream the weights to model.onnx.data')
  .option('--seed <n>', 'random seed of the weights', parseSeed, 0)
  .option('--no-test-data', 'skip test_data_set_0/1 (they run the model on onnxruntime-node)')
  .option('--prompt-ids <ids>', 'prompt of test_data_set_0, e.g. 1,2,3', parseIds)
  .option('--matmulnbits <bits>', 'projections as com.microsoft.MatMulNBits with symmetric RTN weights of these bits (4)', parsePositive)
  .option('--block-size <n>', 'MatMulNBits block size along K', parsePositive, 32)
  .option('--accuracy-level <n>', 'MatMulNBits accuracy_level: 0 float, 4 int8 activations (ORT CPU fast path)', parseAccuracyLevel, 0)
  .action(async (opts: CliOptions) => {
    const started = Date.now();
    const result = await generateDecoder({
      config: resolveConfig(opts.config),
      out: opts.out,
      ops: opts.ops,
      dtype: opts.dtype,
      externalData: opts.externalData === true,
      seed: opts.seed,
      testData: opts.testData,
      ...(opts.promptIds ? { promptIds: opts.promptIds } : {}),
      ...(opts.matmulnbits ? { matmulNBits: { bits: opts.matmulnbits, blockSize: opts.blockSize, accuracyLevel: opts.accuracyLevel } } : {}),
    });
    const mb = (n: number): string => `${(n / 2 ** 20).toFixed(1)} MiB`;
    console.log(`wrote ${result.modelPath} (${mb(result.modelBytes)})${result.dataPath ? ` + ${result.dataPath} (${mb(result.dataBytes)})` : ''}`);
    const p = result.parameters;
    console.log(`parameters: ${p.toLocaleString('en-US')} (${p >= 1e9 ? `${(p / 1e9).toFixed(3)} B` : `${(p / 1e6).toFixed(3)} M`})`);
    for (const set of result.testDataSets) console.log(`wrote ${set}`);
    console.log(`done in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  });

try {
  await program.parseAsync(process.argv);
} catch (error) {
  if (error instanceof LlmccError) {
    process.stderr.write(`llama-gen: error: ${error.message}\n`);
    process.exitCode = 2;
  } else {
    throw error;
  }
}
