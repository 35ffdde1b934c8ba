/**
 * `llmcc bench decode`: end-to-end token generation of one decoder (the generated 1B LLaMA,
 * examples/llama-gen) on llmcc-wasm at the given bits vs onnxruntime-web (wasm EP) and
 * onnxruntime-node (CPU EP) running the MatMulNBits 4-bit graph of the same weights. Each
 * implementation runs in its own child process (so peak RSS is its own), through the same
 * generate() loop (greedy, same prompt), and reports time to first token (prefill of the
 * prompt), decode tokens/s and peak RSS. Printed side by side, with ratios, in one run.
 *
 * llmcc bundles are compiled first (each in a child too: `llmcc compile --lower --bits B`)
 * into `llmcc-q<B>.llmcc` next to the model (or --bundle-dir), and reused by the next run
 * while they are newer than the model and its external data (--rebuild compiles anyway).
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { DType } from '../../ir/dtype.js';
import { LlmccError } from '../../ir/errors.js';
import { f16BitsToNumber } from '../../ir/float.js';
import { Tensor } from '../../ir/tensor.js';
import { loadModel } from '../onnx/load.js';
import { type DecoderEngine, type DecoderHints, generate, signatureOfGraph } from '../runtime/generate.js';
import { load } from '../runtime/index.js';
import { toOrtTensor } from './ort-tensor.js';

export type DecodeImpl =
  | { kind: 'llmcc'; label: string; bundle: string }
  | { kind: 'ort-node' | 'ort-web'; label: string; model: string; threads: number };

export interface DecodeBenchOptions {
  /** Float (f16/f32) decoder: llmcc quantizes it to each of `bits`. */
  model: string;
  /** The same decoder with MatMulNBits 4-bit weights (llama-gen --matmulnbits 4), for ORT. */
  nbitsModel?: string;
  bits: number[];
  /** Also compile and run the MatMulNBits graph on llmcc (pre-quantized import). */
  llmccNbits: boolean;
  promptLength: number;
  maxTokens: number;
  ortThreads: number;
  /** DecodeRunSpec.warmupTokens. */
  warmupTokens: number;
  /** Where compiled bundles are kept; default: the model's folder. */
  bundleDir?: string;
  /** Which rows: llmcc, ort-node, ort-web. */
  impls: string[];
  /** Compile the llmcc bundles even when up to date. */
  rebuild?: boolean;
}

export interface DecodeResult {
  label: string;
  tokens: number[];
  loadMs: number;
  ttftMs: number;
  tokensPerS: number;
  peakRssMiB: number;
  cacheResident?: boolean;
  error?: string;
  /** Decode tokens/s over the ORT rows' (absent: no such row, or a failed one). */
  vsWeb?: number;
  vsNode?: number;
}

/** Seeded prompt ids in [1, 200) (inside any vocabulary, the tiny test configs' too). */
export function benchPrompt(length: number): number[] {
  let s = 12345;
  return Array.from({ length }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return 1 + (s % 199);
  });
}

const MAIN = fileURLToPath(new URL('../cli/main.js', import.meta.url));

interface ChildOutcome { code: number; stdout: string; stderr: string }

function runChild(args: string[], echo: boolean): Promise<ChildOutcome> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--max-old-space-size=8192', MAIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => { stdout += d; });
    child.stderr.on('data', (d: Buffer) => { stderr += d; if (echo) process.stderr.write(d); });
    child.on('close', (code) => resolve({ code: code ?? 1, stdout, stderr }));
  });
}

/** Modification time of the model and its external data files (newest), ms. */
function modelTime(model: string): number {
  const dir = path.dirname(model);
  const data = fs.readdirSync(dir).filter((f) => f.startsWith(`${path.basename(model)}.data`) || f === `${path.basename(model, '.onnx')}.onnx_data`);
  return Math.max(...[model, ...data.map((f) => path.join(dir, f))].map((f) => fs.statSync(f).mtimeMs));
}

/** Compiles the bundle in a child unless an up-to-date one exists (newer than the model). */
export async function ensureBundle(model: string, bundle: string, bits: number | undefined, rebuild: boolean, log: (line: string) => void): Promise<void> {
  if (!rebuild && fs.existsSync(bundle) && fs.statSync(bundle).mtimeMs >= modelTime(model)) {
    log(`reusing ${bundle} (newer than the model; --rebuild to compile again)`);
    return;
  }
  log(`compiling ${bundle} (${bits ? `--lower --bits ${bits}` : '--lower: fusions, pre-quantized weights imported as they are'}) ...`);
  const started = Date.now();
  const args = ['compile', model, '--target', 'wasm', '-o', bundle, '--lower', ...(bits ? ['--bits', String(bits)] : [])];
  const outcome = await runChild(args, true);
  if (outcome.code !== 0) throw new LlmccError(`compiling failed (exit ${outcome.code}): ${outcome.stderr.trim().split('\n').at(-1) ?? ''}`, model);
  log(`compiled in ${((Date.now() - started) / 1000).toFixed(0)} s`);
}

