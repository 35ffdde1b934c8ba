import { describe, expect, it } from 'vitest';
import type { Attribute, Node, TensorType } from '../ir/graph.js';
import type { DType } from '../ir/dtype.js';
import { Tensor } from '../ir/tensor.js';
import { defaultZeroPoint } from '../ir/ops/llmcc/QuantMatMul.js';
import type { KernelBuildContext } from '../targets/wasm/kernel-def.js';
import { KernelRunner } from '../src/bench/kernel-runner.js';
import { buildSparseLutMatMul, sparseFastPathBlocker } from '../targets/wasm/kernels/sparse/SparseLutMatMul.js';
import { buildSparseLutPrecompute } from '../targets/wasm/kernels/sparse/SparseLutPrecompute.js';
import { sparseLutMatMulAttrs } from '../ir/ops/llmcc/SparseLutMatMul.js';
import { Attrs } from '../ir/ops/attrs.js';
import {
  choices, precomputeSparseTables, relayoutSparseWeights, sparseLutBlockSums, sparseLutMatMul, sparseTableLayout,
} from '../passes/sparsity/lut.js';
import type { NMPattern } from '../passes/sparsity/pattern.js';
import { dequantizeSparse, quantizeSparse } from '../passes/sparsity/quantize.js';
import { rng, node, model, run } from './helpers/lut-graph.js';
import { runSparseBench } from '../src/bench/sparse.js';

/**
 * Sparse + LUT: the table layout, the reference math against the dense product of the same
 * sparse weights, and the wasm kernels against the reference (precompute bit for bit, matmul
 * integer block sums bit for bit, outputs within f32 rounding).
 */

const label = (p: NMPattern): string => `${p.n}:${p.m}`;

function gaussian(count: number, seed: number): Float32Array {
  const r = rng(seed);
  return new Float32Array(count).map(() => Math.sqrt(-2 * Math.log(Math.max(r(), 1e-12))) * Math.cos(2 * Math.PI * r()));
}

interface Case { p: NMPattern; M: number; N: number; K: number; bits: 1 | 2 | 3 | 4; groupSize: number; symmetric: boolean; rowsPerTile: number; bias: boolean; ternary?: boolean }

function makeCase(c: Case, seed: number, table: 'i8' | 'f32') {
  const w = quantizeSparse(gaussian(c.N * c.K, seed), c.N, c.K, c.p, {
    kind: 'quant', bits: c.bits, ternary: c.ternary ?? false, groupSize: c.groupSize, symmetric: c.symmetric, scaleDtype: 'f32',
  });
  const relaid = relayoutSparseWeights({
    values: w.values.codes, positions: w.positions, scales: w.values.scales, zeroPoints: w.values.zeroPoints,
    bits: c.bits, zeroPoint: defaultZeroPoint(c.bits, c.ternary ?? false), N: c.N, K: c.K, groupSize: c.groupSize, pattern: c.p,
  }, c.rowsPerTile);
  const a = gaussian(c.M * c.K, seed + 1);
  const pre = precomputeSparseTables(a, c.M, c.K, c.p, c.groupSize, table);
  const bias = c.bias ? gaussian(c.N, seed + 2) : undefined;
  const args = {
    tables: pre.tables, tableScales: pre.tableScales, planes: relaid.planes, scales: relaid.scales, offsets: relaid.offsets, bias,
    M: c.M, N: c.N, K: c.K, bits: c.bits, pattern: c.p, groupSize: c.groupSize, rowsPerTile: c.rowsPerTile,
  };
  return { w, relaid, a, pre, bias, args };
}

describe('sparse table layout', () => {
  it('2:4 has 6 choices × 2 stored entries in 16 slots; 1:4 4 in 4; 2:8 56 in 64', () => {
    expect(choices({ n: 2, m: 4 })).toEqual([[0, 1], [0, 2], [0, 3], [1, 2], [1, 3], [2, 3]]);
    expect(sparseTableLayout({ n: 2, m: 4 })).toMatchObject({ half: 2, entries: 12, slots: 16 });
    expect(sparseTableLayout({ n: 1, m: 4 })).toMatchObject({ half: 1, entries: 4, slots: 4 });
    expect(sparseTableLayout({ n: 2, m: 8 })).toMatchObject({ half: 2, entries: 56, slots: 64 });
  });
});

