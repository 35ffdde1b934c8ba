import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Attribute, Node, TensorType } from '../ir/graph.js';
import type { DType } from '../ir/dtype.js';
import { lutBlockSums, lutMatMul } from '../passes/lut/matmul.js';
import { precomputeTables } from '../passes/lut/tables.js';
import { relayoutWeights } from '../passes/lut/bitplanes.js';
import { buildLutMatMul } from '../targets/wasm/kernels/lut/LutMatMul.js';
import { lutMatMulParams } from '../targets/wasm/kernels/lut/common.js';
import { fastSubtiles } from '../targets/wasm/kernels/lut/matmul-fast.js';
import { KernelRunner } from '../src/bench/kernel-runner.js';
import { WasmThreadPool, splitRange, withSharedMemoryImport } from '../src/runtime/threads.js';
import { seededRandom } from '../ir/random.js';
import type { Tensor } from '../ir/tensor.js';
import { TINY } from '../examples/llama-gen/config.js';
import { generateDecoder } from '../examples/llama-gen/decoder.js';
import { loadModel } from '../src/onnx/load.js';
import { prepareModel } from '../passes/pipeline.js';
import { loweringFromFlags } from '../src/cli/lowering-options.js';
import { compileWasm } from '../targets/wasm/compile.js';
import { type CompiledWasm, deserializeNode } from '../targets/wasm/program.js';
import { type RuntimeSession, load, sessionFromCompiled } from '../src/runtime/index.js';
import { type DecoderEngine, generate, signatureOfGraph } from '../src/runtime/generate.js';
import { lutMatMulKernel } from '../targets/wasm/kernels/lut/LutMatMul.js';
import { llmcc } from './helpers/cli.js';
import { buildWasmModule } from '../codegen/wasm/module.js';
import { writeBundle } from '../src/bundle/write.js';
import { readTestDataSet } from '../src/testdata.js';
import { encodeTensorProto } from '../src/onnx/tensor-proto.js';

function tt(dtype: DType, shape: number[]): TensorType {
  return { dtype, shape };
}

describe('splitRange', () => {
  it('covers [0, count) with contiguous, step-aligned ranges', () => {
    expect(splitRange(10, 2, 2)).toEqual([[0, 6], [6, 10]]);
    expect(splitRange(8, 3, 2)).toEqual([[0, 2], [2, 6], [6, 8]]);
    expect(splitRange(2, 4, 2)).toEqual([[0, 0], [0, 2], [2, 2], [2, 2]]);
    for (const [count, parts, step] of [[256, 2, 2], [255, 3, 4], [7, 7, 1]]) {
      const ranges = splitRange(count, parts, step);
      expect(ranges[0][0]).toBe(0);
      expect(ranges[parts - 1][1]).toBe(count);
      ranges.forEach(([b, e], i) => {
        expect(e).toBeGreaterThanOrEqual(b);
        if (i > 0) expect(b).toBe(ranges[i - 1][1]);
        if (i < parts - 1) expect(e % step).toBe(0);
      });
    }
  });
});

