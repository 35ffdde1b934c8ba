import * as fs from 'node:fs';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import * as os from 'node:os';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import { LlmccError } from '../ir/errors.js';
import type { Model } from '../ir/graph.js';
import { interpret } from '../ir/interpreter.js';
import { Tensor } from '../ir/tensor.js';
import { loadModelFromBytes } from '../src/onnx/load.js';
import { BUNDLE_FORMAT_VERSION, encodeBundle } from '../src/bundle/format.js';
import { writeBundle } from '../src/bundle/write.js';
import { load, type RuntimeSession } from '../src/runtime/index.js';
import { writeToArena } from '../targets/wasm/arena.js';
import { compileWasm } from '../targets/wasm/compile.js';
import type { CompiledWasm } from '../targets/wasm/program.js';
import { llmcc } from './helpers/cli.js';
import { MODELS_DIR, REPO_ROOT } from './helpers/paths.js';
import { buildModel } from './helpers/onnx-builder.js';

function modelOf(bytes: Uint8Array): Model {
  return loadModelFromBytes(bytes, { path: 'test.onnx' });
}

/**
 * x f32 [batch, 4] → MatMul (kernel) → Reshape [-1] (view); Shape → Gather → Concat → Reshape
 * (host shape chain); ids i64 indexes an embedding table (a kernel: int64 narrowed at the boundary).
 */
function mixedModel(): Uint8Array {
  const w = Tensor.fromNumbers('f32', [4, 3], Array.from({ length: 12 }, (_, i) => (i - 5) / 7));
  return buildModel({
    inputs: [{ name: 'x', dtype: 'f32', shape: ['batch', 4] }, { name: 'ids', dtype: 'i64', shape: ['n'] }],
    outputs: [
      { name: 'flat', dtype: 'f32', shape: undefined },
      { name: 'back', dtype: 'f32', shape: undefined },
      { name: 'ids_out', dtype: 'i64', shape: undefined },
      { name: 'emb', dtype: 'f32', shape: undefined },
      { name: 'batch', dtype: 'i64', shape: undefined },
    ],
    initializers: {
      w,
      // Large enough that the gather runs as a kernel, not on the host.
      table: Tensor.fromNumbers('f32', [1250, 4], Array.from({ length: 5000 }, (_, i) => Math.cos(i))),
      minus_one: Tensor.fromNumbers('i64', [1], [-1]),
      zero: Tensor.fromNumbers('i64', [], [0]),
      three: Tensor.fromNumbers('i64', [1], [3]),
      axes0: Tensor.fromNumbers('i64', [1], [0]),
    },
    nodes: [
      { op: 'MatMul', inputs: ['x', 'w'], outputs: ['y'] },
      { op: 'Reshape', inputs: ['y', 'minus_one'], outputs: ['flat'] },
      { op: 'Shape', inputs: ['x'], outputs: ['xs'] },
      { op: 'Gather', inputs: ['xs', 'zero'], outputs: ['batch'], attributes: { axis: 0 } },
      { op: 'Unsqueeze', inputs: ['batch', 'axes0'], outputs: ['batch1'] },
      { op: 'Concat', inputs: ['batch1', 'three'], outputs: ['shape2'], attributes: { axis: 0 } },
      { op: 'Reshape', inputs: ['flat', 'shape2'], outputs: ['back'] },
      { op: 'Reshape', inputs: ['ids', 'minus_one'], outputs: ['ids_out'] },
      { op: 'Gather', inputs: ['table', 'ids'], outputs: ['emb'], attributes: { axis: 0 } },
    ],
  });
}

/** f16 in, f16 out through views only: conversion at the boundary. */
function f16Model(): Uint8Array {
  return buildModel({
    inputs: [{ name: 'h', dtype: 'f16', shape: [2, 3] }],
    outputs: [{ name: 'o', dtype: 'f16', shape: [3, 2] }],
    initializers: { s: Tensor.fromNumbers('i64', [2], [3, 2]) },
    nodes: [{ op: 'Reshape', inputs: ['h', 's'], outputs: ['o'] }],
  });
}

