import * as fs from 'node:fs';
import type { AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { build, createServer, type InlineConfig } from 'vite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { interpret } from '../ir/interpreter.js';
import type { Tensor } from '../ir/tensor.js';
import { runLoweringPipeline } from '../passes/pipeline.js';
import { loweringFromFlags } from '../src/cli/lowering-options.js';
import { compareTensors } from '../src/compare.js';
import { decodeBundle } from '../src/bundle/format.js';
import { loadModel } from '../src/onnx/load.js';
import llmcc, { type LlmccPluginOptions } from '../src/plugin/vite.js';
import { load } from '../src/runtime/index.js';
import { bindInputs, readTestDataSet } from '../src/testdata.js';
import { CONFORMANCE_DIR, REPO_ROOT } from './helpers/paths.js';

const TINY = path.join(REPO_ROOT, 'examples', 'tiny-mlp');

let tmp: string;
let project: string;
let outside: string;

/** A project whose entry module re-exports the imported model URL. */
function writeProject(root: string, importPath: string): void {
  fs.mkdirSync(path.join(root, 'src'), { recursive: true });
  fs.writeFileSync(path.join(root, 'src', 'main.js'), `import url from ${JSON.stringify(importPath)};\nexport default url;\n`);
}

function buildConfig(root: string, plugin: LlmccPluginOptions = {}, outDir = 'dist'): InlineConfig {
  return {
    root, base: './', configFile: false, logLevel: 'silent', plugins: [llmcc(plugin)],
    build: {
      outDir: path.join(root, outDir), emptyOutDir: true,
      rollupOptions: { input: path.join(root, 'src', 'main.js'), preserveEntrySignatures: 'exports-only' },
    },
  };
}

/** Runs `vite build`, imports the emitted entry and returns the URL it exports. */
async function buildAndImport(root: string, plugin: LlmccPluginOptions = {}, outDir = 'dist'): Promise<string> {
  await build(buildConfig(root, plugin, outDir));
  const assets = path.join(root, outDir, 'assets');
  const entry = fs.readdirSync(assets).find((f) => /^main-.*\.js$/.test(f));
  expect(entry).toBeDefined();
  const mod = (await import(pathToFileURL(path.join(assets, entry!)).href)) as { default: string };
  return mod.default;
}

async function expectOutputsMatch(actual: Map<string, Tensor>, expected: Map<string, Tensor>): Promise<void> {
  expect([...actual.keys()].sort()).toEqual([...expected.keys()].sort());
  for (const [name, want] of expected) {
    const cmp = compareTensors(actual.get(name)!, want, { atol: 1e-4, rtol: 1e-4 });
    expect(cmp.ok, `${name}: ${cmp.reason ?? `max abs ${cmp.maxAbs}`}`).toBe(true);
  }
}

/** The reference interpreter's outputs of the tiny model on its data set, optionally lowered. */
async function referenceOutputs(file: string, bits?: string): Promise<{ feeds: Map<string, Tensor>; outputs: Map<string, Tensor> }> {
  const model = await loadModel(file);
  if (bits) {
    runLoweringPipeline(model, loweringFromFlags({ bits, group: '32', table: 'i8', g: '4', fuse: true }, 'wasm'));
  }
  const feeds = bindInputs(model.graph, readTestDataSet(path.join(TINY, 'test_data_set_0')));
  return { feeds, outputs: interpret(model.graph, feeds, { opsets: model.opsets }) };
}

async function refusal(promise: Promise<unknown>): Promise<string> {
  const error = await promise.then(() => undefined, (e: unknown) => e);
  expect(error).toBeInstanceOf(Error);
  return (error as Error).message;
}

beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'llmcc-plugin-'));
  project = path.join(tmp, 'project');
  outside = path.join(tmp, 'elsewhere');
  fs.mkdirSync(path.join(project, 'models'), { recursive: true });
  fs.mkdirSync(outside);
  fs.copyFileSync(path.join(TINY, 'model.onnx'), path.join(project, 'models', 'tiny.onnx'));
  fs.copyFileSync(path.join(TINY, 'model.onnx'), path.join(outside, 'tiny.onnx'));
});