describe('LutMatMul on worker threads (shared memory, row ranges)', () => {
  const M = 2, N = 96, K = 256, bits = 3, groupSize = 64;
  const groups = K / 4, blocks = K / groupSize;
  const random = seededRandom(21);
  const a = Float32Array.from({ length: M * K }, () => (random() - 0.5) * 4);
  const codes = Uint8Array.from({ length: N * K }, () => Math.floor(random() * 2 ** bits));
  const scales = Float32Array.from({ length: N * blocks }, () => 0.01 + random() * 0.1);
  const bias = Float32Array.from({ length: N }, () => random() - 0.5);
  const w = relayoutWeights({ codes, scales, bits, ternary: false, N, K, groupSize }, 4, 16, undefined, true);
  const pre = precomputeTables(a, M, K, 4, groupSize, 'i8');
  const node: Node = {
    name: 'mm', domain: 'llmcc', op: 'LutMatMul', inputs: ['t', 'ts', 'as', 'p', 's', 'o', 'b'], outputs: ['y'],
    attributes: new Map<string, Attribute>(Object.entries({ bits, g: 4, group_size: groupSize, K, N, rows_per_tile: 16, tiled_scales: 1 })
      .map(([k, v]) => [k, { kind: 'int', value: v }])),
  };
  const inputs = [tt('i8', [M, groups, 8]), tt('f32', [M, blocks]), tt('f32', [M, blocks]), tt('u8', [bits, N, groups]),
    tt('f32', [N, blocks]), tt('f32', [N, blocks]), tt('f32', [N])];
  const args = {
    tables: pre.tables, tableScales: pre.tableScales, actSums: pre.actSums, planes: w.planes, scales: w.scales, offsets: w.offsets, bias,
    M, N, K, bits, g: 4, groupSize, rowsPerTile: 16, tiledScales: true,
  };

  for (const threads of [2, 3]) {
    it(`${threads} threads give the reference's exact block sums and its output`, async () => {
      const ctx = (name: string) => ({ node: { ...node, name }, inputs, outputs: [tt('f32', [M, N])], constant: () => undefined, name });
      const kernels = [buildLutMatMul(ctx('mm'), { rowRange: true }), buildLutMatMul(ctx('sums'), { rowRange: true, blockSums: true }),
        buildLutMatMul(ctx('blocked'), { rowRange: true, kBlock: 128 })];
      const runner = await KernelRunner.create(kernels, 1 << 20, { shared: true });
      const ins = [pre.tables, pre.tableScales, pre.actSums, w.planes, w.scales, w.offsets, bias].map((x) => runner.put(x));
      const y = runner.alloc(M * N * blocks * 4);
      const scratch = runner.alloc(M * groups * 16);
      const pool = await WasmThreadPool.create(runner.module, runner.memory, runner.exports, ['mm', 'sums', 'blocked'], threads);
      try {
        const ranges = splitRange(N / 16, threads, fastSubtiles(lutMatMulParams(node)));
        expect(ranges.filter(([b, e]) => e > b).length).toBeGreaterThan(1);
        pool.run('sums', ranges.map(([b, e]) => [...ins, y, scratch, M, b, e]));
        expect(Array.from(runner.i32(y, M * N * blocks))).toEqual(Array.from(lutBlockSums(args)));
        pool.run('mm', ranges.map(([b, e]) => [...ins, y, scratch, M, b, e]));
        const got = runner.f32(y, M * N);
        const want = lutMatMul(args);
        const scale = Math.max(...Array.from(want, Math.abs));
        for (let i = 0; i < M * N; i++) expect(Math.abs(got[i] - want[i])).toBeLessThanOrEqual(1e-5 * scale + 1e-6);
        // K blocks (zeroing and bias passes over each share's rows only): the same bits.
        new Float32Array(runner.memory.buffer, y, M * N).fill(Number.NaN);
        pool.run('blocked', ranges.map(([b, e]) => [...ins, y, scratch, M, b, e]));
        expect(Array.from(runner.f32(y, M * N))).toEqual(Array.from(got));
      } finally {
        await pool.close();
      }
    });
  }
});

describe('withSharedMemoryImport', () => {
  it('rewrites only the memory import: the module then links to a shared memory', async () => {
    const node: Node = {
      name: 'k', domain: 'llmcc', op: 'LutMatMul', inputs: ['t', 'ts', 'as', 'p', 's', 'o'], outputs: ['y'],
      attributes: new Map<string, Attribute>(Object.entries({ bits: 2, g: 4, group_size: 64, K: 64, N: 16, rows_per_tile: 16, tiled_scales: 1 })
        .map(([k, v]) => [k, { kind: 'int', value: v }])),
    };
    const kernel = buildLutMatMul({ node, inputs: [tt('i8', [1, 16, 8])], outputs: [tt('f32', [1, 16])], constant: () => undefined, name: 'k' });
    const plain = buildWasmModule([kernel]);
    const shared = new WebAssembly.Memory({ initial: 1, maximum: 100, shared: true });
    await expect(WebAssembly.instantiate(plain as Uint8Array<ArrayBuffer>, { env: { memory: shared } })).rejects.toThrow();
    const patched = withSharedMemoryImport(plain, 100);
    const module = new WebAssembly.Module(patched as Uint8Array<ArrayBuffer>);
    expect(WebAssembly.Module.exports(module)).toEqual(WebAssembly.Module.exports(new WebAssembly.Module(plain as Uint8Array<ArrayBuffer>)));
    const instance = await WebAssembly.instantiate(module, { env: { memory: shared } });
    expect(typeof instance.exports.k).toBe('function');
  });
});

