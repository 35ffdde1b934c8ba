import { describe, expect, it } from 'vitest';
import type { Attribute, Node, TensorType } from '../ir/graph.js';
import type { DType } from '../ir/dtype.js';
import { lutBlockSums, lutMatMul } from '../passes/lut/matmul.js';
import { precomputeTables } from '../passes/lut/tables.js';
import { relayoutWeights } from '../passes/lut/bitplanes.js';
import { buildLutMatMul } from '../targets/wasm/kernels/lut/LutMatMul.js';
import { lutMatMulParams } from '../targets/wasm/kernels/lut/common.js';
import { fastSubtiles } from '../targets/wasm/kernels/lut/matmul-fast.js';
import { KernelRunner } from '../src/bench/kernel-runner.js';
import { WasmThreadPool, splitRange } from '../src/runtime/threads.js';
import { seededRandom } from '../ir/random.js';

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
      const kernels = [buildLutMatMul(ctx('mm'), { rowRange: true }), buildLutMatMul(ctx('sums'), { rowRange: true, blockSums: true })];
      const runner = await KernelRunner.create(kernels, 1 << 20, { shared: true });
      const ins = [pre.tables, pre.tableScales, pre.actSums, w.planes, w.scales, w.offsets, bias].map((x) => runner.put(x));
      const y = runner.alloc(M * N * blocks * 4);
      const scratch = runner.alloc(M * groups * 16);
      const pool = await WasmThreadPool.create(runner.module, runner.memory, runner.exports, ['mm', 'sums'], threads);
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
      } finally {
        await pool.close();
      }
    });
  }
});
