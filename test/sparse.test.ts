import { describe, expect, it } from 'vitest';
import type { Model } from '../ir/graph.js';
import { Tensor } from '../ir/tensor.js';
import { parseModel } from '../ir/text/parse.js';
import { printModel } from '../ir/text/print.js';
import { compareTensors } from '../src/compare.js';
import { sessionFromCompiled } from '../src/runtime/index.js';
import { getBackend } from '../targets/registry.js';
import { compileWasm } from '../targets/wasm/compile.js';
import { indexBytesPerRow, packIndices, unpackIndices } from '../passes/sparsity/pack.js';
import { keptPerRow, parsePattern, type NMPattern } from '../passes/sparsity/pattern.js';
import { gatherKept, satisfiesPattern, scatterKept, selectKept } from '../passes/sparsity/prune.js';
import { dequantizeSparse, quantizeSparse } from '../passes/sparsity/quantize.js';
import { sparsifyPass } from '../passes/sparsity/sparsify.js';
import { runLoweringPipeline } from '../passes/pipeline.js';
import { model, node, rng, run } from './helpers/lut-graph.js';

/**
 * N:M sparsity: pruning (exact pattern, largest magnitudes kept), detection of an existing
 * pattern, index packing, the reference llmcc.SparseQuantMatMul against the dense product of
 * the same weights, the sparsify pass, and the wasm kernel against the reference.
 */

const PATTERNS: NMPattern[] = [{ n: 2, m: 4 }, { n: 1, m: 4 }, { n: 2, m: 8 }];
const label = (p: NMPattern): string => `${p.n}:${p.m}`;

function gaussianRows(N: number, K: number, seed: number): Float32Array {
  const r = rng(seed);
  return new Float32Array(N * K).map(() => {
    const u = Math.max(r(), 1e-12);
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * r());
  });
}

const scheme4 = { kind: 'quant' as const, bits: 4 as const, ternary: false, groupSize: 32, symmetric: true, scaleDtype: 'f32' as const };

describe('N:M pattern parsing', () => {
  it('accepts 2:4, 1:4 and 2:8 and refuses others', () => {
    expect(parsePattern('2:4')).toEqual({ n: 2, m: 4 });
    expect(parsePattern('1:4')).toEqual({ n: 1, m: 4 });
    expect(parsePattern('2:8')).toEqual({ n: 2, m: 8 });
    expect(() => parsePattern('3:4')).toThrow(/--sparsity must be one of/);
    expect(() => parsePattern('2-4')).toThrow(/--sparsity/);
  });
});

describe('magnitude pruning', () => {
  for (const p of PATTERNS) {
    it(`${label(p)}: exactly N ascending positions per group, the largest magnitudes kept`, () => {
      const N = 6, K = 64;
      const rows = gaussianRows(N, K, 3);
      const kept = selectKept(rows, N, K, p);
      expect(kept.positions.length).toBe(keptPerRow(K, p) * N);
      expect(kept.detected).toBe(false);
      for (let row = 0; row < N; row++) {
        for (let group = 0; group < K / p.m; group++) {
          const at = row * keptPerRow(K, p) + group * p.n;
          const chosen = Array.from(kept.positions.subarray(at, at + p.n));
          for (let i = 1; i < chosen.length; i++) expect(chosen[i]).toBeGreaterThan(chosen[i - 1]);
          const base = row * K + group * p.m;
          const smallestKept = Math.min(...chosen.map((t) => Math.abs(rows[base + t])));
          for (let t = 0; t < p.m; t++) {
            if (!chosen.includes(t)) expect(Math.abs(rows[base + t])).toBeLessThanOrEqual(smallestKept);
          }
        }
      }
      const pruned = scatterKept(gatherKept(rows, kept.positions, N, K, p), kept.positions, N, K, p);
      expect(satisfiesPattern(pruned, N, K, p)).toBe(true);
      expect(satisfiesPattern(rows, N, K, p)).toBe(false);
    });

    it(`${label(p)}: a weight that already has the pattern is detected and kept exactly`, () => {
      const N = 4, K = 32;
      const dense = gaussianRows(N, K, 5);
      const first = selectKept(dense, N, K, p);
      const already = scatterKept(gatherKept(dense, first.positions, N, K, p), first.positions, N, K, p);
      // One group with fewer than N nonzeros still counts as having the pattern.
      already.fill(0, 0, p.m);
      const again = selectKept(already, N, K, p);
      expect(again.detected).toBe(true);
      expect(again.nonzeroAfter).toBe(again.nonzeroBefore);
      expect(Array.from(scatterKept(gatherKept(already, again.positions, N, K, p), again.positions, N, K, p))).toEqual(Array.from(already));
    });
  }
});