/** Runs every implementation, each in a child process; returns rows in order. */
export async function runDecodeBench(options: DecodeBenchOptions, log: (line: string) => void): Promise<DecodeResult[]> {
  const impls: DecodeImpl[] = [];
  const dir = options.bundleDir ?? path.dirname(options.model);
  if (options.impls.includes('llmcc')) {
    for (const bits of options.bits) {
      const bundle = path.join(dir, `llmcc-q${bits}.llmcc`);
      await ensureBundle(options.model, bundle, bits, options.rebuild === true, log);
      impls.push({ kind: 'llmcc', label: `llmcc-wasm ${bits}-bit`, bundle });
    }
    if (options.llmccNbits && options.nbitsModel) {
      const bundle = path.join(options.bundleDir ?? path.dirname(options.nbitsModel), 'llmcc-nbits.llmcc');
      await ensureBundle(options.nbitsModel, bundle, undefined, options.rebuild === true, log);
      impls.push({ kind: 'llmcc', label: 'llmcc-wasm 4-bit (MatMulNBits graph)', bundle });
    }
  }
  for (const kind of ['ort-web', 'ort-node'] as const) {
    if (!options.impls.includes(kind)) continue;
    if (!options.nbitsModel) throw new LlmccError(`--nbits-model is needed for the ${kind} rows`);
    impls.push({ kind, label: `${kind === 'ort-web' ? 'onnxruntime-web wasm' : 'onnxruntime-node cpu'} 4-bit MatMulNBits`, model: options.nbitsModel, threads: options.ortThreads });
  }
  return runDecodeImpls(impls, { promptIds: benchPrompt(options.promptLength), maxTokens: options.maxTokens, warmupTokens: options.warmupTokens }, log);
}

/** What every implementation's child runs: the same prompt and generate() options. */
/** Default DecodeRunSpec.warmupTokens: enough for V8 to tier up the runtime's JS (and ORT's). */
export const DEFAULT_WARMUP_TOKENS = 2;

export interface DecodeRunSpec {
  promptIds: number[];
  maxTokens: number;
  /**
   * New tokens of a warm-up generation run first in the same process, from the prompt's first
   * token alone: its positions (0 … warmupTokens) are not the measured run's (from the prompt's
   * length on), so it warms JIT tiers (ours and ORT's) without handing llmcc cached plans for
   * the measured steps. 0: the measured run is the process's first.
   */
  warmupTokens: number;
  /** genai_config knowledge (static cache length, cache names). */
  hints?: DecoderHints;
}

/** Runs each implementation in its own child process (so peak RSS is its own); rows in order, with ratios. */
export async function runDecodeImpls(impls: DecodeImpl[], run: DecodeRunSpec, log: (line: string) => void): Promise<DecodeResult[]> {
  const results: DecodeResult[] = [];
  for (const impl of impls) {
    log(`running ${impl.label} ...`);
    const spec = JSON.stringify({ impl, ...run });
    const outcome = await runChild(['bench', 'decode', '--child', spec], false);
    const last = outcome.stdout.trim().split('\n').at(-1) ?? '';
    try {
      results.push(JSON.parse(last) as DecodeResult);
    } catch {
      const why = outcome.stderr.trim().split('\n').filter((l) => l).at(-1) ?? `exit ${outcome.code}`;
      results.push({ label: impl.label, tokens: [], loadMs: NaN, ttftMs: NaN, tokensPerS: NaN, peakRssMiB: NaN, error: why });
    }
  }
  return withRatios(results);
}

/** Each row's decode tokens/s over the ORT rows' (measured in this run). */
export function withRatios(results: DecodeResult[]): DecodeResult[] {
  const ok = (r: DecodeResult | undefined): r is DecodeResult => !!r && !r.error && Number.isFinite(r.tokensPerS) && r.tokensPerS > 0;
  const web = results.find((r) => r.label.startsWith('onnxruntime-web'));
  const node = results.find((r) => r.label.startsWith('onnxruntime-node'));
  return results.map((r) => {
    if (!ok(r)) return r;
    return { ...r, ...(ok(web) ? { vsWeb: r.tokensPerS / web.tokensPerS } : {}), ...(ok(node) ? { vsNode: r.tokensPerS / node.tokensPerS } : {}) };
  });
}