const refCases: Case[] = [
  { p: { n: 2, m: 4 }, M: 2, N: 8, K: 64, bits: 4, groupSize: 32, symmetric: true, rowsPerTile: 1, bias: true },
  { p: { n: 2, m: 4 }, M: 1, N: 8, K: 64, bits: 2, groupSize: 16, symmetric: true, rowsPerTile: 4, bias: false },
  { p: { n: 1, m: 4 }, M: 2, N: 4, K: 64, bits: 3, groupSize: 32, symmetric: false, rowsPerTile: 1, bias: false },
  { p: { n: 2, m: 8 }, M: 1, N: 4, K: 128, bits: 1, groupSize: 64, symmetric: true, rowsPerTile: 2, bias: true },
  { p: { n: 2, m: 4 }, M: 1, N: 4, K: 64, bits: 2, groupSize: 32, symmetric: true, rowsPerTile: 1, bias: false, ternary: true },
];

describe('sparse LUT reference', () => {
  for (const c of refCases) {
    it(`${label(c.p)} ${c.ternary ? 'ternary' : `${c.bits}-bit`} ${c.symmetric ? 'sym' : 'asym'}: f32 tables reproduce the dense product of the sparse weight`, () => {
      const { w, a, bias, args } = makeCase(c, 3, 'f32');
      const dense = dequantizeSparse(w);
      const y = sparseLutMatMul(args);
      for (let m = 0; m < c.M; m++) {
        for (let n = 0; n < c.N; n++) {
          let want = bias ? bias[n] : 0;
          let magnitude = 0;
          for (let k = 0; k < c.K; k++) {
            want += a[m * c.K + k] * dense[n * c.K + k];
            magnitude += Math.abs(a[m * c.K + k] * dense[n * c.K + k]);
          }
          expect(Math.abs(y[m * c.N + n] - want)).toBeLessThanOrEqual(1e-5 * magnitude + 1e-6);
        }
      }
    });
  }

  it('i8 tables stay close, and the op evaluates through the interpreter', () => {
    const c = refCases[0];
    const { relaid, a, pre, bias } = makeCase(c, 5, 'i8');
    const { args: exact } = makeCase(c, 5, 'f32');
    const m = model({
      inputs: [{ name: 'a', dtype: 'f32', shape: [c.M, c.K] }], outputs: [{ name: 'y', dtype: 'f32' }],
      nodes: [
        node('SparseLutPrecompute', ['a'], ['t', 'ts'], { sparsity_n: 2, sparsity_m: 4, group_size: c.groupSize, table: 'i8' }),
        node('SparseLutMatMul', ['t', 'ts', 'planes', 'scales', 'offsets', 'bias'], ['y'], {
          bits: c.bits, sparsity_n: 2, sparsity_m: 4, group_size: c.groupSize, K: c.K, N: c.N, rows_per_tile: c.rowsPerTile,
        }),
      ],
      weights: {
        planes: new Tensor('u8', [c.bits, c.N, c.K / 4], relaid.planes),
        scales: new Tensor('f32', [c.N, c.K / c.groupSize], relaid.scales),
        offsets: new Tensor('f32', [c.N, c.K / c.groupSize], relaid.offsets!),
        bias: new Tensor('f32', [c.N], bias!),
      },
    });
    const y = run(m, { a: new Tensor('f32', [c.M, c.K], a) }).get('y')!.numbers();
    expect(Array.from(pre.tables).every((v) => Math.abs(v) <= 127)).toBe(true);
    const want = sparseLutMatMul(exact);
    const scale = Math.max(...Array.from(want, Math.abs));
    for (let i = 0; i < want.length; i++) expect(Math.abs(y[i] - want[i])).toBeLessThan(0.05 * scale);
  });
});

function ctx(n: Node, inputs: (TensorType | undefined)[], outputs: TensorType[]): KernelBuildContext {
  return { node: n, inputs, outputs, constant: () => undefined, name: n.name };
}
const tt = (dtype: DType, shape: number[]): TensorType => ({ dtype, shape });
function attrs(values: Record<string, number | string>): Map<string, Attribute> {
  return new Map(Object.entries(values).map(([k, v]) => [k, typeof v === 'number' ? { kind: 'int', value: v } : { kind: 'string', value: v }] as [string, Attribute]));
}