describe('pruning ties', () => {
  it('equal magnitudes keep the lower k', () => {
    const kept = selectKept(Float32Array.from([1, -1, 1, 0, 0, 0, 0, 0]), 1, 8, { n: 2, m: 4 });
    expect(Array.from(kept.positions)).toEqual([0, 1, 0, 1]);
    expect(kept.detected).toBe(false);
  });
});

describe('index packing', () => {
  for (const p of PATTERNS) {
    it(`${label(p)}: log2(M) bits per kept weight, round-trips`, () => {
      const N = 3, K = 40 * p.m;
      const kept = selectKept(gaussianRows(N, K, 9), N, K, p);
      const packed = packIndices(kept.positions, N, K, p);
      expect(packed.length).toBe(N * Math.ceil((keptPerRow(K, p) * Math.log2(p.m)) / 8));
      expect(indexBytesPerRow(K, p)).toBe(packed.length / N);
      expect(Array.from(unpackIndices(packed, N, K, p))).toEqual(Array.from(kept.positions));
    });
  }
  it('refuses positions that are not strictly ascending in a group', () => {
    const p = { n: 2, m: 4 };
    const packed = packIndices(Uint8Array.from([3, 1, 0, 2]), 1, 8, p);
    expect(() => unpackIndices(packed, 1, 8, p)).toThrow(/strictly ascending/);
  });
});

function sparseNode(p: NMPattern, K: number, N: number, groupSize: number, bits: number, extra: { zp?: boolean; bias?: boolean } = {}) {
  const inputs = ['a', 'values', 'indices', 'scales', extra.zp ? 'zp' : '', ...(extra.bias ? ['bias'] : [])];
  while (inputs[inputs.length - 1] === '') inputs.pop();
  return node('SparseQuantMatMul', inputs, ['y'], { bits, ternary: 0, group_size: groupSize, K, N, sparsity_n: p.n, sparsity_m: p.m });
}

describe('llmcc.SparseQuantMatMul (reference)', () => {
  for (const p of PATTERNS) {
    it(`${label(p)}: equals the dense product of the pruned, dequantized weight`, () => {
      const M = 2, N = 5, K = 64;
      const w = quantizeSparse(gaussianRows(N, K, 11), N, K, p, scheme4);
      const dense = dequantizeSparse(w);
      expect(satisfiesPattern(dense, N, K, p)).toBe(true);
      const r = rng(12);
      const a = new Float32Array(M * K).map(() => r() * 2 - 1);
      const m = model({
        inputs: [{ name: 'a', dtype: 'f32', shape: [M, K] }], outputs: [{ name: 'y', dtype: 'f32' }],
        nodes: [sparseNode(p, K, N, 32, 4)],
        weights: {
          values: new Tensor('u8', [N, keptPerRow(K, p)], w.values.codes),
          indices: new Tensor('u8', [N, indexBytesPerRow(K, p)], w.indices),
          scales: new Tensor('f32', [N, K / 32], w.values.scales),
        },
      });
      const y = run(m, { a: new Tensor('f32', [M, K], a) }).get('y')!.numbers();
      for (let row = 0; row < M; row++) {
        for (let n = 0; n < N; n++) {
          let acc = 0;
          for (let k = 0; k < K; k++) acc += a[row * K + k] * dense[n * K + k];
          expect(y[row * N + n]).toBe(Math.fround(acc));
        }
      }
    });
  }
});