/**
 * Threads in the real runtime: a lowered (2-bit LUT) llama-gen decoder gives the same bits on
 * 2 threads as on 1, through the session API (every step's logits, resident KV cache) and the
 * CLI (`run` outputs, `generate` ids).
 */
describe('runtime sessions with threads (llama-gen tiny, --lower --bits 2)', () => {
  let tmp: string;
  let modelPath: string;
  let dataSet: string;
  let compiled: CompiledWasm;
  const sessions: RuntimeSession[] = [];
  beforeAll(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'llmcc-threads-'));
    const written = await generateDecoder({ config: TINY, out: tmp, ops: 'primitive', dtype: 'f32', externalData: false, seed: 3, testData: true });
    modelPath = written.modelPath;
    dataSet = written.testDataSets[0];
    const model = await loadModel(modelPath);
    prepareModel(model, loweringFromFlags({ bits: '2', group: '32', table: 'i8', g: '4', fuse: true }, 'wasm'), 'wasm');
    compiled = await compileWasm(model);
  });
  afterAll(async () => {
    await Promise.all(sessions.map((s) => s.close()));
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  /** Every run's outputs, recorded through generate() with the cache resident. */
  async function decode(session: RuntimeSession): Promise<{ tokens: number[]; outputs: Map<string, Tensor>[]; resident: boolean }> {
    const outputs: Map<string, Tensor>[] = [];
    const model = await loadModel(modelPath);
    const engine: DecoderEngine = {
      ...signatureOfGraph(model.graph),
      run: async (feeds) => { const out = await session.run(feeds); outputs.push(out); return out; },
      carry: (pairs) => {
        const state = session.carry(pairs);
        return { ...state, run: async (feeds) => { const out = await state.run(feeds); outputs.push(out); return out; } };
      },
    };
    const result = await generate(engine, { promptIds: [1, 17, 42, 7, 99], maxTokens: 6 });
    return { tokens: result.tokens, outputs, resident: result.cacheResident };
  }

  it('2 threads: the outputs of every step are bit-identical to 1 thread, and so are the ids', async () => {
    // The split must be real: LutMatMul launches with at least two tiles per thread.
    const splits = compiled.program.steps.filter((s) => s.kind === 'kernel')
      .map((s) => deserializeNode(compiled.program.nodes[s.node]))
      .filter((n) => n.op === 'LutMatMul')
      .map((n) => lutMatMulKernel.rowSplit(n, { inputs: [], outputs: [] }));
    expect(splits.length).toBeGreaterThan(0);
    expect(splits.some((s) => s !== undefined && splitRange(s.units, 2, s.step).every(([b, e]) => e > b))).toBe(true);
    const one = await sessionFromCompiled(compiled);
    const two = await sessionFromCompiled(compiled, { threads: 2 });
    sessions.push(one, two);
    expect(two.threads).toBe(2);
    const a = await decode(one);
    const b = await decode(two);
    expect(b.resident).toBe(true);
    expect(b.tokens).toEqual(a.tokens);
    expect(b.outputs.length).toBe(a.outputs.length);
    a.outputs.forEach((out, step) => {
      for (const [name, tensor] of out) expect(Array.from(b.outputs[step].get(name)!.numbers()), `step ${step} ${name}`).toEqual(Array.from(tensor.numbers()));
    });
  });

  it('llmcc run and generate --threads 2 on a bundle: the output bytes and ids of load() on 1 thread', async () => {
    const bundle = path.join(tmp, 'tiny.llmcc');
    await writeBundle(bundle, compiled);
    const single = await load(bundle);
    sessions.push(single);
    // run: input_K.pb bound by name, outputs written as output_K.pb (the data set's reference is the float model).
    const out = path.join(tmp, 'out2');
    const run = llmcc('run', bundle, '--data', dataSet, '--threads', '2', '--out', out);
    expect(run.code, run.stderr).not.toBe(2);
    const data = readTestDataSet(dataSet);
    const want = await single.run(new Map(data.inputs.map(({ name, tensor }) => [name, tensor])));
    single.outputNames.forEach((name, k) => {
      expect(Buffer.from(fs.readFileSync(path.join(out, `output_${k}.pb`))).equals(Buffer.from(encodeTensorProto(want.get(name)!, name))), name).toBe(true);
    });
    const generated = llmcc('generate', bundle, '--prompt-ids', '1,17,42,7', '--max-tokens', '6', '--json', '--threads', '2');
    expect(generated.code, generated.stderr).toBe(0);
    const ids = JSON.parse(generated.stdout.trim().split('\n').at(-1)!).tokens as number[];
    const model = await loadModel(modelPath);
    const reference = await generate({ ...signatureOfGraph(model.graph), run: (feeds) => single.run(feeds), carry: (pairs) => single.carry(pairs) },
      { promptIds: [1, 17, 42, 7], maxTokens: 6 });
    expect(ids).toEqual(reference.tokens);
  });
});

