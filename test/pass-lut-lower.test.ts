import { describe, expect, it } from 'vitest';
import type { DType } from '../ir/dtype.js';
import type { Model } from '../ir/graph.js';
import { Tensor } from '../ir/tensor.js';
import { LlmccError } from '../ir/errors.js';
import { lutLowerPass } from '../passes/lut-lower.js';
import { int8OutputErrorBound, precomputeTables } from '../passes/lut/tables.js';
import { maxRelativeError, model, node, quantWeights, randomTensor, rng, run, type QuantWeights } from './helpers/lut-graph.js';

interface Layer {
  name: string;
  input: string;
  bits: number;
  ternary?: boolean;
  asymmetric?: boolean;
  bias?: boolean;
  N: number;
  G: number;
}

const K = 32;

/** a → several QuantMatMuls (some sharing their activation), every output a graph output. */
function buildModel(layers: Layer[], seed: number, dtype: DType = 'f32', runtimeWeights = false): { m: Model; weights: Map<string, QuantWeights>; weightFeeds: Record<string, Tensor> } {
  const random = rng(seed);
  const weights = new Map<string, QuantWeights>();
  const tensors: Record<string, Tensor> = {};
  const nodes = layers.map((l) => {
    const q = quantWeights(random, l.N, K, l.bits, l.G, { ternary: l.ternary, asymmetric: l.asymmetric, bias: l.bias });
    weights.set(l.name, q);
    tensors[`${l.name}_codes`] = q.codes;
    tensors[`${l.name}_scales`] = q.scales;
    const inputs = [l.input, `${l.name}_codes`, `${l.name}_scales`];
    if (q.zeroPoints) tensors[`${l.name}_zp`] = q.zeroPoints;
    if (q.bias) tensors[`${l.name}_bias`] = q.bias;
    inputs.push(q.zeroPoints ? `${l.name}_zp` : '', q.bias ? `${l.name}_bias` : '');
    while (inputs[inputs.length - 1] === '') inputs.pop();
    return node('QuantMatMul', inputs, [l.name], { bits: l.bits, group_size: l.G, ternary: l.ternary ? 1 : 0, K, N: l.N }, 'llmcc', `mm_${l.name}`);
  });
  // Codes, scales and zero points as graph inputs (fed at run time) instead of initializers.
  const weightFeeds: Record<string, Tensor> = {};
  if (runtimeWeights) {
    for (const [name, tensor] of Object.entries(tensors)) {
      if (name.endsWith('_bias')) continue;
      weightFeeds[name] = tensor;
      delete tensors[name];
    }
  }
  const m = model({
    inputs: [
      { name: 'a', dtype, shape: [2, 3, K] }, { name: 'b', dtype, shape: [1, K] },
      ...Object.entries(weightFeeds).map(([name, t]) => ({ name, dtype: t.dtype, shape: [...t.shape] })),
    ],
    outputs: layers.map((l) => ({ name: l.name, dtype })),
    nodes,
    weights: tensors,
  });
  return { m, weights, weightFeeds };
}

const qkv: Layer[] = [
  { name: 'q', input: 'a', bits: 4, N: 8, G: 16, bias: true },
  { name: 'k', input: 'a', bits: 2, N: 4, G: 16, asymmetric: true },
  { name: 'v', input: 'a', bits: 2, ternary: true, N: 4, G: 16 },
  { name: 'o', input: 'b', bits: 1, N: 8, G: 8 },
  { name: 'up', input: 'b', bits: 3, N: 12, G: 32, asymmetric: true, bias: true },
  { name: 'w8', input: 'a', bits: 8, N: 4, G: 16 },
];

function feeds(seed: number, dtype: DType = 'f32'): Record<string, Tensor> {
  const random = rng(seed);
  return { a: randomTensor(dtype, [2, 3, K], random), b: randomTensor(dtype, [1, K], random) };
}