/** The table: one row per implementation, decode speed relative to each ORT row. */
export function formatDecodeResults(results: DecodeResult[], options: Pick<DecodeBenchOptions, 'promptLength' | 'maxTokens' | 'ortThreads' | 'warmupTokens'>): string[] {
  const ratio = (x: number | undefined): string => (x === undefined ? '-' : `${x.toFixed(2)}x`);
  const lines = [
    `decode: prompt ${options.promptLength} tokens, ${options.maxTokens} new tokens, greedy, batch 1; ORT with ${options.ortThreads} intra-op thread(s), llmcc-wasm single-threaded; ${options.warmupTokens > 0 ? `after a ${options.warmupTokens}-token warm-up generation at other positions` : 'no warm-up (each process\'s first generation)'}`,
    `${'implementation'.padEnd(42)} ${'load s'.padStart(7)} ${'TTFT ms'.padStart(9)} ${'tok/s'.padStart(7)} ${'peak RSS MiB'.padStart(13)} ${'tok/s vs web'.padStart(13)} ${'tok/s vs node'.padStart(14)}`,
  ];
  for (const r of results) {
    if (r.error) { lines.push(`${r.label.padEnd(42)} failed: ${r.error}`); continue; }
    lines.push(`${r.label.padEnd(42)} ${(r.loadMs / 1000).toFixed(1).padStart(7)} ${r.ttftMs.toFixed(0).padStart(9)} ${r.tokensPerS.toFixed(2).padStart(7)} ${r.peakRssMiB.toFixed(0).padStart(13)} ${ratio(r.vsWeb).padStart(13)} ${ratio(r.vsNode).padStart(14)}`);
  }
  const agree = results.filter((r) => !r.error && r.tokens.length);
  if (agree.length > 1) {
    const same = agree.every((r) => r.tokens.join(',') === agree[0].tokens.join(','));
    lines.push(`token ids ${same ? 'identical across all rows' : 'differ between rows (different quantizations / accumulation orders)'}: ${agree.map((r) => `${r.label}: ${r.tokens.slice(0, 8).join(',')}…`).join('; ')}`);
  }
  return lines;
}

// ---------------------------------------------------------------------------------------
// The child side: one implementation, one JSON line.

interface OrtTensorLike { type: string; dims: readonly number[]; data: unknown }
interface OrtLike {
  InferenceSession: { create(model: string | Uint8Array, options: Record<string, unknown>): Promise<OrtSessionLike> };
  Tensor: new (type: string, data: unknown, dims: number[]) => OrtTensorLike;
  env: { wasm: { numThreads?: number } };
}
interface OrtSessionLike {
  run(feeds: Record<string, OrtTensorLike>): Promise<Record<string, OrtTensorLike>>;
}


function zerosOrt(ort: OrtLike, dtype: DType, shape: number[]): OrtTensorLike {
  const size = shape.reduce((a, b) => a * b, 1);
  if (dtype === 'f16') return new ort.Tensor('float16', new Uint16Array(size), shape);
  if (dtype === 'f32') return new ort.Tensor('float32', new Float32Array(size), shape);
  throw new LlmccError(`no zero cache of ${dtype} for onnxruntime`);
}

function logitsFromOrt(t: OrtTensorLike): Tensor {
  const shape = t.dims.map(Number);
  if (t.type === 'float32') return Tensor.fromNumbers('f32', shape, t.data as Float32Array);
  if (t.type === 'float16') return Tensor.fromNumbers('f16', shape, Array.from(t.data as Uint16Array, f16BitsToNumber));
  throw new LlmccError(`logits of type ${t.type}`);
}