describe('thread pool after a failed share', () => {
  // f(i): i = 1 traps at once, i = 2 works for a while first, others store i + 100 at [i].
  // A run whose share traps must still wait for the slow share, or its late finish would be
  // counted against the next run, which would then never complete.
  it('reports the failure, waits for every other share, and the next run completes', async () => {
    const binaryen = (await import('binaryen')).default;
    const m = new binaryen.Module();
    m.setFeatures(binaryen.Features.MVP | binaryen.Features.Atomics);
    m.setMemory(1, 1, null, [], true);
    m.addMemoryImport('0', 'env', 'memory', true);
    const i = () => m.local.get(0, binaryen.i32);
    const spin = m.block('', [
      m.local.set(1, m.i32.const(0)),
      m.loop('spin', m.block('', [
        m.local.set(1, m.i32.add(m.local.get(1, binaryen.i32), m.i32.const(1))),
        m.br('spin', m.i32.lt_u(m.local.get(1, binaryen.i32), m.i32.const(200_000_000))),
      ])),
    ]);
    m.addFunction('f', binaryen.createType([binaryen.i32]), binaryen.none, [binaryen.i32], m.block('', [
      m.if(m.i32.eq(i(), m.i32.const(1)), m.unreachable()),
      m.if(m.i32.eq(i(), m.i32.const(2)), spin),
      m.i32.store(0, 4, m.i32.mul(i(), m.i32.const(4)), m.i32.add(i(), m.i32.const(100))),
    ]));
    m.addFunctionExport('f', 'f');
    expect(m.validate()).toBeTruthy();
    const module = new WebAssembly.Module(m.emitBinary());
    m.dispose();
    const memory = new WebAssembly.Memory({ initial: 1, maximum: 1, shared: true });
    const instance = new WebAssembly.Instance(module, { env: { memory } });
    const pool = await WasmThreadPool.create(module, memory, instance.exports as Record<string, (...a: number[]) => void>, ['f'], 3);
    try {
      expect(() => pool.run('f', [[0], [1], [2]])).toThrow(/a worker failed/);
      const words = new Int32Array(memory.buffer);
      // The slow share had finished when run() threw.
      expect(words[2]).toBe(102);
      pool.run('f', [[3], [4], [5]]);
      expect([words[3], words[4], words[5]]).toEqual([103, 104, 105]);
    } finally {
      await pool.close();
    }
  }, 60_000);
});