describe('wasm SparseLutPrecompute', () => {
  for (const [p, table] of [[{ n: 2, m: 4 }, 'i8'], [{ n: 1, m: 4 }, 'i8'], [{ n: 2, m: 8 }, 'i8'], [{ n: 2, m: 4 }, 'f32']] as const) {
    it(`${label(p)} ${table}: tables and scales match the reference bit for bit`, async () => {
      const M = 2, K = 128, groupSize = 32;
      const a = gaussian(M * K, 17);
      a[5] = 0;
      const slots = sparseTableLayout(p).slots;
      const n: Node = { name: 'pre', domain: 'llmcc', op: 'SparseLutPrecompute', inputs: ['a'], outputs: ['t', 's'], attributes: attrs({ sparsity_n: p.n, sparsity_m: p.m, group_size: groupSize, table }) };
      const runner = await KernelRunner.create([buildSparseLutPrecompute(ctx(n, [tt('f32', [M, K])], [tt(table, [M, K / p.m, slots]), tt('f32', [M, K / groupSize])]))]);
      const count = M * (K / p.m) * slots;
      const aOff = runner.put(a);
      const tOff = runner.alloc(count * (table === 'f32' ? 4 : 1));
      const sOff = runner.alloc(M * (K / groupSize) * 4);
      runner.call('pre', aOff, tOff, sOff, M);
      const want = precomputeSparseTables(a, M, K, p, groupSize, table);
      const got = table === 'i8' ? runner.i8(tOff, count) : runner.f32(tOff, count);
      expect(Array.from(got).map((x) => x + 0)).toEqual(Array.from(want.tables).map((x) => x + 0));
      expect(Array.from(runner.f32(sOff, M * (K / groupSize)))).toEqual(Array.from(want.tableScales));
    });
  }
});

const kernelCases: Case[] = [
  { p: { n: 2, m: 4 }, M: 1, N: 32, K: 256, bits: 2, groupSize: 64, symmetric: true, rowsPerTile: 16, bias: false },
  { p: { n: 2, m: 4 }, M: 2, N: 16, K: 128, bits: 4, groupSize: 32, symmetric: true, rowsPerTile: 16, bias: true },
  { p: { n: 2, m: 4 }, M: 1, N: 16, K: 256, bits: 3, groupSize: 128, symmetric: false, rowsPerTile: 16, bias: false },
  { p: { n: 2, m: 4 }, M: 1, N: 16, K: 2048, bits: 4, groupSize: 1024, symmetric: true, rowsPerTile: 16, bias: false },
  { p: { n: 2, m: 4 }, M: 2, N: 16, K: 64, bits: 1, groupSize: 32, symmetric: true, rowsPerTile: 16, bias: true },
  { p: { n: 2, m: 4 }, M: 1, N: 32, K: 128, bits: 2, groupSize: 64, symmetric: true, rowsPerTile: 16, bias: false, ternary: true },
  { p: { n: 1, m: 4 }, M: 2, N: 8, K: 64, bits: 3, groupSize: 32, symmetric: false, rowsPerTile: 4, bias: true },
  { p: { n: 1, m: 4 }, M: 2, N: 32, K: 256, bits: 4, groupSize: 64, symmetric: true, rowsPerTile: 16, bias: true },
  { p: { n: 1, m: 4 }, M: 1, N: 16, K: 128, bits: 2, groupSize: 32, symmetric: false, rowsPerTile: 16, bias: false },
  { p: { n: 2, m: 8 }, M: 1, N: 4, K: 128, bits: 2, groupSize: 64, symmetric: true, rowsPerTile: 1, bias: false },
];

async function runKernel(c: Case, seed: number, options: { blockSums?: boolean; generic?: boolean }, table: 'i8' | 'f32' = 'i8') {
  const { relaid, pre, bias, args } = makeCase(c, seed, table);
  const groups = c.K / c.p.m, blocks = c.K / c.groupSize, slots = sparseTableLayout(c.p).slots;
  const n: Node = {
    name: 'sl', domain: 'llmcc', op: 'SparseLutMatMul',
    inputs: ['t', 'ts', 'p', 's', relaid.offsets ? 'o' : '', ...(bias ? ['b'] : [])], outputs: ['y'],
    attributes: attrs({ bits: c.bits, sparsity_n: c.p.n, sparsity_m: c.p.m, group_size: c.groupSize, K: c.K, N: c.N, rows_per_tile: c.rowsPerTile }),
  };
  const kernel = buildSparseLutMatMul(ctx(n, [
    tt(table, [c.M, groups, slots]), tt('f32', [c.M, blocks]), tt('u8', [c.bits, c.N, groups]), tt('f32', [c.N, blocks]),
    relaid.offsets ? tt('f32', [c.N, blocks]) : undefined, bias ? tt('f32', [c.N]) : undefined,
  ], [tt('f32', [c.M, c.N])]), options);
  const runner = await KernelRunner.create([kernel]);
  const inputs = [pre.tables, pre.tableScales, relaid.planes, relaid.scales, ...(relaid.offsets ? [relaid.offsets] : []), ...(bias ? [bias] : [])];
  const offsets = inputs.map((x) => runner.put(x));
  const outCount = options.blockSums ? c.M * c.N * blocks * 2 : c.M * c.N;
  const y = runner.alloc(outCount * 4);
  runner.call('sl', ...offsets, y, c.M);
  return options.blockSums
    ? { got: Array.from(runner.i32(y, outCount)), want: Array.from(sparseLutBlockSums(args)) }
    : { got: Array.from(runner.f32(y, outCount)), want: Array.from(sparseLutMatMul(args)) };
}