/** An ORT session as a decoder engine whose cache stays in ORT tensors between steps. */
async function ortEngine(kind: 'ort-node' | 'ort-web', modelPath: string, threads: number): Promise<DecoderEngine> {
  const imported = (await import(kind === 'ort-node' ? 'onnxruntime-node' : 'onnxruntime-web')) as { default?: OrtLike } & OrtLike;
  const ort = imported.default ?? imported;
  let session: OrtSessionLike;
  if (kind === 'ort-node') {
    session = await ort.InferenceSession.create(modelPath, { intraOpNumThreads: threads, interOpNumThreads: 1, executionMode: 'sequential', graphOptimizationLevel: 'all' });
  } else {
    ort.env.wasm.numThreads = threads;
    const dataPath = `${modelPath}.data`;
    const externalData = fs.existsSync(dataPath) ? [{ path: path.basename(dataPath), data: new Uint8Array(fs.readFileSync(dataPath)) }] : undefined;
    session = await ort.InferenceSession.create(new Uint8Array(fs.readFileSync(modelPath)), { executionProviders: ['wasm'], graphOptimizationLevel: 'all', ...(externalData ? { externalData } : {}) });
  }
  const signature = signatureOfGraph((await loadModel(modelPath)).graph);
  const feedsOf = (feeds: Map<string, Tensor>): Record<string, OrtTensorLike> => Object.fromEntries([...feeds].map(([n, t]) => [n, toOrtTensor(ort.Tensor, t)]));
  return {
    ...signature,
    run: async () => { throw new LlmccError('the ORT engine runs only with a carried cache'); },
    carry: (pairs) => {
      const held = new Map<string, OrtTensorLike>();
      return {
        run: async (feeds) => {
          const input = feedsOf(feeds);
          for (const p of pairs) {
            const dtype = signature.inputs.find((i) => i.name === p.input)!.dtype;
            input[p.input] = held.get(p.input) ?? zerosOrt(ort, dtype, p.initialShape);
          }
          const out = await session.run(input);
          for (const p of pairs) held.set(p.input, out[p.output]);
          return new Map([['logits', logitsFromOrt(out.logits)]]);
        },
      };
    },
  };
}

/** `bench decode --child <spec>`: loads one implementation, generates, prints one JSON line. */
export async function runDecodeChild(specJson: string): Promise<DecodeResult> {
  const spec = JSON.parse(specJson) as { impl: DecodeImpl } & DecodeRunSpec;
  const started = performance.now();
  let engine: DecoderEngine;
  if (spec.impl.kind === 'llmcc') {
    const session = await load(spec.impl.bundle);
    engine = { ...session.signature, run: (feeds) => session.run(feeds), carry: (pairs) => session.carry(pairs) };
  } else {
    engine = await ortEngine(spec.impl.kind, spec.impl.model, spec.impl.threads);
  }
  const loadMs = performance.now() - started;
  const hints = spec.hints ? { hints: spec.hints } : {};
  if (spec.warmupTokens > 0) await generate(engine, { promptIds: spec.promptIds.slice(0, 1), maxTokens: spec.warmupTokens, ...hints });
  const result = await generate(engine, { promptIds: spec.promptIds, maxTokens: spec.maxTokens, ...hints });
  return {
    label: spec.impl.label,
    tokens: result.tokens,
    loadMs,
    ttftMs: result.ttftMs,
    tokensPerS: result.tokensPerS,
    peakRssMiB: process.resourceUsage().maxRSS / 1024,
    cacheResident: result.cacheResident,
  };
}

export interface BenchDecodeCliOptions {
  model?: string;
  nbitsModel?: string;
  bits: string;
  llmccNbits?: boolean;
  promptLength: number;
  maxTokens: number;
  ortThreads: number;
  warmup: number;
  bundleDir?: string;
  impls: string;
  json?: string;
  child?: string;
  rebuild?: boolean;
}

/** The `llmcc bench decode` command (registered in src/cli/main.ts). */
export async function benchDecodeCommand(opts: BenchDecodeCliOptions): Promise<number> {
  if (opts.child) {
    console.log(JSON.stringify(await runDecodeChild(opts.child)));
    return 0;
  }
  if (!opts.model) throw new LlmccError('bench decode needs --model <float decoder.onnx> (e.g. llama-gen --config 1b --dtype f16)');
  const bits = opts.bits.split(',').filter((b) => b.trim()).map(Number);
  if (bits.some((b) => ![1, 2, 3, 4, 8].includes(b))) throw new LlmccError(`--bits takes 1, 2, 3, 4 or 8 (comma-separated), got '${opts.bits}'`);
  const impls = opts.impls.split(',').map((s) => s.trim());
  const unknown = impls.filter((i) => !['llmcc', 'ort-node', 'ort-web'].includes(i));
  if (unknown.length) throw new LlmccError(`--impls takes llmcc, ort-node, ort-web; got '${unknown.join(',')}'`);
  const options: DecodeBenchOptions = {
    model: opts.model, nbitsModel: opts.nbitsModel, bits, llmccNbits: opts.llmccNbits === true,
    promptLength: opts.promptLength, maxTokens: opts.maxTokens, ortThreads: opts.ortThreads, bundleDir: opts.bundleDir, impls, warmupTokens: opts.warmup,
    rebuild: opts.rebuild === true,
  };
  const results = await runDecodeBench(options, (line) => process.stderr.write(`${line}\n`));
  for (const line of formatDecodeResults(results, options)) console.log(line);
  if (opts.json) fs.writeFileSync(opts.json, `${JSON.stringify({ options, results }, null, 2)}\n`);
  return results.some((r) => r.error) ? 1 : 0;
}
