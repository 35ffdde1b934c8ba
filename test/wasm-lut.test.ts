import { describe, expect, it } from 'vitest';
import { seededRandom } from '../ir/random.js';
import type { Attribute, Node, TensorType } from '../ir/graph.js';
import type { DType } from '../ir/dtype.js';
import { lutBlockSums, lutMatMul } from '../passes/lut/matmul.js';
import { precomputeTables } from '../passes/lut/tables.js';
import { relayoutWeights } from '../passes/lut/bitplanes.js';
import type { KernelBuildContext } from '../targets/wasm/kernel-def.js';
import { buildLutMatMul, fastPathBlocker, type LutMatMulBuildOptions } from '../targets/wasm/kernels/lut/LutMatMul.js';
import { kBlockQuantBlocks, planeChunks } from '../targets/wasm/kernels/lut/matmul-fast.js';
import { buildLutPrecompute } from '../targets/wasm/kernels/lut/LutPrecompute.js';
import { lutMatMulParams } from '../targets/wasm/kernels/lut/common.js';
import { KernelRunner } from '../src/bench/kernel-runner.js';


function attrs(values: Record<string, number | string>): Map<string, Attribute> {
  return new Map(Object.entries(values).map(([k, v]) => [k, typeof v === 'number' ? { kind: 'int', value: v } : { kind: 'string', value: v }] as [string, Attribute]));
}

function context(node: Node, inputs: (TensorType | undefined)[], outputs: TensorType[]): KernelBuildContext {
  return { node, inputs, outputs, constant: () => undefined, name: node.name };
}

function tt(dtype: DType, shape: number[]): TensorType {
  return { dtype, shape };
}

interface Case {
  M: number; N: number; K: number; bits: number; groupSize: number; rowsPerTile: number; ternary?: boolean; table: 'i8' | 'f32'; bias: boolean;
  /** Scales and offsets tiled like the planes (tiled_scales = 1). */
  tiled?: boolean;
  /** Extreme data instead of random: every table code ±127 and every index 15 or 0 (the int16 bounds). */
  extreme?: boolean;
  /** Two g-bit indices per plane byte (indices_per_byte = 2). */
  perByte?: 1 | 2;
}

function makeCase(c: Case, seed: number) {
  const r = seededRandom(seed);
  const { M, N, K, bits, groupSize, rowsPerTile } = c;
  const a = new Float32Array(M * K).map(() => (r() - 0.5) * 4);
  const codes = new Uint8Array(N * K).map(() => Math.floor(r() * (c.ternary ? 3 : 2 ** bits)));
  const scales = new Float32Array(N * (K / groupSize)).map(() => 0.01 + r() * 0.1);
  if (c.extreme) codes.fill(r() < 0.5 ? 0 : 2 ** bits - 1);
  const w = relayoutWeights({ codes, scales, bits, ternary: c.ternary ?? false, N, K, groupSize }, 4, rowsPerTile, undefined, c.tiled ?? false, c.perByte ?? 1);
  const pre = precomputeTables(a, M, K, 4, groupSize, c.table);
  if (c.extreme && pre.tables instanceof Int8Array) pre.tables.fill(r() < 0.5 ? 127 : -127);
  const bias = c.bias ? new Float32Array(N).map(() => r() - 0.5) : undefined;
  return { a, w, pre, bias };
}

function lutNode(c: Case): Node {
  return {
    name: 'lut', domain: 'llmcc', op: 'LutMatMul',
    inputs: ['t', 'ts', 'as', 'p', 's', 'o', ...(c.bias ? ['b'] : [])], outputs: ['y'],
    attributes: attrs({ bits: c.bits, g: 4, group_size: c.groupSize, K: c.K, N: c.N, rows_per_tile: c.rowsPerTile, ...(c.tiled ? { tiled_scales: 1 } : {}),
      ...(c.perByte === 2 ? { indices_per_byte: 2 } : {}) }),
  };
}