describe('IR text', () => {
  it('round-trips the sparsity of a quantized value', () => {
    const m = model({
      inputs: [{ name: 'a', dtype: 'f32', shape: [1, 8] }], outputs: [{ name: 'y', dtype: 'f32' }],
      nodes: [node('Relu', ['a'], ['y'], {}, '')],
    });
    m.graph.valueInfo.set('v', { dtype: 'u8', shape: [4, 4], quant: { bits: 4, ternary: false, groupSize: 32, symmetric: true, scaleDtype: 'f32', layout: { kind: 'codes-nk' }, sparsity: { n: 2, m: 4 } } });
    const text = printModel(m);
    expect(text).toContain('sparsity=2:4');
    expect(parseModel(text).graph.valueInfo.get('v')?.quant?.sparsity).toEqual({ n: 2, m: 4 });
  });
});

/** y = a @ W1 then Relu then @ W2 (W2 is [K, N] as a MatMul weight). */
function twoLayerModel(K: number, H: number, N: number, seed: number, weights?: { w1: Float32Array; w2: Float32Array }): Model {
  const w1 = weights?.w1 ?? gaussianRows(K, H, seed);
  const w2 = weights?.w2 ?? gaussianRows(H, N, seed + 1);
  return model({
    inputs: [{ name: 'a', dtype: 'f32', shape: [2, K] }], outputs: [{ name: 'y', dtype: 'f32' }],
    nodes: [node('MatMul', ['a', 'w1'], ['h'], {}, ''), node('Relu', ['h'], ['r'], {}, ''), node('MatMul', ['r', 'w2'], ['y'], {}, '')],
    weights: { w1: new Tensor('f32', [K, H], w1), w2: new Tensor('f32', [H, N], w2) },
  });
}

describe('sparsify pass', () => {
  const quantize = { bits: 4 as const, groupSize: 32, symmetric: true, ternary: false, keep: [] };

  it('rewrites both MatMuls, reports 50% zeros for 2:4 and matches the pruned float model', () => {
    const m = twoLayerModel(64, 32, 16, 21);
    const result = sparsifyPass.run(m, { pattern: { n: 2, m: 4 }, quantize });
    expect(result.stats.layers_sparse).toBe(2);
    expect(result.stats.layers_pruned).toBe(2);
    expect(result.stats.sparsity_permille).toBe(500);
    expect(m.graph.nodes.filter((n) => n.op === 'SparseQuantMatMul')).toHaveLength(2);
    const values = m.graph.nodes[0].inputs[1];
    expect(m.graph.valueInfo.get(values)?.quant?.sparsity).toEqual({ n: 2, m: 4 });
    const r = rng(4);
    const a = new Tensor('f32', [2, 64], new Float32Array(128).map(() => r() * 2 - 1));
    const y = run(m, { a }).get('y')!;
    expect(y.shape).toEqual([2, 16]);
    expect(y.numbers().every(Number.isFinite)).toBe(true);
  });

  it('keeps a model that is already 2:4 exactly (detected) and stays close to it at 4 bits', () => {
    const K = 64, H = 32, N = 16;
    // Pre-prune both weights to 2:4 along K (MatMul weights are [K, N]: K runs down a column).
    const prune = (w: Float32Array, k: number, n: number): Float32Array => {
      const rows = new Float32Array(n * k);
      for (let i = 0; i < k; i++) for (let j = 0; j < n; j++) rows[j * k + i] = w[i * n + j];
      const kept = selectKept(rows, n, k, { n: 2, m: 4 });
      const pruned = scatterKept(gatherKept(rows, kept.positions, n, k, { n: 2, m: 4 }), kept.positions, n, k, { n: 2, m: 4 });
      const out = new Float32Array(k * n);
      for (let i = 0; i < k; i++) for (let j = 0; j < n; j++) out[i * n + j] = pruned[j * k + i];
      return out;
    };
    const weights = { w1: prune(gaussianRows(K, H, 31), K, H), w2: prune(gaussianRows(H, N, 32), H, N) };
    const reference = twoLayerModel(K, H, N, 0, weights);
    const sparse = twoLayerModel(K, H, N, 0, weights);
    const result = sparsifyPass.run(sparse, { pattern: { n: 2, m: 4 }, quantize: { ...quantize, bits: 8 as const } });
    // 8-bit layers stay dense (no LUT path): nothing rewritten.
    expect(result.stats.layers_left_dense).toBe(2);
    const result4 = sparsifyPass.run(sparse, { pattern: { n: 2, m: 4 }, quantize });
    expect(result4.stats.layers_detected).toBe(2);
    expect(result4.stats.weights_kept).toBe(result4.stats.weights_nonzero_before);
    const r = rng(6);
    const a = new Tensor('f32', [2, K], new Float32Array(2 * K).map(() => r() * 2 - 1));
    const want = run(reference, { a }).get('y')!;
    const got = run(sparse, { a }).get('y')!;
    expect(compareTensors(got, want, { atol: 1, rtol: 0 }).cosine).toBeGreaterThan(0.99);
  });

  it('the pipeline refuses --sparsity without --bits', () => {
    expect(() => runLoweringPipeline(twoLayerModel(64, 32, 16, 1), { sparsity: { n: 2, m: 4 }, lut: {} })).toThrow(/--sparsity needs --bits/);
  });
});