function reference(model: Model, feeds: Record<string, Tensor>): Map<string, Tensor> {
  return interpret(model.graph, new Map(Object.entries(feeds)), { opsets: model.opsets });
}

function xFeed(batch: number, seed = 1): Tensor {
  return Tensor.fromNumbers('f32', [batch, 4], Array.from({ length: batch * 4 }, (_, i) => Math.sin(i * 1.3 + seed)));
}

describe('runtime', () => {
  let model: Model;
  let bytes: Uint8Array;
  let session: RuntimeSession;

  beforeAll(async () => {
    model = modelOf(mixedModel());
    bytes = await encodeBundle(await compileWasm(model));
    session = await load(bytes);
  });

  it('names inputs and outputs', () => {
    expect(session.inputNames).toEqual(['x', 'ids']);
    expect(session.outputNames).toEqual(['flat', 'back', 'ids_out', 'emb', 'batch']);
  });

  it('matches the reference interpreter across input shapes, and repeatedly', async () => {
    for (const batch of [1, 5, 2, 5, 1]) {
      const feeds = { x: xFeed(batch, batch), ids: Tensor.fromNumbers('i64', [batch + 1], Array.from({ length: batch + 1 }, (_, i) => (i * 700 + batch) % 1250)) };
      const expected = reference(model, feeds);
      const actual = await session.run(feeds);
      for (const [name, want] of expected) {
        const got = actual.get(name)!;
        expect(got.dtype, name).toBe(want.dtype);
        expect(got.shape, name).toEqual(want.shape);
        const a = Array.from(got.numbers());
        Array.from(want.numbers()).forEach((v, i) => expect(Math.abs(a[i] - v), `${name}[${i}]`).toBeLessThanOrEqual(1e-5));
      }
    }
  });

  it('grows memory only for a larger input signature, not per call', async () => {
    const feeds = (batch: number) => ({ x: xFeed(batch), ids: Tensor.fromNumbers('i64', [batch], Array.from({ length: batch }, (_, i) => i)) });
    await session.run(feeds(64));
    const grown = session.memoryBytes;
    for (const batch of [1, 64, 3, 64]) await session.run(feeds(batch));
    expect(session.memoryBytes).toBe(grown);
  });

  it('narrows int64 values into the arena with a range check', () => {
    const buffer = new ArrayBuffer(16);
    writeToArena(buffer, 0, Tensor.fromNumbers('i64', [2], [-(2 ** 31), 2 ** 31 - 1]), "input 'n'");
    expect(Array.from(new Int32Array(buffer, 0, 2))).toEqual([-(2 ** 31), 2 ** 31 - 1]);
    expect(() => writeToArena(buffer, 0, Tensor.fromNumbers('i64', [1], [2 ** 40]), "input 'n'"))
      .toThrow(/input 'n' holds 1099511627776 at element 0, outside the 32-bit integer range/);
  });

  it('refuses a token id outside the embedding table, naming the input and the Gather', async () => {
    const x = Tensor.fromNumbers('f32', [1, 4], [1, 2, 3, 4]);
    for (const bad of [1250, -1251, 99999]) {
      await expect(session.run({ x, ids: Tensor.fromNumbers('i64', [2], [3, bad]) }))
        .rejects.toThrow(new RegExp(`input 'ids' holds ${bad} at element 1, outside \\[-1250, 1250\\) of the axis it indexes in Gather`));
    }
    // Negative ids inside the range count from the end, as in ONNX.
    const ok = await session.run({ x, ids: Tensor.fromNumbers('i64', [2], [-1250, 1249]) });
    expect(ok.get('emb')!.shape).toEqual([2, 4]);
  });

  it('accepts a Map of feeds and returns tensors that later runs do not overwrite', async () => {
    const first = await session.run(new Map([['x', xFeed(2, 1)], ['ids', Tensor.fromNumbers('i64', [1], [3])]]));
    const kept = Array.from(first.get('flat')!.numbers());
    await session.run({ x: xFeed(2, 9), ids: Tensor.fromNumbers('i64', [1], [4]) });
    expect(Array.from(first.get('flat')!.numbers())).toEqual(kept);
  });

  it('loads from a file path and a file: URL', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'llmcc-rt-'));
    const file = path.join(dir, 'm.llmcc');
    await writeBundle(file, await compileWasm(modelOf(mixedModel())));
    for (const source of [file, pathToFileURL(file), pathToFileURL(file).href]) {
      const s = await load(source);
      const out = await s.run({ x: xFeed(3), ids: Tensor.fromNumbers('i64', [2], [1, 2]) });
      expect(out.get('back')!.shape).toEqual([3, 3]);
    }
    await expect(load(path.join(dir, 'missing.llmcc'))).rejects.toThrow(/bundle file not found/);
  });

  it('refuses bad feeds with clear errors', async () => {
    const ids = Tensor.fromNumbers('i64', [1], [0]);
    await expect(session.run({ ids })).rejects.toThrow(/missing value for graph input 'x'/);
    await expect(session.run({ x: Tensor.zeros('f16', [1, 4]), ids })).rejects.toThrow(/input 'x' has dtype f16 but the model declares f32/);
    await expect(session.run({ x: Tensor.zeros('f32', [1, 5]), ids })).rejects.toThrow(/input 'x' has shape \[1,5\]/);
    await expect(session.run({ x: xFeed(1), ids, extra: ids })).rejects.toThrow(/'extra' is not an input/);
    const huge = Tensor.fromNumbers('i64', [1], [2 ** 40]);
    await expect(session.run({ x: xFeed(1), ids: huge })).rejects.toThrow(LlmccError);
    // ids index the embedding: the Gather bound is checked before the int32 narrowing.
    await expect(session.run({ x: xFeed(1), ids: huge })).rejects.toThrow(/holds 1099511627776 at element 0, outside \[-1250, 1250\)/);
  });

  it('converts f16 at the boundary', async () => {
    const s = await load(await encodeBundle(await compileWasm(modelOf(f16Model()))));
    const h = Tensor.fromNumbers('f16', [2, 3], [0.1, -2.5, 65504, 1e-5, 3.14159, -0]);
    const out = (await s.run({ h })).get('o')!;
    expect(out.dtype).toBe('f16');
    expect(out.shape).toEqual([3, 2]);
    expect(Array.from(out.numbers())).toEqual(Array.from(h.numbers()));
  });
});

