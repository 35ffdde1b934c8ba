import { describe, expect, it } from 'vitest';
import type { Attribute, Node, TensorType } from '../ir/graph.js';
import type { Kernel } from '../codegen/kernel.js';
import { buildWasmModule } from '../codegen/wasm/module.js';
import { lutBlockSums, lutMatMul } from '../passes/lut/matmul.js';
import { relayoutWeights } from '../passes/lut/bitplanes.js';
import { precomputeTables } from '../passes/lut/tables.js';
import { KernelRunner } from '../src/bench/kernel-runner.js';
import { buildCandidates } from '../src/tune/measure.js';
import { enumerateSpace, knobsText, type Knobs } from '../src/tune/space.js';
import type { KernelBuildContext, WasmKernelDef } from '../targets/wasm/kernel-def.js';
import { wasmKernels } from '../targets/wasm/kernels/index.js';
import { gemmKernel } from '../targets/wasm/kernels/Gemm.js';
import { matMulKernel } from '../targets/wasm/kernels/MatMul.js';
import { lutMatMulKernel } from '../targets/wasm/kernels/lut/LutMatMul.js';
import { model, node, rng, run, randomTensor } from './helpers/lut-graph.js';

/**
 * Every configuration of every tunable wasm kernel computes the right result: the tuner may
 * pick any of them, so each is built (one module per kernel) and run against the reference
 * on small shapes chosen so that every tail (rows, columns, K remainder) is exercised.
 */

/** A module of `kernels` on a fresh memory, with a bump allocator (unoptimized build). */
async function instantiate(kernels: Kernel[]) {
  const memory = new WebAssembly.Memory({ initial: 4 });
  const binary = buildWasmModule(kernels, { optimize: false });
  const instance = await WebAssembly.instantiate(await WebAssembly.compile(binary as Uint8Array<ArrayBuffer>), { env: { memory } });
  const exports = instance.exports as Record<string, (...args: number[]) => void>;
  let top = 16;
  return {
    memory,
    reset: () => { top = 16; },
    put(data: Float32Array): number {
      const at = top;
      new Float32Array(memory.buffer, at, data.length).set(data);
      top = Math.ceil((at + data.byteLength + 16) / 16) * 16;
      return at;
    },
    call: (name: string, ...args: number[]) => exports[name](...args),
  };
}

function tt(dtype: TensorType['dtype'], shape: number[]): TensorType {
  return { dtype, shape };
}

/** Builds every configuration of `def` for `ctx` into one module. */
async function buildAll(def: WasmKernelDef, ctx: KernelBuildContext): Promise<{ configs: Knobs[]; runner: KernelRunner }> {
  const space = def.tuningSpace!(ctx);
  expect(space.length).toBeGreaterThan(0);
  const configs = enumerateSpace(space);
  const runner = await KernelRunner.create(buildCandidates(def, ctx, configs));
  return { configs, runner };
}

