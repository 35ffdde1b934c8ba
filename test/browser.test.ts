import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Model } from '../ir/graph.js';
import { interpret } from '../ir/interpreter.js';
import type { Tensor } from '../ir/tensor.js';
import { prepareModel } from '../passes/pipeline.js';
import { encodeBundle, HEADER_BYTES, PART_ALIGN, type BundleManifest } from '../src/bundle/format.js';
import { loweringFromFlags } from '../src/cli/lowering-options.js';
import { compareTensors, defaultTolerance } from '../src/compare.js';
import { loadModel } from '../src/onnx/load.js';
import { generate, hintsFromGenaiConfig, signatureOfGraph, type DecoderHints } from '../src/runtime/generate.js';
import { type CarriedPair, load } from '../src/runtime/index.js';
import { bindInputs, readTestDataSet } from '../src/testdata.js';
import { compileWasm } from '../targets/wasm/compile.js';
import { type BrowserRuntime, staleModules, startBrowserRuntime } from './helpers/browser.js';
import { MODELS_DIR, REPO_ROOT } from './helpers/paths.js';

/**
 * The runtime's browser entry (dist/src/runtime/index.js, the package's "." export) in headless
 * Chromium: bundles compiled here are fetched by URL from a local server, loaded and run in the
 * page, and compared with the reference interpreter and with the same bundle loaded in Node.
 * One browser for all cases. Needs dist/ built (npm test builds it) and a system Chromium.
 */

/** Lowered graphs: f32 accumulation order and norm statistics differ from the f64 reference (as in wasm-lowered.test.ts). */
const LOWERED_RELATIVE_TO_SCALE = 1e-4;
/** The tiny random gpt2 repeats one token for most prompts; this one changes token mid-way (cache-dependent). */
const PROMPT = [100, 200, 300];
const GENERATED_TOKENS = 10;
const GPT2_DIR = path.join(MODELS_DIR, 'genai-tiny-random-gpt2-fp32');

interface Case {
  bundleFile: string;
  model: Model;
  feeds: Map<string, Tensor>;
  expected: Map<string, Tensor>;
  bundle: Uint8Array;
}

/** Compiles `model` to a bundle in `dir` and runs the reference interpreter on `dataSet`. */
async function prepareCase(dir: string, bundleFile: string, model: Model, dataSet: string): Promise<Case> {
  const feeds = bindInputs(model.graph, readTestDataSet(dataSet));
  const expected = interpret(model.graph, feeds, { opsets: model.opsets });
  const bundle = await encodeBundle(await compileWasm(model));
  fs.writeFileSync(path.join(dir, bundleFile), bundle);
  return { bundleFile, model, feeds, expected, bundle };
}

function scaleOf(t: Tensor): number {
  let max = 0;
  for (const v of t.numbers()) max = Math.max(max, Math.abs(v));
  return max;
}

/** Outputs that differ from the reference by more than the tolerance, or are missing. */
function mismatches(c: Case, actual: ReadonlyMap<string, Tensor>, relativeToScale?: number): string[] {
  return c.model.graph.outputs.flatMap(({ name }) => {
    const want = c.expected.get(name)!;
    const got = actual.get(name);
    const tolerance = relativeToScale === undefined
      ? defaultTolerance(want.dtype)
      : { atol: Math.max(relativeToScale * scaleOf(want), 1e-6), rtol: 0 };
    const result = got ? compareTensors(got, want, tolerance) : undefined;
    return result?.ok ? [] : [`'${name}': ${result ? result.reason ?? `max abs ${result.maxAbs.toExponential(3)}` : 'not produced'}`];
  });
}

/** Each output's raw bytes, for bit-for-bit comparison of the browser with Node. */
function bits(outputs: ReadonlyMap<string, Tensor>): Record<string, string> {
  return Object.fromEntries([...outputs].map(([name, t]) => {
    const data = t.numbers();
    return [name, `${t.dtype}[${t.shape.join(',')}] ${Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('base64')}`];
  }));
}

