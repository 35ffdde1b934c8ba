import * as fs from 'node:fs';
import * as path from 'node:path';
import { LlmccError } from '../../../ir/errors.js';
import { getBackend } from '../../../targets/registry.js';
import { loadModel } from '../../onnx/load.js';
import { load, sessionFromCompiled } from '../../runtime/index.js';
import { compileWasm } from '../../../targets/wasm/compile.js';
import {
  type DecoderEngine, type DecoderHints, generate, hintsFromGenaiConfig, signatureOfGraph,
} from '../../runtime/generate.js';
import { isPipelineConfig, openPipeline } from '../../runtime/pipeline.js';
import { EXIT_OK } from '../errors.js';
import { isBundleFile } from './run.js';
import { neonDecoderEngine } from '../../../targets/neon/engine.js';
import { neonModeFromFlags } from '../../../targets/neon/cli.js';
import type { NeonMode } from '../../../targets/neon/toolchain.js';

export interface GenerateCliOptions {
  target: string;
  promptIds: string;
  maxTokens: number;
  temperature?: number;
  topK?: number;
  topP?: number;
  seed?: number;
  stop?: string;
  json?: boolean;
  /** neon: build for the host through SIMDe instead of aarch64 under qemu. */
  host?: boolean;
  /** neon: qemu CPU, max (default) or cortex-a53. */
  cpu?: string;
  /** wasm: threads for the LUT matmuls (worker threads on a shared memory). */
  threads?: number;
}

/** Parses "1,2,3" into token ids. */
function parseIds(text: string, flag: string): number[] {
  const ids = text.split(',').map((s) => s.trim()).filter((s) => s !== '').map(Number);
  if (ids.some((id) => !Number.isInteger(id) || id < 0)) throw new LlmccError(`${flag} takes comma-separated non-negative integers, got '${text}'`);
  return ids;
}

/** genai_config.json next to the model (static cache length, cache names), when there is one. */
function readHints(modelPath: string): DecoderHints {
  const file = path.join(path.dirname(modelPath), 'genai_config.json');
  return fs.existsSync(file) ? hintsFromGenaiConfig(readGenaiConfig(file)) : {};
}

function readGenaiConfig(file: string): unknown {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (error) {
    throw new LlmccError(`cannot read genai_config.json (${error instanceof Error ? error.message : String(error)})`, file);
  }
}

/** A model file, or a folder / genai_config.json: the pipeline of graphs it declares, else its model.onnx. */
async function openDecoder(modelPath: string, target: string, neonMode?: NeonMode, threads = 1): Promise<{ engine: DecoderEngine; hints: DecoderHints }> {
  const isFolder = fs.statSync(modelPath, { throwIfNoEntry: false })?.isDirectory() ?? false;
  const configFile = isFolder ? path.join(modelPath, 'genai_config.json') : path.basename(modelPath) === 'genai_config.json' ? modelPath : undefined;
  const config = configFile && fs.existsSync(configFile) ? readGenaiConfig(configFile) : undefined;
  if (!configFile || !config || !isPipelineConfig(config)) {
    const model = configFile ? path.join(path.dirname(configFile), 'model.onnx') : modelPath;
    return { engine: await engineFor(model, target, neonMode, threads), hints: readHints(model) };
  }
  const folder = path.dirname(configFile);
  const engine = await openPipeline(config, {
    where: configFile,
    exists: (file) => fs.existsSync(path.join(folder, file)),
    stageEngine: (file) => engineFor(path.join(folder, file), target, neonMode, threads),
  });
  return { engine, hints: hintsFromGenaiConfig(config) };
}

async function engineFor(modelPath: string, target: string, neonMode?: NeonMode, threads = 1): Promise<DecoderEngine> {
  if (await isBundleFile(modelPath)) {
    if (target !== 'wasm' && target !== 'ref') throw new LlmccError(`a bundle runs on the target it was compiled for (wasm), not '${target}'`, modelPath);
    const session = await load(modelPath, { threads });
    return { ...session.signature, run: (feeds) => session.run(feeds), carry: (pairs) => session.carry(pairs) };
  }
  if (threads !== 1 && target !== 'wasm') throw new LlmccError('--threads applies to --target wasm and to bundles', modelPath);
  const model = await loadModel(modelPath);
  if (target === 'wasm') {
    // The runtime session itself (not the generic backend one): it can keep the cache resident.
    const session = await sessionFromCompiled(await compileWasm(model), { threads });
    return { ...signatureOfGraph(model.graph), run: (feeds) => session.run(feeds), carry: (pairs) => session.carry(pairs) };
  }
  if (target === 'neon') {
    // One C build of every step shape and one long-lived process; the cache stays in it.
    return neonDecoderEngine(model, {
      mode: neonMode,
      onBuilt: (s) => process.stderr.write(`neon: ${s.programs} step program(s) for ${s.steps} step(s), compiled in ${(s.compileMs / 1000).toFixed(1)} s, built in ${(s.buildMs / 1000).toFixed(1)} s\n`),
    });
  }
  const backend = getBackend(target);
  const session = await backend.prepare(model);
  return { ...signatureOfGraph(model.graph), run: (feeds) => session.run(feeds) };
}

/** `llmcc generate`: prefill + token-by-token decode with the KV cache; prints ids and timings. */
export async function generateCommand(modelPath: string, options: GenerateCliOptions): Promise<number> {
  const promptIds = parseIds(options.promptIds, '--prompt-ids');
  if (promptIds.length === 0) throw new LlmccError('--prompt-ids needs at least one token id');
  const stopIds = options.stop ? parseIds(options.stop, '--stop') : undefined;
  if (options.topK !== undefined && !Number.isInteger(options.topK)) throw new LlmccError(`--top-k takes an integer, got ${options.topK}`);
  if (options.target !== 'neon' && (options.host || options.cpu)) throw new LlmccError('--host and --cpu apply to --target neon');
  const neonMode = options.target === 'neon' ? neonModeFromFlags(options) : undefined;
  const { engine, hints } = await openDecoder(modelPath, options.target, neonMode, options.threads);
  const result = await generate(engine, {
    promptIds,
    maxTokens: options.maxTokens,
    temperature: options.temperature,
    topK: options.topK,
    topP: options.topP,
    seed: options.seed,
    stopIds,
    hints,
    onToken: options.json ? undefined : (id) => process.stdout.write(`${id}\n`),
  });
  const tokensPerS = Number.isFinite(result.tokensPerS) ? Number(result.tokensPerS.toFixed(2)) : null;
  const ttftMs = Number.isFinite(result.ttftMs) ? Number(result.ttftMs.toFixed(2)) : null;
  if (options.json) {
    console.log(JSON.stringify({ tokens: result.tokens, tokens_per_s: tokensPerS, ttft_ms: ttftMs, stop_reason: result.stopReason, cache_resident: result.cacheResident }));
  } else {
    console.log(`generated ${result.tokens.length} token(s) on ${options.target} (${result.stopReason}): ${result.tokens.join(',')}`);
    console.log(`time to first token ${ttftMs ?? '-'} ms, decode ${tokensPerS ?? '-'} tokens/s${result.cacheResident ? ', KV cache resident on the target' : ''}`);
  }
  return EXIT_OK;
}