describe('tunable wasm kernels', () => {
  it('every kernel that declares knobs has a correctness test here', () => {
    const tested = new Set([matMulKernel, gemmKernel, lutMatMulKernel].map((d) => `${d.domain}::${d.op}`));
    const tunable = wasmKernels.filter((d) => d.tuningSpace).map((d) => `${d.domain}::${d.op}`);
    expect(tunable.filter((id) => !tested.has(id))).toEqual([]);
  });

  // [A shape, B shape], all of batch rank 2 so that one module serves them: every tail
  // (M = 7, N = 27, K = 11), decode's GEMV, and broadcast batch dims.
  const matMulShapes = [[[1, 2, 7, 11], [1, 11, 27]], [[1, 1, 1, 11], [1, 11, 30]], [[3, 1, 5, 9], [2, 9, 26]]] as const;
  it('MatMul: every configuration matches the reference, bit-identically, at every tail', async () => {
    const mm = node('MatMul', ['a', 'b'], ['c'], {}, '', 'mm');
    const ctx: KernelBuildContext = {
      node: mm, inputs: [tt('f32', [1, 1, 7, 11]), tt('f32', [1, 11, 27])], outputs: [tt('f32', [1, 2, 7, 27])],
      constant: () => undefined, name: 'mm',
    };
    const configs = enumerateSpace(matMulKernel.tuningSpace!(ctx));
    expect(configs.length).toBeGreaterThan(100);
    // Unoptimized: binaryen's optimizer is not what this tests, and it is ~3x slower on 144 kernels.
    const exec = await instantiate(buildCandidates(matMulKernel, ctx, configs));
    const random = rng(3);
    for (const [aShape, bShape] of matMulShapes) {
      const a = randomTensor('f32', [...aShape], random);
      const b = randomTensor('f32', [...bShape], random);
      const expected = run(model({
        inputs: [{ name: 'a', dtype: 'f32', shape: [...aShape] }, { name: 'b', dtype: 'f32', shape: [...bShape] }],
        outputs: [{ name: 'c', dtype: 'f32' }], nodes: [mm],
      }), { a, b }).get('c')!;
      exec.reset();
      const aAt = exec.put(new Float32Array(a.numbers()));
      const bAt = exec.put(new Float32Array(b.numbers()));
      const cAt = exec.put(new Float32Array(expected.size));
      const args = matMulKernel.args(mm, { inputs: [[...aShape], [...bShape]], outputs: [[...expected.shape]] });
      const want = expected.numbers();
      let first: number[] | undefined;
      for (let c = 0; c < configs.length; c++) {
        const out = new Float32Array(exec.memory.buffer, cAt, expected.size);
        out.fill(Number.NaN);
        exec.call(`c${c}`, aAt, bAt, cAt, ...args);
        const got = Array.from(out);
        const label = `${JSON.stringify(aShape)}x${JSON.stringify(bShape)} ${knobsText(configs[c])}`;
        const worst = Math.max(...got.map((g, i) => (Number.isNaN(g) ? Infinity : Math.abs(g - want[i]))));
        expect(worst, label).toBeLessThanOrEqual(1e-5);
        // Same k order in every tile: the same bits as the first configuration.
        first ??= got;
        expect(got, label).toEqual(first);
      }
    }
  });

  // transA/transB and C's broadcast change only the launch strides: one module serves every case.
  it('Gemm: every configuration matches the reference for every transpose and C broadcast', async () => {
    const [M, N, K] = [5, 11, 7];
    const cases = [
      { transA: 0, transB: 0, c: [N] }, { transA: 1, transB: 0, c: [M, N] }, { transA: 0, transB: 1, c: [M, 1] }, { transA: 1, transB: 1, c: undefined },
    ];
    const gemm = (c: (typeof cases)[number]) =>
      node('Gemm', ['a', 'b', ...(c.c ? ['c'] : [])], ['y'], { alpha: 0.75, beta: 1.5, transA: c.transA, transB: c.transB }, '', 'gemm');
    const ctxFor = (c: (typeof cases)[number]): KernelBuildContext => ({
      node: gemm(c), inputs: [tt('f32', c.transA ? [K, M] : [M, K]), tt('f32', c.transB ? [N, K] : [K, N]), ...(c.c ? [tt('f32', c.c)] : [])],
      outputs: [tt('f32', [M, N])], constant: () => undefined, name: 'gemm',
    });
    // C present and absent are different kernels: one module each.
    for (const withC of [true, false]) {
      const these = cases.filter((c) => !!c.c === withC);
      const configs = enumerateSpace(gemmKernel.tuningSpace!(ctxFor(these[0])));
      const exec = await instantiate(buildCandidates(gemmKernel, ctxFor(these[0]), configs));
      const random = rng(8);
      for (const c of these) {
        const ctx = ctxFor(c);
        const tensors = ctx.inputs.map((t) => randomTensor('f32', t!.shape as number[], random));
        const names = ['a', 'b', 'c'].slice(0, tensors.length);
        const expected = run(model({
          inputs: names.map((name, i) => ({ name, dtype: 'f32' as const, shape: tensors[i].shape })),
          outputs: [{ name: 'y', dtype: 'f32' }], nodes: [ctx.node],
        }), Object.fromEntries(names.map((name, i) => [name, tensors[i]]))).get('y')!;
        exec.reset();
        const offsets = tensors.map((t) => exec.put(new Float32Array(t.numbers())));
        const yAt = exec.put(new Float32Array(M * N));
        const args = gemmKernel.args(ctx.node, { inputs: tensors.map((t) => [...t.shape]), outputs: [[M, N]] });
        const want = expected.numbers();
        configs.forEach((knobs) => {
          const out = new Float32Array(exec.memory.buffer, yAt, M * N);
          out.fill(Number.NaN);
          exec.call(`c${configs.indexOf(knobs)}`, ...offsets, yAt, ...args);
          const worst = Math.max(...Array.from(out, (g, i) => (Number.isNaN(g) ? Infinity : Math.abs(g - want[i]))));
          expect(worst, `${JSON.stringify(c)} ${knobsText(knobs)}`).toBeLessThanOrEqual(1e-5);
        });
      }
    }
  });

  const attrs = (values: Record<string, number>): Map<string, Attribute> =>
    new Map(Object.entries(values).map(([k, v]) => [k, { kind: 'int', value: v } as Attribute]));

  for (const c of [
    { M: 2, N: 32, K: 256, bits: 2, groupSize: 64 },
    { M: 3, N: 16, K: 128, bits: 3, groupSize: 32 },
    { M: 1, N: 48, K: 512, bits: 4, groupSize: 128 },
    // k_block 1024 here: K blocks of 8 quant blocks and a last one of 4.
    { M: 2, N: 32, K: 1536, bits: 2, groupSize: 128 },
  ]) {
    it(`LutMatMul M${c.M} N${c.N} K${c.K} ${c.bits}-bit gs${c.groupSize}: every configuration is exact on the integer part`, async () => {
      const { M, N, K, bits, groupSize } = c;
      const r = rng(17);
      const act = new Float32Array(M * K).map(() => (r() - 0.5) * 4);
      const codes = new Uint8Array(N * K).map(() => Math.floor(r() * 2 ** bits));
      const scales = new Float32Array(N * (K / groupSize)).map(() => 0.01 + r() * 0.1);
      const w = relayoutWeights({ codes, scales, bits, ternary: false, N, K, groupSize }, 4, 16);
      const pre = precomputeTables(act, M, K, 4, groupSize, 'i8');
      const lut: Node = {
        name: 'lut', domain: 'llmcc', op: 'LutMatMul', inputs: ['t', 'ts', 'as', 'p', 's', 'o'], outputs: ['y'],
        attributes: attrs({ bits, g: 4, group_size: groupSize, K, N, rows_per_tile: 16 }),
      };
      const groups = K / 4, blocks = K / groupSize;
      const ctx: KernelBuildContext = {
        node: lut,
        inputs: [tt('i8', [M, groups, 8]), tt('f32', [M, blocks]), tt('f32', [M, blocks]), tt('u8', [bits, N, groups]), tt('f32', [N, blocks]), tt('f32', [N, blocks])],
        outputs: [tt('f32', [M, N])], constant: () => undefined, name: 'lut',
      };
      const { configs, runner } = await buildAll(lutMatMulKernel, ctx);
      // The integer block sums (the kernel's exact part) come from the same template in its blockSums form.
      const { buildLutMatMul } = await import('../targets/wasm/kernels/lut/LutMatMul.js');
      const sumsRunner = await KernelRunner.create(configs.map((knobs, i) => buildLutMatMul({ ...ctx, name: `s${i}`, tuning: knobs }, { blockSums: true, unroll: knobs.unroll })));
      const reference = {
        tables: pre.tables, tableScales: pre.tableScales, actSums: pre.actSums, planes: w.planes, scales: w.scales, offsets: w.offsets,
        M, N, K, bits, g: 4, groupSize, rowsPerTile: 16,
      };
      const wantSums = Array.from(lutBlockSums(reference));
      const want = Array.from(lutMatMul(reference));
      const scale = Math.max(...want.map(Math.abs));
      const shapes = { inputs: ctx.inputs.map((t) => t!.shape as number[]), outputs: [[M, N]] };
      for (const [r2, out, count] of [[runner, 'y', M * N], [sumsRunner, 'sums', M * N * blocks]] as const) {
        const inputs = [pre.tables, pre.tableScales, pre.actSums, w.planes, w.scales, w.offsets].map((x) => r2.put(x));
        const y = r2.alloc(count * 4);
        const scratch = r2.alloc(lutMatMulKernel.scratchBytes!(lut, shapes));
        configs.forEach((knobs, i) => {
          r2.call(out === 'y' ? `c${i}` : `s${i}`, ...inputs, y, scratch, ...lutMatMulKernel.args(lut, shapes));
          if (out === 'sums') {
            expect(Array.from(r2.i32(y, count)), knobsText(knobs)).toEqual(wantSums);
          } else {
            const got = r2.f32(y, count);
            for (let j = 0; j < count; j++) expect(Math.abs(got[j] - want[j]), knobsText(knobs)).toBeLessThanOrEqual(1e-5 * scale + 1e-6);
          }
        });
      }
      expect(configs.length).toBeGreaterThan(1);
      if (K > 1024) expect(configs.some((knobs) => knobs.k_block === 1024)).toBe(true);
    });
  }
});