/** The byte offset and length of a part inside bundle bytes (the layout of src/bundle/README.md). */
function partRange(bundle: Uint8Array, name: string): { start: number; byteLength: number } {
  const manifestLength = new DataView(bundle.buffer, bundle.byteOffset).getUint32(12, true);
  const manifest = JSON.parse(new TextDecoder().decode(bundle.subarray(HEADER_BYTES, HEADER_BYTES + manifestLength))) as BundleManifest;
  const part = manifest.parts.find((p) => p.name === name)!;
  const partsStart = Math.ceil((HEADER_BYTES + manifestLength) / PART_ALIGN) * PART_ALIGN;
  return { start: partsStart + part.offset, byteLength: part.byteLength };
}

let tmp: string;
let starting: Promise<BrowserRuntime> | undefined;
let browser: BrowserRuntime;
let tinyMlp: Case;
let lowered: Case;
let gpt2Hints: DecoderHints;

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'llmcc-browser-'));
  // Chromium starts while the bundles compile (the page fetches them only when a test runs).
  starting = startBrowserRuntime(tmp);
  starting.catch(() => undefined); // reported by the await below, not as an unhandled rejection
  const tinyDir = path.join(REPO_ROOT, 'examples', 'tiny-mlp');
  tinyMlp = await prepareCase(tmp, 'tiny-mlp.llmcc', await loadModel(path.join(tinyDir, 'model.onnx')), path.join(tinyDir, 'test_data_set_0'));

  // What `llmcc compile --target wasm --lower --bits 2` does to the model before compiling it.
  const decoderDir = path.join(MODELS_DIR, 'genai-static-scatter-bias-decoder');
  const decoder = await loadModel(path.join(decoderDir, 'model.onnx'));
  prepareModel(decoder, loweringFromFlags({ bits: '2', group: '32', table: 'i8', g: '4', fuse: true }, 'wasm'), 'wasm');
  lowered = await prepareCase(tmp, 'static-scatter-2bit.llmcc', decoder, path.join(decoderDir, 'test_data_set_0'));

  fs.writeFileSync(path.join(tmp, 'gpt2.llmcc'), await encodeBundle(await compileWasm(await loadModel(path.join(GPT2_DIR, 'model.onnx')))));
  gpt2Hints = hintsFromGenaiConfig(JSON.parse(fs.readFileSync(path.join(GPT2_DIR, 'genai_config.json'), 'utf8')));

  // The tiny-mlp bundle with one byte of its kernel module flipped.
  const tampered = tinyMlp.bundle.slice();
  const kernels = partRange(tampered, 'kernels.wasm');
  tampered[kernels.start + (kernels.byteLength >> 1)] ^= 0x01;
  fs.writeFileSync(path.join(tmp, 'tampered.llmcc'), tampered);

  browser = await starting;
});

