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
import { EXIT_OK } from '../errors.js';
import { isBundleFile } from './run.js';

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
  if (!fs.existsSync(file)) return {};
  try {
    return hintsFromGenaiConfig(JSON.parse(fs.readFileSync(file, 'utf8')));
  } catch (error) {
    throw new LlmccError(`cannot read genai_config.json (${error instanceof Error ? error.message : String(error)})`, file);
  }
}

async function engineFor(modelPath: string, target: string): Promise<DecoderEngine> {
  if (await isBundleFile(modelPath)) {
    if (target !== 'wasm' && target !== 'ref') throw new LlmccError(`a bundle runs on the target it was compiled for (wasm), not '${target}'`, modelPath);
    const session = await load(modelPath);
    return { ...session.signature, run: (feeds) => session.run(feeds), carry: (pairs) => session.carry(pairs) };
  }
  const model = await loadModel(modelPath);
  if (target === 'wasm') {
    // The runtime session itself (not the generic backend one): it can keep the cache resident.
    const session = await sessionFromCompiled(await compileWasm(model));
    return { ...signatureOfGraph(model.graph), run: (feeds) => session.run(feeds), carry: (pairs) => session.carry(pairs) };
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
  const engine = await engineFor(modelPath, options.target);
  const result = await generate(engine, {
    promptIds,
    maxTokens: options.maxTokens,
    temperature: options.temperature,
    topK: options.topK,
    topP: options.topP,
    seed: options.seed,
    stopIds,
    hints: readHints(modelPath),
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