async function runLut(c: Case, seed: number, options: LutMatMulBuildOptions) {
  const { w, pre, bias } = makeCase(c, seed);
  const { M, N, K, bits, groupSize } = c;
  const node = lutNode(c);
  const groups = K / 4, blocks = K / groupSize;
  const ctx = context(node, [
    tt(c.table, [M, groups, 8]), tt('f32', [M, blocks]), tt('f32', [M, blocks]), tt('u8', [bits, N, groups / (c.perByte ?? 1)]),
    tt('f32', [N, blocks]), tt('f32', [N, blocks]), c.bias ? tt('f32', [N]) : undefined,
  ], [tt('f32', [M, N])]);
  const kernel = buildLutMatMul(ctx, options);
  const runner = await KernelRunner.create([kernel]);
  const bufs = [pre.tables, pre.tableScales, pre.actSums, w.planes, w.scales, w.offsets, ...(bias ? [bias] : [])].map((x) => runner.put(x));
  const outCount = options.blockSums ? M * N * blocks : M * N;
  const y = runner.alloc(outCount * 4);
  const scratch = runner.alloc(M * groups * 16);
  runner.call('lut', ...bufs, y, scratch, M);
  const args = {
    tables: pre.tables, tableScales: pre.tableScales, actSums: pre.actSums, planes: w.planes, scales: w.scales, offsets: w.offsets, bias,
    M, N, K, bits, g: 4, groupSize, rowsPerTile: c.rowsPerTile, tiledScales: c.tiled, indicesPerByte: c.perByte,
  };
  return options.blockSums
    ? { got: Array.from(runner.i32(y, outCount)), want: Array.from(lutBlockSums(args)) }
    : { got: Array.from(runner.f32(y, outCount)), want: Array.from(lutMatMul(args)) };
}

const cases: Case[] = [
  { M: 1, N: 32, K: 256, bits: 2, groupSize: 64, rowsPerTile: 16, table: 'i8', bias: false },
  { M: 3, N: 48, K: 128, bits: 1, groupSize: 32, rowsPerTile: 16, table: 'i8', bias: true },
  { M: 2, N: 16, K: 512, bits: 3, groupSize: 128, rowsPerTile: 16, table: 'i8', bias: false },
  { M: 2, N: 32, K: 256, bits: 4, groupSize: 128, rowsPerTile: 16, table: 'i8', bias: true },
  { M: 1, N: 32, K: 256, bits: 2, groupSize: 64, rowsPerTile: 16, ternary: true, table: 'i8', bias: false },
  { M: 1, N: 16, K: 4096, bits: 4, groupSize: 1024, rowsPerTile: 16, table: 'i8', bias: false },
  { M: 2, N: 12, K: 96, bits: 2, groupSize: 32, rowsPerTile: 4, table: 'i8', bias: true },
  { M: 2, N: 8, K: 64, bits: 3, groupSize: 16, rowsPerTile: 1, table: 'f32', bias: true },
  // The wasm compile layout: scales and offsets tiled like the planes.
  { M: 1, N: 64, K: 256, bits: 2, groupSize: 64, rowsPerTile: 16, table: 'i8', bias: false, tiled: true },
  { M: 3, N: 48, K: 128, bits: 1, groupSize: 32, rowsPerTile: 16, table: 'i8', bias: true, tiled: true },
  { M: 2, N: 32, K: 512, bits: 3, groupSize: 128, rowsPerTile: 16, table: 'i8', bias: true, tiled: true },
  { M: 2, N: 32, K: 512, bits: 4, groupSize: 256, rowsPerTile: 16, table: 'i8', bias: false, tiled: true },
  { M: 1, N: 32, K: 256, bits: 2, groupSize: 64, rowsPerTile: 16, ternary: true, table: 'i8', bias: false, tiled: true },
  { M: 2, N: 12, K: 96, bits: 2, groupSize: 32, rowsPerTile: 4, table: 'i8', bias: true, tiled: true },
  // Sums at the int16 limits of the biased accumulation (every plane chunk at its bound).
  { M: 2, N: 32, K: 512, bits: 3, groupSize: 128, rowsPerTile: 16, table: 'i8', bias: false, tiled: true, extreme: true },
  { M: 1, N: 32, K: 2048, bits: 4, groupSize: 1024, rowsPerTile: 16, table: 'i8', bias: false, tiled: true, extreme: true },
  { M: 1, N: 32, K: 512, bits: 4, groupSize: 128, rowsPerTile: 16, table: 'i8', bias: false, extreme: true },
];

function label(c: Case): string {
  return `M${c.M} N${c.N} K${c.K} ${c.ternary ? 'ternary' : `${c.bits}-bit`} gs${c.groupSize} R${c.rowsPerTile} ${c.table}` +
    `${c.bias ? ' bias' : ''}${c.tiled ? ' tiled' : ''}${c.extreme ? ' extreme' : ''}${c.perByte === 2 ? ' 2/byte' : ''}`;
}

