/**
 * `llmcc bench decoders`: decode tokens/s and time to first token of every decoder in a models
 * folder (default ../shared/models: the real exporters' graphs) on llmcc-wasm against
 * onnxruntime-web (wasm EP) and onnxruntime-node (CPU EP) running the same float graph, through
 * the same generate() loop (greedy, same prompt, genai_config hints where the folder has one). Each implementation runs in
 * its own child process (src/bench/decode.ts); bundles are compiled to a temp folder and reused
 * while newer than the model.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { LlmccError } from '../../ir/errors.js';
import { hintsFromGenaiConfig } from '../runtime/generate.js';
import { isPipelineConfig } from '../runtime/pipeline.js';
import { DEFAULT_WARMUP_TOKENS, type DecodeImpl, type DecodeResult, benchPrompt, ensureBundle, formatDecodeResults, runDecodeImpls } from './decode.js';

export interface DecodersBenchOptions {
  modelsDir: string;
  promptLength: number;
  /** DecodeRunSpec.warmupTokens. */
  warmupTokens: number;
  maxTokens: number;
  ortThreads: number;
  bundleDir: string;
  rebuild: boolean;
}

export interface DecoderBenchRow {
  model: string;
  results: DecodeResult[];
}

/** The default models folder: ../shared/models beside the working directory's checkout. */
export function defaultModelsDir(): string {
  return path.resolve('..', 'shared', 'models');
}

export function defaultDecodersOptions(): DecodersBenchOptions {
  return { modelsDir: defaultModelsDir(), promptLength: 4, maxTokens: 32, warmupTokens: DEFAULT_WARMUP_TOKENS, ortThreads: 1, bundleDir: path.join(os.tmpdir(), 'llmcc-bench-decoders'), rebuild: false };
}

/** Folders holding one decoder graph: model.onnx, and a genai_config.json (if any) that is not a pipeline. */
function decoderFolders(modelsDir: string): string[] {
  if (!fs.existsSync(modelsDir)) throw new LlmccError('models folder not found (pass --models DIR)', modelsDir);
  return fs.readdirSync(modelsDir).sort().filter((name) => {
    const dir = path.join(modelsDir, name);
    if (!fs.existsSync(path.join(dir, 'model.onnx'))) return false;
    const config = readConfig(dir);
    return config === undefined || !isPipelineConfig(config);
  });
}

function readConfig(dir: string): unknown {
  const file = path.join(dir, 'genai_config.json');
  return fs.existsSync(file) ? JSON.parse(fs.readFileSync(file, 'utf8')) : undefined;
}

export async function runDecodersBench(options: DecodersBenchOptions, log: (line: string) => void): Promise<DecoderBenchRow[]> {
  const rows: DecoderBenchRow[] = [];
  fs.mkdirSync(options.bundleDir, { recursive: true });
  for (const name of decoderFolders(options.modelsDir)) {
    const model = path.join(options.modelsDir, name, 'model.onnx');
    const config = readConfig(path.join(options.modelsDir, name));
    const hints = config === undefined ? {} : hintsFromGenaiConfig(config);
    const bundle = path.join(options.bundleDir, `${name}.llmcc`);
    await ensureBundle(model, bundle, undefined, options.rebuild, log);
    const impls: DecodeImpl[] = [
      { kind: 'llmcc', label: 'llmcc-wasm (graph as exported)', bundle },
      { kind: 'ort-web', label: 'onnxruntime-web wasm', model, threads: options.ortThreads },
      { kind: 'ort-node', label: 'onnxruntime-node cpu', model, threads: options.ortThreads },
    ];
    log(`${name}:`);
    const results = await runDecodeImpls(impls, { promptIds: benchPrompt(options.promptLength), maxTokens: options.maxTokens, warmupTokens: options.warmupTokens, hints }, log);
    rows.push({ model: name, results });
  }
  return rows;
}

/** One table per model (the decode bench's format), ratios against the ORT rows of the same run. */
export function formatDecodersBench(rows: DecoderBenchRow[], options: DecodersBenchOptions): string[] {
  return rows.flatMap((row) => [``, `== ${row.model}`, ...formatDecodeResults(row.results, options)]);
}