afterAll(async () => {
  await (await starting?.catch(() => undefined))?.close();
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

describe('the runtime in headless Chromium', () => {
  it('runs in a real browser page, importing the runtime and nothing of the compiler', () => {
    expect(browser.userAgent).toMatch(/HeadlessChrome\/\d+/);
    const modules = browser.server.requests.filter((r) => r.startsWith('/dist/'));
    expect(modules).toContain('/dist/src/runtime/index.js');
    // binaryen (the wasm module builder), the Node file reader and the worker-thread pool stay
    // behind their dynamic imports.
    expect(modules.filter((r) => /codegen\/wasm\/|binaryen|node-file|read-node|runtime\/threads/.test(r))).toEqual([]);
    expect(browser.server.notFound.filter((r) => r.startsWith('/dist/'))).toEqual([]);
    expect(staleModules(browser.server.requests), 'sources newer than dist/: run npx tsc -p .').toEqual([]);
  });

  it('tiny-mlp: load(url) fetches the bundle, compiles the verified kernels, and matches the reference', async () => {
    const { outputs, calls } = await browser.run(tinyMlp.bundleFile, tinyMlp.feeds);
    expect(mismatches(tinyMlp, outputs)).toEqual([]);
    // The same bundle in Node gives the same bits: one kernel module, one semantics.
    const inNode = await (await load(tinyMlp.bundle)).run(tinyMlp.feeds);
    expect(bits(outputs)).toEqual(bits(inNode));
    // The path taken: one fetch of the URL; the kernels part of its body streamed into
    // compileStreaming while the rest downloads (a Response of application/wasm), and the
    // module instantiated only after its sha256 is verified.
    const url = `${browser.bundleBase}/${tinyMlp.bundleFile}`;
    expect(calls).toEqual([`fetch(${url})`, 'WebAssembly.compileStreaming(Response(application/wasm))', 'WebAssembly.instantiate(Module)']);
    expect(browser.server.requests.filter((r) => r === `/bundles/${tinyMlp.bundleFile}`)).toHaveLength(1);
  });

  it('a --lower --bits 2 decoder (static-scatter, LUT kernels) runs one step like the reference', async () => {
    expect(lowered.model.graph.nodes.filter((n) => n.op === 'LutMatMul').length).toBeGreaterThan(0);
    const { outputs } = await browser.run(lowered.bundleFile, lowered.feeds);
    expect(mismatches(lowered, outputs, LOWERED_RELATIVE_TO_SCALE)).toEqual([]);
    const inNode = await (await load(lowered.bundle)).run(lowered.feeds);
    expect(bits(outputs)).toEqual(bits(inNode));
  });

  it('generate() on gpt2 in the page: the tokens and step logits of Node (tokens of the reference too), KV cache resident', async () => {
    const options = { promptIds: PROMPT, maxTokens: GENERATED_TOKENS, hints: gpt2Hints };
    const inPage = await browser.generate('gpt2.llmcc', options);
    const session = await load(fs.readFileSync(path.join(tmp, 'gpt2.llmcc')));
    const nodeSteps: Map<string, Tensor>[] = [];
    const carry = (pairs: CarriedPair[]): { run(feeds: Map<string, Tensor>): Promise<Map<string, Tensor>> } => {
      const state = session.carry(pairs);
      return { run: async (feeds) => { const outputs = await state.run(feeds); nodeSteps.push(outputs); return outputs; } };
    };
    const inNode = await generate({ ...session.signature, run: (f) => session.run(f), carry }, options);
    expect(inNode.tokens).toHaveLength(GENERATED_TOKENS);
    expect(inNode.cacheResident).toBe(true);
    // The reference interpreter (cache through JS) picks the same tokens.
    const model = await loadModel(path.join(GPT2_DIR, 'model.onnx'));
    const reference = await generate({ ...signatureOfGraph(model.graph), run: async (f) => interpret(model.graph, f, { opsets: model.opsets }) }, options);
    expect(inNode.tokens).toEqual(reference.tokens);
    expect({ tokens: inPage.tokens, stopReason: inPage.stopReason, cacheResident: inPage.cacheResident })
      .toEqual({ tokens: inNode.tokens, stopReason: inNode.stopReason, cacheResident: true });
    // Every step's logits, bit for bit: a cache that went wrong shows here even when argmax agrees.
    expect(inPage.steps).toHaveLength(GENERATED_TOKENS);
    expect(inPage.steps.map(bits)).toEqual(nodeSteps.map(bits));
  });

  it('refuses a tampered bundle fetched by URL with the same one-line error as Node, never instantiating it', async () => {
    const url = `${browser.bundleBase}/tampered.llmcc`;
    const { error, calls } = await browser.loadError('tampered.llmcc');
    const inNode = await load(url).then(() => undefined, (e: unknown) => e as Error);
    expect(inNode?.message).toBe(`bundle part 'kernels.wasm' checksum mismatch (the file is corrupted or was modified), ${url}`);
    expect(error).toEqual({ name: 'LlmccError', message: inNode!.message, isLlmccError: true });
    // Compiling from the stream started before the checksum could be known; compiling runs no
    // code, and the module is dropped unused.
    expect(calls).toEqual([`fetch(${url})`, 'WebAssembly.compileStreaming(Response(application/wasm))']);
  });

  it('refuses a bundle URL that answers 404 with the same one-line error as Node', async () => {
    const url = `${browser.bundleBase}/missing.llmcc`;
    const { error } = await browser.loadError('missing.llmcc');
    const inNode = await load(url).then(() => undefined, (e: unknown) => e as Error);
    expect(inNode?.message).toBe(`cannot fetch bundle (HTTP 404), ${url}`);
    expect(error).toEqual({ name: 'LlmccError', message: inNode!.message, isLlmccError: true });
  });
});