describe('wasm LutMatMul', () => {
  it('takes the fast path for the wasm layout only', () => {
    expect(fastPathBlocker(lutMatMulParams(lutNode(cases[0])), 'i8')).toBeUndefined();
    expect(fastPathBlocker(lutMatMulParams(lutNode(cases[6])), 'i8')).toMatch(/rows_per_tile/);
    expect(fastPathBlocker(lutMatMulParams(lutNode(cases[0])), 'f32')).toMatch(/f32/);
  });

  it('splits planes into int16-exact chunks (255·lookups·(2^count − 1) < 2^16)', () => {
    expect(planeChunks(2, 32)).toEqual([{ first: 0, count: 2 }]);
    expect(planeChunks(4, 32)).toEqual([{ first: 0, count: 3 }, { first: 3, count: 1 }]);
    expect(planeChunks(4, 64)).toEqual([{ first: 0, count: 2 }, { first: 2, count: 2 }]);
    expect(planeChunks(4, 257)).toEqual([0, 1, 2, 3].map((first) => ({ first, count: 1 })));
    expect(planeChunks(1, 258)).toBeUndefined();
  });

  // Every tile grouping and unroll of the fast path gives the same exact sums and output.
  for (const [subtiles, unroll, accumulate] of [[1, 1, 'widen'], [2, 2, 'widen'], [4, 1, 'widen'], [1, 1, 'pairwise'], [2, 2, 'pairwise'], [4, 4, 'pairwise'],
    [1, 1, 'shift'], [2, 2, 'shift'], [4, 4, 'shift']] as const) {
    const c: Case = { M: 2, N: 64, K: 256, bits: 2, groupSize: 64, rowsPerTile: 16, table: 'i8', bias: true, tiled: true };
    it(`fast path with subtiles ${subtiles}, unroll ${unroll}, ${accumulate} accumulation (${label(c)})`, async () => {
      const sums = await runLut(c, 3, { blockSums: true, subtiles, unroll, accumulate });
      expect(sums.got).toEqual(sums.want);
      const { got, want } = await runLut(c, 3, { subtiles, unroll, accumulate });
      const scale = Math.max(...want.map(Math.abs));
      for (let i = 0; i < want.length; i++) expect(Math.abs(got[i] - want[i])).toBeLessThanOrEqual(1e-5 * scale + 1e-6);
    });
  }

  // K blocks (the k_block knob) with a shorter last block: exact block sums, and the same output
  // bits as one pass over K (the f32 row sums carried in Y add in the same order).
  for (const [c, kBlock, subtiles] of [
    [{ M: 2, N: 32, K: 1536, bits: 2, groupSize: 128, rowsPerTile: 16, table: 'i8', bias: true, tiled: true }, 1024, 1],
    [{ M: 1, N: 48, K: 640, bits: 3, groupSize: 64, rowsPerTile: 16, table: 'i8', bias: true }, 256, 1],
    [{ M: 3, N: 64, K: 384, bits: 4, groupSize: 32, rowsPerTile: 16, table: 'i8', bias: false, tiled: true }, 100, 2],
  ] as [Case, number, number][]) {
    it(`K blocks of ${kBlock} give exact sums and one pass's output bits (${label(c)}, subtiles ${subtiles})`, async () => {
      const sums = await runLut(c, 13, { blockSums: true, kBlock, subtiles });
      expect(sums.got).toEqual(sums.want);
      const blocked = await runLut(c, 13, { kBlock, subtiles });
      const onePass = await runLut(c, 13, { kBlock: 0, subtiles });
      expect(blocked.got).toEqual(onePass.got);
      const scale = Math.max(...blocked.want.map(Math.abs));
      for (let i = 0; i < blocked.want.length; i++) expect(Math.abs(blocked.got[i] - blocked.want[i])).toBeLessThanOrEqual(1e-5 * scale + 1e-6);
    });
  }

  it('K blocks round down to whole quant blocks and vanish when one covers K', () => {
    const p = lutMatMulParams(lutNode({ M: 1, N: 32, K: 1536, bits: 2, groupSize: 128, rowsPerTile: 16, table: 'i8', bias: false }));
    expect(kBlockQuantBlocks(p, 1024)).toBe(8);
    expect(kBlockQuantBlocks(p, 200)).toBe(1);
    expect(kBlockQuantBlocks(p, 1500)).toBe(11);
    expect(kBlockQuantBlocks(p, 1536)).toBeUndefined();
    expect(kBlockQuantBlocks(p, 0)).toBeUndefined();
  });

  for (const c of cases.filter((x) => x.extreme)) {
    for (const accumulate of ['pairwise', 'shift'] as const) {
      it(`${accumulate} accumulation is exact at the int16 limits too (${label(c)})`, async () => {
        const { got, want } = await runLut(c, 7, { blockSums: true, accumulate });
        expect(got).toEqual(want);
      });
    }
  }

  for (const c of cases) {
    if (c.table === 'i8') {
      for (const generic of [false, true]) {
        it(`integer block sums are bit-exact (${label(c)}${generic ? ', generic' : ''})`, async () => {
          const { got, want } = await runLut(c, 7, { blockSums: true, generic });
          expect(got).toEqual(want);
        });
      }
    }
    it(`output matches the reference within f32 rounding (${label(c)})`, async () => {
      const { got, want } = await runLut(c, 11, {});
      const scale = Math.max(...want.map(Math.abs));
      for (let i = 0; i < want.length; i++) expect(Math.abs(got[i] - want[i])).toBeLessThanOrEqual(1e-5 * scale + 1e-6);
    });
  }
});