afterAll(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe('vite plugin: build', () => {
  it('emits a content-hashed bundle whose URL the import resolves to, and it runs like the reference', async () => {
    writeProject(project, '../models/tiny.onnx?llmcc');
    const url = await buildAndImport(project);
    expect(url).toMatch(/^file:.*\/assets\/tiny-[\w-]+\.llmcc$/);
    const session = await load(new URL(url));
    const { feeds, outputs } = await referenceOutputs(path.join(project, 'models', 'tiny.onnx'));
    await expectOutputsMatch(await session.run(feeds), outputs);
  });

  it('applies per-import lowering options (?llmcc&bits=4) and hashes them into the file name', async () => {
    const plainUrl = await buildAndImport(project, {}, 'dist-plain');
    writeProject(project, '../models/tiny.onnx?llmcc&bits=4&group=16');
    const lowUrl = await buildAndImport(project, {}, 'dist-low');
    expect(path.basename(lowUrl)).not.toBe(path.basename(plainUrl));
    const bytes = new Uint8Array(fs.readFileSync(new URL(lowUrl)));
    const ops = (await decodeBundle(bytes)).manifest.program.nodes.map((n) => (n as { op: string }).op);
    expect(ops.some((op) => op.startsWith('Lut'))).toBe(true);
    const model = await loadModel(path.join(project, 'models', 'tiny.onnx'));
    runLoweringPipeline(model, loweringFromFlags({ bits: '4', group: '16', table: 'i8', g: '4', fuse: true }, 'wasm'));
    const feeds = bindInputs(model.graph, readTestDataSet(path.join(TINY, 'test_data_set_0')));
    const expected = interpret(model.graph, feeds, { opsets: model.opsets });
    await expectOutputsMatch(await (await load(bytes)).run(feeds), expected);
  });

  it('takes defaults from the plugin options (bits) when the import has none', async () => {
    writeProject(project, '../models/tiny.onnx?llmcc');
    const url = await buildAndImport(project, { bits: 4, group: 16 }, 'dist-defaults');
    const ops = (await decodeBundle(new Uint8Array(fs.readFileSync(new URL(url))))).manifest.program.nodes.map((n) => (n as { op: string }).op);
    expect(ops.some((op) => op.startsWith('Lut'))).toBe(true);
  });

  it('refuses a model outside the project root, naming it, unless allowed', async () => {
    const file = path.join(outside, 'tiny.onnx');
    writeProject(project, `${file}?llmcc`);
    const message = await refusal(build(buildConfig(project)));
    expect(message).toContain('outside the project root');
    expect(message).toContain(file);
    expect(await buildAndImport(project, { allowOutsideRoot: true }, 'dist-allowed')).toMatch(/tiny-[\w-]+\.llmcc$/);
    expect(await buildAndImport(project, { allowOutsideRoot: [outside] }, 'dist-listed')).toMatch(/tiny-[\w-]+\.llmcc$/);
    const other = await refusal(build(buildConfig(project, { allowOutsideRoot: [path.join(tmp, 'not-this-one')] })));
    expect(other).toContain('outside the project root');
  });

  it('refuses a relative path climbing out of the root', async () => {
    writeProject(project, '../../elsewhere/tiny.onnx?llmcc');
    expect(await refusal(build(buildConfig(project)))).toContain('outside the project root');
  });

  it('refuses a symlink inside the root that leads outside it', async () => {
    fs.symlinkSync(path.join(outside, 'tiny.onnx'), path.join(project, 'models', 'link.onnx'));
    writeProject(project, '../models/link.onnx?llmcc');
    const message = await refusal(build(buildConfig(project)));
    expect(message).toContain('outside the project root');
    expect(message).toContain('symlink');
    fs.rmSync(path.join(project, 'models', 'link.onnx'));
  });

  it('refuses an unknown import option and an invalid bits value by name', async () => {
    writeProject(project, '../models/tiny.onnx?llmcc&bitz=4');
    expect(await refusal(build(buildConfig(project)))).toContain("unknown import query 'bitz'");
    writeProject(project, '../models/tiny.onnx?llmcc&bits=5');
    expect(await refusal(build(buildConfig(project)))).toContain("bits must be 1, 2, 3, 4, 8 or 'ternary'");
  });

  it('reports a broken model as a one-line error naming the file', async () => {
    fs.writeFileSync(path.join(project, 'models', 'broken.onnx'), new Uint8Array([8, 7, 0xff, 0xff]));
    writeProject(project, '../models/broken.onnx?llmcc');
    const message = await refusal(build(buildConfig(project)));
    expect(message).toContain('not a valid ONNX model');
    expect(message).toContain('broken.onnx');
  });
});

describe('vite plugin: dev server', () => {
  it('compiles on import, serves the bundle and caches it on disk', async () => {
    writeProject(project, '../models/tiny.onnx?llmcc');
    const server = await createServer({
      root: project, configFile: false, logLevel: 'silent', plugins: [llmcc()],
      cacheDir: path.join(project, '.vite-cache'), server: { port: 0, host: '127.0.0.1', ws: false },
    });
    try {
      await server.listen();
      const { port } = server.httpServer!.address() as AddressInfo;
      const mod = (await server.ssrLoadModule('/src/main.js')) as { default: string };
      expect(mod.default).toMatch(/^\/@llmcc\/[0-9a-f]{16}\/tiny\.llmcc$/);
      const response = await fetch(`http://127.0.0.1:${port}${mod.default}`);
      expect(response.status).toBe(200);
      const bytes = new Uint8Array(await response.arrayBuffer());
      const { feeds, outputs } = await referenceOutputs(path.join(project, 'models', 'tiny.onnx'));
      await expectOutputsMatch(await (await load(bytes)).run(feeds), outputs);
      const cached = fs.readdirSync(path.join(project, '.vite-cache', 'llmcc'));
      expect(cached.filter((f) => f.endsWith('.llmcc'))).toHaveLength(1);
      expect((await fetch(`http://127.0.0.1:${port}/@llmcc/0123456789abcdef/tiny.llmcc`)).status).toBe(404);

      // The model changes: the stale bundle is not served, and the reloaded import recompiles.
      const other = path.join(CONFORMANCE_DIR, 'test_relu', 'model.onnx');
      fs.copyFileSync(other, path.join(project, 'models', 'tiny.onnx'));
      fs.utimesSync(path.join(project, 'models', 'tiny.onnx'), new Date(), new Date(Date.now() + 5000));
      expect((await fetch(`http://127.0.0.1:${port}${mod.default}`)).status).toBe(404);
      server.moduleGraph.invalidateAll();
      const again = (await server.ssrLoadModule('/src/main.js')) as { default: string };
      expect(again.default).toBe(mod.default);
      const rebuilt = new Uint8Array(await (await fetch(`http://127.0.0.1:${port}${again.default}`)).arrayBuffer());
      const ops = (await decodeBundle(rebuilt)).manifest.program.nodes.map((n) => (n as { op: string }).op);
      expect(ops).toEqual(['Relu']);
    } finally {
      await server.close();
      fs.copyFileSync(path.join(TINY, 'model.onnx'), path.join(project, 'models', 'tiny.onnx'));
    }
  });
});