describe('compile-time folding of host steps on constants', () => {
  /** y = x · Transpose(w) for w [N, K] (torch's Linear export), compiled, run, checked against the reference. */
  async function transposedLinear(N: number, K: number): Promise<CompiledWasm> {
    const w = Tensor.fromNumbers('f32', [N, K], Array.from({ length: N * K }, (_, i) => Math.cos(i * 0.37)));
    const model = modelOf(buildModel({
      inputs: [{ name: 'x', dtype: 'f32', shape: ['batch', K] }],
      outputs: [{ name: 'y', dtype: 'f32', shape: undefined }],
      initializers: { w },
      nodes: [
        { op: 'Transpose', inputs: ['w'], outputs: ['wt'], attributes: { perm: [1, 0] } },
        { op: 'MatMul', inputs: ['x', 'wt'], outputs: ['y'] },
      ],
    }));
    const compiled = await compileWasm(model);
    const session = await load(await encodeBundle(compiled));
    const x = Tensor.fromNumbers('f32', [3, K], Array.from({ length: 3 * K }, (_, i) => Math.sin(i * 1.3)));
    const got = (await session.run({ x })).get('y')!;
    const want = reference(model, { x }).get('y')!;
    expect(got.shape).toEqual(want.shape);
    Array.from(got.numbers()).forEach((v, i) => expect(v).toBeCloseTo(Array.from(want.numbers())[i], 4));
    return compiled;
  }

  // Without folding, the Transpose of a small weight is a host step every new plan recomputes
  // (each decode step with new positions), and that of a large one a kernel run every time.
  it('folds a Transpose of a small weight into a constant: no host step left, same outputs as the reference', async () => {
    const compiled = await transposedLinear(3, 4);
    expect(compiled.program.steps.map((s) => s.kind)).toEqual(['kernel']);
    expect(compiled.program.weights.map((e) => e.name)).toContain('wt');
  });

  it('stores a large weight transposed (no Transpose kernel on every run), in place of the original', async () => {
    // 8192 elements: past the host-value limit, so before this fold it was a kernel step.
    const compiled = await transposedLinear(128, 64);
    expect(compiled.program.steps.map((s) => compiled.program.nodes[s.node].op)).toEqual(['MatMul']);
    expect(compiled.program.weights.map((e) => e.name)).toEqual(['wt']);
  });
});