describe('wasm LutMatMul, two indices per byte', () => {
  const packed = cases.filter((c) => c.table === 'i8').map((c) => ({ ...c, perByte: 2 as const }));

  it('needs an even number of lookups per block on the fast path', () => {
    const odd: Case = { M: 1, N: 32, K: 96, bits: 2, groupSize: 12, rowsPerTile: 16, table: 'i8', bias: false, perByte: 2 };
    expect(fastPathBlocker(lutMatMulParams(lutNode(odd)), 'i8')).toMatch(/odd with two indices per byte/);
    expect(fastPathBlocker(lutMatMulParams(lutNode(packed[0])), 'i8')).toBeUndefined();
  });

  it('an odd number of lookups per block falls back to the generic kernel, still exact', async () => {
    const odd: Case = { M: 2, N: 32, K: 96, bits: 3, groupSize: 12, rowsPerTile: 16, table: 'i8', bias: true, perByte: 2 };
    const { got, want } = await runLut(odd, 5, { blockSums: true });
    expect(got).toEqual(want);
  });

  for (const c of packed) {
    for (const generic of [false, true]) {
      it(`integer block sums are bit-exact (${label(c)}${generic ? ', generic' : ''})`, async () => {
        const { got, want } = await runLut(c, 7, { blockSums: true, generic });
        expect(got).toEqual(want);
      });
    }
    it(`output bits equal one index per byte's (${label(c)})`, async () => {
      const two = await runLut(c, 11, {});
      const one = await runLut({ ...c, perByte: 1 }, 11, {});
      expect(two.want).toEqual(one.want);
      expect(two.got).toEqual(one.got);
    });
  }

  for (const [subtiles, unroll, accumulate, kBlock] of [[2, 2, 'widen', 0], [4, 4, 'widen', 0], [2, 2, 'pairwise', 0], [1, 1, 'shift', 0], [2, 4, 'shift', 0],
    [1, 1, 'widen', 128], [2, 1, 'shift', 192]] as const) {
    const c: Case = { M: 2, N: 64, K: 512, bits: 3, groupSize: 64, rowsPerTile: 16, table: 'i8', bias: true, tiled: true, perByte: 2 };
    it(`fast path with subtiles ${subtiles}, unroll ${unroll}, ${accumulate}, K block ${kBlock} (${label(c)})`, async () => {
      const sums = await runLut(c, 3, { blockSums: true, subtiles, unroll, accumulate, kBlock });
      expect(sums.got).toEqual(sums.want);
      const { got } = await runLut(c, 3, { subtiles, unroll, accumulate, kBlock });
      const one = await runLut({ ...c, perByte: 1 }, 3, { subtiles, unroll, accumulate, kBlock });
      expect(got).toEqual(one.got);
    });
  }
});

describe('wasm LutPrecompute', () => {
  for (const [table, M, K, groupSize] of [['i8', 3, 256, 64], ['f32', 2, 128, 32], ['i8', 1, 64, 8]] as const) {
    it(`matches the reference bit for bit (${table} M${M} K${K} gs${groupSize})`, async () => {
      const r = seededRandom(5);
      const a = new Float32Array(M * K).map(() => (r() - 0.5) * 8);
      a[3] = 0; // a zero activation
      const node: Node = { name: 'pre', domain: 'llmcc', op: 'LutPrecompute', inputs: ['a'], outputs: ['t', 's', 'u'], attributes: attrs({ g: 4, group_size: groupSize, table }) };
      const ctx = context(node, [tt('f32', [M, K])], [tt(table, [M, K / 4, 8]), tt('f32', [M, K / groupSize]), tt('f32', [M, K / groupSize])]);
      const runner = await KernelRunner.create([buildLutPrecompute(ctx)]);
      const aOff = runner.put(a);
      const tOff = runner.alloc(M * K * 2 * (table === 'f32' ? 4 : 1));
      const sOff = runner.alloc(M * K / groupSize * 4);
      const uOff = runner.alloc(M * K / groupSize * 4);
      runner.call('pre', aOff, tOff, sOff, uOff, M);
      const want = precomputeTables(a, M, K, 4, groupSize, table);
      const tables = table === 'i8' ? runner.i8(tOff, M * K * 2) : runner.f32(tOff, M * K * 2);
      expect(Array.from(tables).map((x) => x + 0)).toEqual(Array.from(want.tables).map((x) => x + 0));
      expect(Array.from(runner.f32(sOff, M * K / groupSize))).toEqual(Array.from(want.tableScales));
      expect(Array.from(runner.f32(uOff, M * K / groupSize))).toEqual(Array.from(want.actSums));
    });
  }
});