describe('lut-lower', () => {
  it('lowers 1-4 bit and ternary QuantMatMuls, keeps 8-bit, shares one precompute per activation and group', () => {
    const { m } = buildModel(qkv, 1);
    const result = lutLowerPass.run(m, { g: 4, table: 'f32' });
    expect(result.changed).toBe(true);
    expect(result.stats.lowered).toBe(5);
    expect(result.stats.kept8Bit).toBe(1);
    // a (group 16) shared by q, k, v; b with group 8 and group 32: three precomputes.
    expect(result.stats.precomputes).toBe(3);
    expect(result.stats.sharedTableConsumers).toBe(2);
    expect(result.stats.tableEntriesPerGroup).toBe(8);
    const ops = m.graph.nodes.map((n) => n.op);
    expect(ops.filter((o) => o === 'LutPrecompute').length).toBe(3);
    expect(ops.filter((o) => o === 'LutMatMul').length).toBe(5);
    expect(ops.filter((o) => o === 'QuantMatMul').length).toBe(1);
    const pre = m.graph.nodes.filter((n) => n.op === 'LutPrecompute' && n.inputs[0] === 'a');
    expect(pre.length).toBe(1);
    const readers = m.graph.nodes.filter((n) => n.op === 'LutMatMul' && n.inputs[0] === pre[0].outputs[0]);
    expect(readers.map((n) => n.outputs[0]).sort()).toEqual(['k', 'q', 'v']);
    // Old codes are gone (except the 8-bit one), planes carry the bit-plane layout.
    expect(m.graph.initializers.has('q_codes')).toBe(false);
    expect(m.graph.initializers.has('w8_codes')).toBe(true);
    const planes = readers[0].inputs[3];
    expect(m.graph.valueInfo.get(planes)?.quant?.layout).toEqual({ kind: 'bitplanes', g: 4, rowsPerTile: 1 });
    expect(result.stats.planeBytesPacked).toBe((4 * 8 + 2 * 4 + 2 * 4 + 1 * 8 + 3 * 12) * K / 8);
  });

  for (const rowsPerTile of [1, 4]) {
    it(`f32 tables match the unlowered graph to 1e-5 (rowsPerTile ${rowsPerTile})`, () => {
      const x = feeds(2);
      const before = run(buildModel(qkv, 1).m, x);
      const { m } = buildModel(qkv, 1);
      lutLowerPass.run(m, { table: 'f32', rowsPerTile });
      const after = run(m, x);
      for (const l of qkv) expect(maxRelativeError(after.get(l.name)!, before.get(l.name)!, 1e-2)).toBeLessThan(1e-5);
    });
  }

  for (const [table, rowsPerTile] of [['i8', 1], ['f32', 4]] as const) {
    it(`weights fed at run time get an LutPackWeights node, bit-identical to the offline re-layout (${table}, rowsPerTile ${rowsPerTile})`, () => {
      const x = feeds(5);
      const offline = buildModel(qkv, 6).m;
      lutLowerPass.run(offline, { table, rowsPerTile });
      const { m: runtime, weightFeeds } = buildModel(qkv, 6, 'f32', true);
      const result = lutLowerPass.run(runtime, { table, rowsPerTile });
      expect(result.stats).toMatchObject({ lowered: 5, runtimePacked: 5, kept8Bit: 1, planeBytesPacked: 0 });
      const packs = runtime.graph.nodes.filter((n) => n.op === 'LutPackWeights');
      expect(packs.length).toBe(5);
      // Each pack runs before its matmul; its planes carry the bit-plane layout.
      for (const pack of packs) {
        const consumer = runtime.graph.nodes.findIndex((n) => n.op === 'LutMatMul' && n.inputs[3] === pack.outputs[0]);
        expect(runtime.graph.nodes.indexOf(pack)).toBeLessThan(consumer);
        expect(runtime.graph.valueInfo.get(pack.outputs[0])?.quant?.layout).toEqual({ kind: 'bitplanes', g: 4, rowsPerTile });
      }
      const expected = run(offline, x);
      const actual = run(runtime, { ...x, ...weightFeeds });
      for (const l of qkv) expect(Array.from(actual.get(l.name)!.numbers())).toEqual(Array.from(expected.get(l.name)!.numbers()));
    });
  }

  it('two indices per byte: planes half the bytes, layout recorded, the same outputs bit for bit (offline and run time)', () => {
    const x = feeds(8);
    const one = buildModel(qkv, 9).m;
    const oneStats = lutLowerPass.run(one, { table: 'i8', rowsPerTile: 4 }).stats;
    const two = buildModel(qkv, 9).m;
    const twoStats = lutLowerPass.run(two, { table: 'i8', rowsPerTile: 4, indicesPerByte: 2 }).stats;
    expect(twoStats.planeBytesStored).toBe(oneStats.planeBytesStored / 2);
    for (const mm of two.graph.nodes.filter((n) => n.op === 'LutMatMul')) {
      expect(mm.attributes.get('indices_per_byte')).toEqual({ kind: 'int', value: 2 });
      const type = two.graph.valueInfo.get(mm.inputs[3]);
      expect(type?.quant?.layout).toEqual({ kind: 'bitplanes', g: 4, rowsPerTile: 4, indicesPerByte: 2 });
      expect(type?.shape?.[2]).toBe(K / 8);
    }
    const expected = run(one, x);
    const packed = run(two, x);
    const { m: runtime, weightFeeds } = buildModel(qkv, 9, 'f32', true);
    lutLowerPass.run(runtime, { table: 'i8', rowsPerTile: 4, indicesPerByte: 2 });
    expect(runtime.graph.nodes.filter((n) => n.op === 'LutPackWeights').every((n) => n.attributes.get('indices_per_byte')?.kind === 'int')).toBe(true);
    const atRunTime = run(runtime, { ...x, ...weightFeeds });
    for (const l of qkv) {
      expect(Array.from(packed.get(l.name)!.numbers())).toEqual(Array.from(expected.get(l.name)!.numbers()));
      expect(Array.from(atRunTime.get(l.name)!.numbers())).toEqual(Array.from(expected.get(l.name)!.numbers()));
    }
  });

  it("'auto' packs two indices per byte only when the planes pass the threshold", () => {
    // qkv planes at one index per byte: (4·8 + 2·4 + 2·4 + 8 + 3·12)·K/4 = 736 bytes.
    for (const [threshold, want] of [[735, 2], [736, 1]] as const) {
      const { m } = buildModel(qkv, 2);
      lutLowerPass.run(m, { table: 'i8', indicesPerByte: 'auto', packAbovePlaneBytes: threshold });
      const perByte = m.graph.nodes.filter((n) => n.op === 'LutMatMul').map((n) => n.attributes.get('indices_per_byte'));
      expect(perByte.every((a) => (want === 2 ? a?.kind === 'int' && a.value === 2 : a === undefined))).toBe(true);
    }
  });

  it('two indices per byte fall back to one where they do not fit a byte (g > 4)', () => {
    const { m } = buildModel([{ name: 'q', input: 'a', bits: 2, N: 8, G: 8 }], 3);
    // K = 32, g = 8: K/g = 4 is even but an index takes the whole byte.
    lutLowerPass.run(m, { g: 8, table: 'f32', indicesPerByte: 2 });
    const mm = m.graph.nodes.find((n) => n.op === 'LutMatMul')!;
    expect(mm.attributes.has('indices_per_byte')).toBe(false);
    expect(m.graph.valueInfo.get(mm.inputs[3])?.quant?.layout).toEqual({ kind: 'bitplanes', g: 8, rowsPerTile: 1 });
  });

  it('int8 tables stay within the derived bound of the f32-table result', () => {
    const x = feeds(3);
    const f32 = buildModel(qkv, 4).m;
    lutLowerPass.run(f32, { table: 'f32' });
    const i8 = buildModel(qkv, 4).m;
    lutLowerPass.run(i8, { table: 'i8' });
    const yf = run(f32, x);
    const yq = run(i8, x);
    let worstRatio = 0;
    for (const l of qkv) {
      if (l.bits === 8) continue;
      const mm = i8.graph.nodes.find((n) => n.op === 'LutMatMul' && n.outputs[0] === l.name)!;
      const halfScales = i8.graph.initializers.get(mm.inputs[4])!.load().numbers();
      const act = x[l.input];
      const M = act.size / K;
      const blocks = K / l.G;
      const tableScales = precomputeTables(act.numbers(), M, K, 4, l.G, 'i8').tableScales;
      const bits = l.bits;
      const a = yq.get(l.name)!.numbers(), b = yf.get(l.name)!.numbers();
      for (let m = 0; m < M; m++) {
        for (let n = 0; n < l.N; n++) {
          const bound = int8OutputErrorBound(halfScales.subarray(n * blocks, (n + 1) * blocks),
            tableScales.subarray(m * blocks, (m + 1) * blocks), bits, 4, l.G);
          const err = Math.abs(a[m * l.N + n] - b[m * l.N + n]);
          // Both outputs are rounded to f32 once: allow one ulp of each.
          const rounding = 2 ** -23 * (Math.abs(a[m * l.N + n]) + Math.abs(b[m * l.N + n]));
          expect(err).toBeLessThanOrEqual(bound + rounding);
          worstRatio = Math.max(worstRatio, err / bound);
        }
      }
    }
    // The bound is a worst case, but not a vacuous one.
    expect(worstRatio).toBeGreaterThan(0.01);
  });

  it('f16 activations keep f16 outputs', () => {
    const layers: Layer[] = [{ name: 'q', input: 'a', bits: 4, N: 8, G: 16 }];
    const x = feeds(5, 'f16');
    const before = run(buildModel(layers, 6, 'f16').m, x);
    const { m } = buildModel(layers, 6, 'f16');
    lutLowerPass.run(m, { table: 'f32' });
    const after = run(m, x);
    expect(after.get('q')!.dtype).toBe('f16');
    expect(maxRelativeError(after.get('q')!, before.get('q')!, 1e-2)).toBeLessThan(2e-3);
  });

  it('g = 2 lowers too; g = 3 with K = 32 is a clear error', () => {
    for (const g of [2, 4]) {
      const layers: Layer[] = [{ name: 'q', input: 'a', bits: 3, N: 4, G: 16, asymmetric: true }];
      const x = feeds(7);
      const before = run(buildModel(layers, 8).m, x);
      const { m } = buildModel(layers, 8);
      const result = lutLowerPass.run(m, { g, table: 'f32' });
      expect(result.stats.tableEntriesPerGroup).toBe(2 ** (g - 1));
      expect(maxRelativeError(run(m, x).get('q')!, before.get('q')!, 1e-2)).toBeLessThan(1e-5);
    }
    const { m } = buildModel([{ name: 'q', input: 'a', bits: 2, N: 4, G: 16 }], 9);
    expect(() => lutLowerPass.run(m, { g: 3 })).toThrow(/K = 32 is not a multiple of the LUT group size g = 3.*mm_q/);
  });

  it('reports K % group_size and rows_per_tile problems as LlmccError naming the node', () => {
    const { m } = buildModel([{ name: 'q', input: 'a', bits: 2, N: 6, G: 16 }], 9);
    expect(() => lutLowerPass.run(m, { rowsPerTile: 4 })).toThrow(LlmccError);
    expect(() => lutLowerPass.run(buildModel([{ name: 'q', input: 'a', bits: 2, N: 6, G: 16 }], 9).m, { rowsPerTile: 4 }))
      .toThrow(/N = 6 is not a multiple of rows_per_tile = 4, node "mm_q"/);
    const odd = buildModel([{ name: 'q', input: 'a', bits: 2, N: 4, G: 16 }], 9).m;
    odd.graph.nodes[0].attributes.set('group_size', { kind: 'int', value: 12 });
    expect(() => lutLowerPass.run(odd, {})).toThrow(/not a multiple of group_size = 12/);
  });

  it('leaves graphs without low-bit QuantMatMul unchanged', () => {
    const { m } = buildModel([{ name: 'w8', input: 'a', bits: 8, N: 4, G: 16 }], 1);
    const result = lutLowerPass.run(m, {});
    expect(result.changed).toBe(false);
    expect(result.stats.kept8Bit).toBe(1);
  });
});