describe('wasm SparseLutMatMul', () => {
  it('takes the fast path for 2:4 and 1:4 with 16-row tiles only', () => {
    const p = (c: Case) => sparseLutMatMulAttrs(new Attrs({ name: 'x', domain: 'llmcc', op: 'SparseLutMatMul', inputs: [], outputs: [], attributes: attrs({ bits: c.bits, sparsity_n: c.p.n, sparsity_m: c.p.m, group_size: c.groupSize, K: c.K, N: c.N, rows_per_tile: c.rowsPerTile }) }));
    expect(sparseFastPathBlocker(p(kernelCases[0]), 'i8')).toBeUndefined();
    expect(sparseFastPathBlocker(p(kernelCases.find((c) => c.p.m === 8)!), 'i8')).toMatch(/sparsity 2:8/);
    expect(sparseFastPathBlocker(p(kernelCases.find((c) => c.p.n === 1 && c.rowsPerTile === 16)!), 'i8')).toBeUndefined();
    expect(sparseFastPathBlocker(p(kernelCases.find((c) => c.p.n === 1 && c.rowsPerTile === 4)!), 'i8')).toMatch(/rows_per_tile/);
    expect(sparseFastPathBlocker(p(kernelCases[0]), 'f32')).toMatch(/f32/);
  });

  kernelCases.forEach((c, i) => {
    const name = `${label(c.p)} ${c.ternary ? 'ternary' : `${c.bits}-bit`} ${c.symmetric ? 'sym' : 'asym'} N${c.N} K${c.K} gs${c.groupSize} R${c.rowsPerTile}${c.bias ? ' bias' : ''}`;
    const variants = c.rowsPerTile === 16 && c.p.m === 4 ? [false, true] : [true];
    for (const generic of variants) {
      it(`integer block sums (I, J) are bit-exact: ${name}${generic ? ' (generic)' : ''}`, async () => {
        const { got, want } = await runKernel(c, 20 + i, { blockSums: true, generic });
        expect(got).toEqual(want);
      });
    }
    for (const table of ['i8', 'f32'] as const) {
      it(`output matches the reference within f32 rounding (${table} tables): ${name}`, async () => {
        const { got, want } = await runKernel(c, 40 + i, {}, table);
        const scale = Math.max(...want.map(Math.abs));
        for (let k = 0; k < want.length; k++) expect(Math.abs(got[k] - want[k])).toBeLessThanOrEqual(2e-5 * scale + 1e-6);
      });
    }
  });
});

describe('bench gemv --sparsity (smoke, tiny shape: not a timing)', () => {
  it('reports the achieved sparsity and a dense/sparse pair per kernel and bits', async () => {
    const lines: string[] = [];
    const report = await runSparseBench({ pattern: { n: 2, m: 4 }, K: 256, N: 32, M: 1, bits: [2, 4], groupSize: 64, budgetMs: 2, minRuns: 2, log: (l) => lines.push(l) });
    expect(report.achieved_sparsity).toBe(0.5);
    expect(report.rows.map((r) => `${r.bits} ${r.kernel}`)).toEqual(['2 lut', '2 dequant', '2 gather-lut-bound', '4 lut', '4 dequant', '4 gather-lut-bound']);
    for (const r of report.rows) expect(r.dense_ms > 0 && r.sparse_ms > 0 && r.sparse_bytes < r.dense_bytes + 1).toBe(true);
    expect(lines.some((l) => /achieved sparsity: 50\.00% zeros/.test(l))).toBe(true);
  });
});