describe('wasm SparseQuantMatMul', () => {
  const cases = [
    { p: { n: 2, m: 4 }, K: 64, group: 32, zp: false, bias: false, bits: 4 },
    { p: { n: 1, m: 4 }, K: 64, group: 16, zp: true, bias: true, bits: 2 },
    { p: { n: 2, m: 8 }, K: 128, group: 64, zp: true, bias: false, bits: 3 },
    // 2 kept weights per quant group: positions read one field at a time (not 4 per byte).
    { p: { n: 2, m: 4 }, K: 32, group: 4, zp: false, bias: true, bits: 4 },
  ];
  for (const c of cases) {
    it(`${label(c.p)} ${c.bits}-bit group ${c.group} zp=${c.zp} bias=${c.bias}: matches the reference within f32 accumulation`, async () => {
      const M = 3, N = 7;
      const w = quantizeSparse(gaussianRows(N, c.K, 41), N, c.K, c.p, { ...scheme4, bits: c.bits as 2 | 3 | 4, groupSize: c.group, symmetric: !c.zp });
      const r = rng(42);
      const weights: Record<string, Tensor> = {
        values: new Tensor('u8', [N, keptPerRow(c.K, c.p)], w.values.codes),
        indices: new Tensor('u8', [N, indexBytesPerRow(c.K, c.p)], w.indices),
        scales: new Tensor('f32', [N, c.K / c.group], w.values.scales),
      };
      if (c.zp) weights.zp = new Tensor('f32', [N, c.K / c.group], w.values.zeroPoints!);
      if (c.bias) weights.bias = new Tensor('f32', [N], new Float32Array(N).map(() => r() - 0.5));
      const m = model({
        inputs: [{ name: 'a', dtype: 'f32', shape: [M, c.K] }], outputs: [{ name: 'y', dtype: 'f32' }],
        nodes: [sparseNode(c.p, c.K, N, c.group, c.bits, c)], weights,
      });
      const feeds = new Map([['a', new Tensor('f32', [M, c.K], new Float32Array(M * c.K).map(() => r() * 4 - 2))]]);
      const want = (await (await getBackend('ref').prepare(m)).run(feeds)).get('y')!;
      const got = (await (await sessionFromCompiled(await compileWasm(m))).run(feeds)).get('y')!;
      const scale = want.numbers().reduce((x: number, v: number) => Math.max(x, Math.abs(v)), 0);
      const result = compareTensors(got, want, { atol: 1e-5 * scale, rtol: 0 });
      expect(result.ok, result.reason ?? `max abs ${result.maxAbs}`).toBe(true);
    });
  }
});