describe('activation plans across decode steps', () => {
  it('a growing-cache decoder reshapes its last plan step to step (builds only when a buffer outgrows it), same bits as fresh plans', async () => {
    const gpt2 = path.join(MODELS_DIR, 'genai-tiny-random-gpt2-fp32');
    const decoder = await (await import('../src/onnx/load.js')).loadModel(path.join(gpt2, 'model.onnx'));
    const bundle = await encodeBundle(await compileWasm(decoder));
    const { discoverBindings, stepFeeds } = await import('../src/runtime/generate.js');
    const { PlanBuilder } = await import('../src/runtime/plan.js');
    const session = await load(bundle);
    const bindings = discoverBindings(session.signature.inputs, session.signature.outputs);
    const builds = vi.spyOn(PlanBuilder.prototype, 'build');
    // Prefill 3 tokens, then 20 decode steps feeding each step's present back as past.
    let previous: Map<string, Tensor> | undefined;
    let tokens = [11, 22, 33];
    let position = 0;
    const STEPS = 21;
    for (let step = 0; step < STEPS; step++) {
      const feeds = stepFeeds(bindings, tokens, position, previous);
      const outputs = await session.run(feeds);
      const fresh = await (await load(bundle)).run(feeds);
      for (const [name, tensor] of fresh) {
        expect(Array.from(outputs.get(name)!.numbers()), `step ${step}, '${name}'`).toEqual(Array.from(tensor.numbers()));
      }
      previous = outputs;
      position += tokens.length;
      tokens = [(step * 37) % 1000];
    }
    // One build per step would be STEPS (+ one per fresh session); reshaping keeps the session's
    // own to the prefill, the first decode step and one per doubling of a grown buffer.
    const own = builds.mock.calls.length - STEPS;
    builds.mockRestore();
    expect(own).toBeGreaterThan(1);
    expect(own).toBeLessThanOrEqual(5);
  });

  const dir = path.join(MODELS_DIR, 'genai-static-scatter-bias-decoder');
  it('a static-cache decoder reuses one plan for every position, reshaped for its position-dependent host values', async () => {
    const model = (await import('../src/onnx/load.js')).loadModel;
    const decoder = await model(path.join(dir, 'model.onnx'));
    const bundle = await encodeBundle(await compileWasm(decoder));
    const { discoverBindings, stepFeeds } = await import('../src/runtime/generate.js');
    const session = await load(bundle);
    const bindings = discoverBindings(session.signature.inputs, session.signature.outputs);
    // One token at positions 1..12 over a zero cache: the same shapes, new position values.
    const steps = Array.from({ length: 12 }, (_, p) => stepFeeds(bindings, [7 + p], p + 1, undefined));
    const reused = [];
    for (const feeds of steps) reused.push((await session.run(feeds)).get('logits')!);
    const plans = (session as unknown as { plans: Map<string, unknown> }).plans;
    expect(plans.size).toBe(1);
    // Each position alone, from a fresh session (a plan built for exactly that position), and the reference.
    for (const [i, feeds] of steps.entries()) {
      const fresh = (await (await load(bundle)).run(feeds)).get('logits')!;
      expect(Array.from(reused[i].numbers()), `position ${i + 1}`).toEqual(Array.from(fresh.numbers()));
      const want = interpret(decoder.graph, feeds, { opsets: decoder.opsets }).get('logits')!;
      const scale = Math.max(...Array.from(want.numbers(), Math.abs));
      Array.from(fresh.numbers()).forEach((v, k) => expect(Math.abs(v - want.numbers()[k])).toBeLessThan(1e-4 * scale));
    }
  });
});