describe('wasm NormLutPrecompute', () => {
  for (const norm of ['rms', 'layer'] as const) {
    it(`${norm} norm with skip: y, skip_sum and tables match the reference (f32 statistics)`, async () => {
      const M = 3, H = 128, groupSize = 32;
      const r = seededRandom(9);
      const x = new Float32Array(M * H).map(() => (r() - 0.5) * 4);
      const skip = new Float32Array(H).map(() => r() - 0.5);
      const gamma = new Float32Array(H).map(() => 0.5 + r());
      const beta = new Float32Array(H).map(() => r() - 0.5);
      const node: Node = {
        name: 'nlp', domain: 'llmcc', op: 'NormLutPrecompute',
        inputs: norm === 'layer' ? ['x', 'g', 'b', 's'] : ['x', 'g', '', 's'], outputs: ['y', 't', 'ts', 'as', 'sum'],
        attributes: new Map<string, Attribute>([...attrs({ norm, g: 4, group_size: groupSize, table: 'i8' }), ['epsilon', { kind: 'float', value: 1e-5 }]]),
      };
      const ctx = context(node, [tt('f32', [M, H]), tt('f32', [H]), norm === 'layer' ? tt('f32', [H]) : undefined, tt('f32', [1, H])],
        [tt('f32', [M, H]), tt('i8', [M, H / 4, 8]), tt('f32', [M, H / groupSize]), tt('f32', [M, H / groupSize]), tt('f32', [M, H])]);
      const { buildNormLutPrecompute } = await import('../targets/wasm/kernels/lut/NormLutPrecompute.js');
      const runner = await KernelRunner.create([buildNormLutPrecompute(ctx)]);
      const ins = [x, gamma, ...(norm === 'layer' ? [beta] : []), skip].map((t) => runner.put(t));
      const yOff = runner.alloc(M * H * 4), tOff = runner.alloc(M * H * 2), sOff = runner.alloc(M * H / groupSize * 4);
      const uOff = runner.alloc(M * H / groupSize * 4), sumOff = runner.alloc(M * H * 4);
      runner.call('nlp', ...ins, yOff, tOff, sOff, uOff, sumOff, M, 1);
      // Reference in f64 (as the interpreter), rounded to f32 once.
      const want = new Float32Array(M * H);
      const sums = new Float32Array(M * H);
      for (let m = 0; m < M; m++) {
        const v = Array.from({ length: H }, (_, h) => x[m * H + h] + skip[h]);
        v.forEach((value, h) => { sums[m * H + h] = value; });
        const mean = norm === 'layer' ? v.reduce((a, b) => a + b, 0) / H : 0;
        const denom = Math.sqrt(v.reduce((a, b) => a + (b - mean) ** 2, 0) / H + 1e-5);
        v.forEach((value, h) => { want[m * H + h] = ((value - mean) / denom) * gamma[h] + (norm === 'layer' ? beta[h] : 0); });
      }
      const y = runner.f32(yOff, M * H);
      for (let i = 0; i < M * H; i++) expect(Math.abs(y[i] - want[i])).toBeLessThanOrEqual(1e-5 * (1 + Math.abs(want[i])));
      expect(Array.from(runner.f32(sumOff, M * H))).toEqual(Array.from(sums));
      // Tables from the kernel's own y are the LutPrecompute tables bit for bit.
      const pre = precomputeTables(y, M, H, 4, groupSize, 'i8');
      expect(Array.from(runner.i8(tOff, M * H * 2))).toEqual(Array.from(pre.tables));
      expect(Array.from(runner.f32(sOff, M * H / groupSize))).toEqual(Array.from(pre.tableScales));
    });
  }
});