describe('runtime modules are browser-safe', () => {
  /** Static imports reachable from a module, resolved to .ts files in the repo. */
  function staticClosure(entry: string): Map<string, string[]> {
    const seen = new Map<string, string[]>();
    const visit = (file: string): void => {
      if (seen.has(file)) return;
      const source = fs.readFileSync(file, 'utf8');
      const specs = [...source.matchAll(/^\s*(?:import|export)\s[^'"]*?from\s+'([^']+)'/gm)]
        .filter((m) => !/^\s*import\s+type\s/.test(m[0]) && !/^\s*export\s+type\s/.test(m[0]))
        .map((m) => m[1]);
      seen.set(file, specs);
      for (const spec of specs) if (spec.startsWith('.')) visit(path.resolve(path.dirname(file), spec.replace(/\.js$/, '.ts')));
    };
    visit(entry);
    return seen;
  }

  it('src/runtime/index.ts imports nothing from node: (statically)', () => {
    const closure = staticClosure(path.join(REPO_ROOT, 'src', 'runtime', 'index.ts'));
    const offenders = [...closure].flatMap(([file, specs]) =>
      specs.filter((s) => s.startsWith('node:') || s === 'binaryen').map((s) => `${path.relative(REPO_ROOT, file)} imports ${s}`));
    expect(offenders).toEqual([]);
    expect(closure.size).toBeGreaterThan(5);
  });
});

describe('CLI: compile --target wasm and run a bundle', () => {
  const gqa = path.join(MODELS_DIR, 'genai-webgpu-tiny-gqa-fp16');

  it('compiles a model to a bundle, runs it, and runs the model with --target wasm', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'llmcc-cli-'));
    const bundle = path.join(dir, 'model.llmcc');
    const compiled = llmcc('compile', path.join(gqa, 'model.onnx'), '--target', 'wasm', '-o', bundle);
    expect(compiled.stderr).toBe('');
    expect(compiled.code).toBe(0);
    expect(compiled.stdout).toMatch(/^wrote .*model\.llmcc \(.*\): \d+ kernels/);
    expect(fs.readdirSync(dir)).toEqual(['model.llmcc']);
    const fromBundle = llmcc('run', bundle, '--data', path.join(gqa, 'test_data_set_1'));
    expect(fromBundle.code, fromBundle.stdout + fromBundle.stderr).toBe(0);
    expect(fromBundle.stdout).toMatch(/output 0 'logits' f16\[1,1,256\]: .* ok/);
    const direct = llmcc('run', path.join(gqa, 'model.onnx'), '--target', 'wasm', '--data', path.join(gqa, 'test_data_set_0'));
    expect(direct.code, direct.stdout + direct.stderr).toBe(0);
  });

  it('reports a bad bundle in one line and exits 2', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'llmcc-cli-'));
    const bad = path.join(dir, 'bad.llmcc');
    // Version 1: bundles from before the LUT kernels took a row range.
    fs.writeFileSync(bad, 'LLMCCBND\x01\x00\x00\x00' + ' '.repeat(60));
    const result = llmcc('run', bad, '--data', path.join(gqa, 'test_data_set_0'));
    expect(result.code).toBe(2);
    expect(result.stderr).toBe(`llmcc: error: bundle format version 1 is not supported (this llmcc reads version ${BUNDLE_FORMAT_VERSION}); recompile the model, ${bad}\n`);
  });

  it('asks for -o and refuses unsupported models naming every missing op at once', () => {
    expect(llmcc('compile', path.join(gqa, 'model.onnx'), '--target', 'wasm').stderr).toMatch(/^llmcc: error: --target wasm writes a bundle: give its path with -o\n$/);
    const nbits = path.join(MODELS_DIR, 'matmulnbits', 'matmulnbits_case0_sym_N8_initializers', 'model.onnx');
    const refused = llmcc('compile', nbits, '--target', 'wasm', '-o', path.join(os.tmpdir(), 'never.llmcc'));
    if (refused.code !== 0) expect(refused.stderr).toMatch(/^llmcc: error: target wasm does not support com\.microsoft\.MatMulNBits \("MatMulNBits_0": no wasm kernel\)/);
  });
});
