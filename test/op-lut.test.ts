import { describe, expect, it } from 'vitest';
import { Tensor } from '../ir/tensor.js';
import { LlmccError } from '../ir/errors.js';
import { inferTypes } from '../ir/infer.js';
import { precomputeTables } from '../passes/lut/tables.js';
import { relayoutWeights } from '../passes/lut/bitplanes.js';
import { lutMatMul } from '../passes/lut/matmul.js';
import { floatAttr, maxRelativeError, model, node, quantWeights, randomTensor, rng, run } from './helpers/lut-graph.js';

describe('llmcc.LutPrecompute', () => {
  it('keeps leading dims and matches the table math, i8 and f32', () => {
    const random = rng(1);
    const a = randomTensor('f32', [2, 3, 16], random);
    for (const table of ['i8', 'f32'] as const) {
      const m = model({
        inputs: [{ name: 'a', dtype: 'f32', shape: [2, 3, 16] }],
        outputs: [{ name: 't', dtype: table }, { name: 's', dtype: 'f32' }, { name: 'u', dtype: 'f32' }],
        nodes: [node('LutPrecompute', ['a'], ['t', 's', 'u'], { g: 4, group_size: 8, table })],
      });
      inferTypes(m.graph, m.opsets);
      expect(m.graph.valueInfo.get('t')).toEqual({ dtype: table, shape: [2, 3, 4, 8] });
      expect(m.graph.valueInfo.get('s')?.shape).toEqual([2, 3, 2]);
      const out = run(m, { a });
      const ref = precomputeTables(a.numbers(), 6, 16, 4, 8, table);
      expect(Array.from(out.get('t')!.numbers())).toEqual(Array.from(ref.tables));
      expect(Array.from(out.get('s')!.numbers())).toEqual(Array.from(ref.tableScales));
      expect(Array.from(out.get('u')!.numbers())).toEqual(Array.from(ref.actSums));
    }
  });

  it('rejects K not divisible by g, and bad table kinds, with LlmccError', () => {
    const bad = (attrs: Record<string, number | string>, K = 10) => () => inferTypes(model({
      inputs: [{ name: 'a', dtype: 'f32', shape: [1, K] }],
      outputs: [{ name: 't', dtype: 'i8' }],
      nodes: [node('LutPrecompute', ['a'], ['t', 's', 'u'], attrs)],
    }).graph, new Map([['llmcc', 1]]));
    expect(bad({ g: 4, group_size: 10 })).toThrow(/K = 10 is not a multiple of the LUT group size g = 4/);
    expect(bad({ g: 4, group_size: 8, table: 'i4' }, 16)).toThrow(/'table' must be 'i8' or 'f32'/);
    expect(bad({ g: 4, group_size: 8 }, 16)).not.toThrow();
  });
});

describe('llmcc.LutMatMul', () => {
  const K = 32, N = 8, G = 16, bits = 3;

  function build(table: 'i8' | 'f32', rowsPerTile: number, planesShape?: number[], perByte: 1 | 2 = 1) {
    const random = rng(7);
    const q = quantWeights(random, N, K, bits, G, { asymmetric: true, bias: true });
    const w = relayoutWeights({ codes: q.codes.numbers(), scales: q.scales.numbers(), zeroPoints: q.zeroPoints?.numbers(), bits, ternary: false, N, K, groupSize: G }, 4, rowsPerTile, undefined, false, perByte);
    const m = model({
      inputs: [{ name: 'a', dtype: 'f32', shape: [2, K] }],
      outputs: [{ name: 'y', dtype: 'f32' }],
      nodes: [
        node('LutPrecompute', ['a'], ['t', 's', 'u'], { g: 4, group_size: G, table }),
        node('LutMatMul', ['t', 's', 'u', 'p', 'h', 'o', 'b'], ['y'], {
          bits, g: 4, group_size: G, K, N, rows_per_tile: rowsPerTile, ...(perByte === 2 ? { indices_per_byte: 2 } : {}),
        }),
      ],
      weights: {
        p: new Tensor('u8', planesShape ?? [bits, N, K / 4 / perByte], w.planes),
        h: new Tensor('f32', [N, K / G], w.scales),
        o: new Tensor('f32', [N, K / G], w.offsets),
        b: q.bias!,
      },
    });
    return { m, q, w, a: randomTensor('f32', [2, K], random) };
  }

  it('evaluates the LUT matmul (planes outer, groups inner) and infers [..., N]', () => {
    for (const table of ['i8', 'f32'] as const) {
      for (const rowsPerTile of [1, 4]) {
        const { m, w, a } = build(table, rowsPerTile);
        inferTypes(m.graph, m.opsets);
        expect(m.graph.valueInfo.get('y')).toEqual({ dtype: 'f32', shape: [2, N] });
        const y = run(m, { a }).get('y')!;
        const pre = precomputeTables(a.numbers(), 2, K, 4, G, table);
        const ref = lutMatMul({
          tables: pre.tables, tableScales: pre.tableScales, actSums: pre.actSums, planes: w.planes, scales: w.scales,
          offsets: w.offsets, bias: m.graph.initializers.get('b')!.load().numbers(), M: 2, N, K, bits, g: 4, groupSize: G, rowsPerTile,
        });
        expect(Array.from(y.numbers())).toEqual(Array.from(Float32Array.from(ref)));
      }
    }
  });

  it('reports bad shapes and out-of-range indices as LlmccError naming the node', () => {
    const { m } = build('i8', 1, [bits, N * 2, K / 8]);
    expect(() => inferTypes(m.graph, m.opsets)).toThrow(/planes must have shape \[3,8,8\].*LutMatMul/);
    const ok = build('i8', 1);
    const planes = ok.m.graph.initializers.get('p')!.load().numbers();
    planes[0] = 16;
    expect(() => run(ok.m, { a: ok.a })).toThrow(LlmccError);
    expect(() => run(ok.m, { a: ok.a })).toThrow(/does not fit g = 4 bits/);
  });

  it('two indices per byte evaluate to the same bits as one (i8 and f32 tables, rows interleaved or not)', () => {
    for (const table of ['i8', 'f32'] as const) {
      for (const rowsPerTile of [1, 4]) {
        const one = build(table, rowsPerTile);
        const two = build(table, rowsPerTile, undefined, 2);
        inferTypes(two.m.graph, two.m.opsets);
        expect(two.w.planes.length).toBe(one.w.planes.length / 2);
        expect(Array.from(run(two.m, { a: two.a }).get('y')!.numbers())).toEqual(Array.from(run(one.m, { a: one.a }).get('y')!.numbers()));
      }
    }
  });

  it('checks the planes layout on the type against indices_per_byte', () => {
    const two = build('i8', 1, undefined, 2);
    two.m.graph.valueInfo.set('p', {
      dtype: 'u8', shape: [bits, N, K / 8],
      quant: { bits: 3, ternary: false, groupSize: G, symmetric: false, scaleDtype: 'f32', layout: { kind: 'bitplanes', g: 4, rowsPerTile: 1 } },
    });
    expect(() => inferTypes(two.m.graph, two.m.opsets)).toThrow(/laid out as bitplanes\(g=4,rows=1\), but the node expects bitplanes\(g=4,rows=1,per_byte=2\)/);
    const odd = build('i8', 1, undefined, 2);
    odd.m.graph.nodes[1].attributes.set('indices_per_byte', { kind: 'int', value: 1 });
    expect(() => inferTypes(odd.m.graph, odd.m.opsets)).toThrow(/planes must have shape \[3,8,8\]/);
  });

  it('rejects 8 bit-planes', () => {
    const { m } = build('i8', 1);
    m.graph.nodes[1].attributes.set('bits', { kind: 'int', value: 8 });
    expect(() => inferTypes(m.graph, m.opsets)).toThrow(/1–4 bit-planes/);
  });
});

describe('llmcc.NormLutPrecompute', () => {
  const H = 16;

  function compare(
    normNode: ReturnType<typeof node>, fusedAttrs: Record<string, unknown>, fusedInputs: string[], weights: Record<string, Tensor>,
    extraFeeds: Record<string, Tensor>, sumOutput?: string,
  ): void {
    const random = rng(3);
    const x = randomTensor('f32', [2, 3, H], random, 6);
    const unfused = model({
      inputs: [{ name: 'x', dtype: 'f32', shape: [2, 3, H] }, ...Object.keys(extraFeeds).map((n) => ({ name: n, dtype: 'f32' as const, shape: [...extraFeeds[n].shape] }))],
      outputs: [{ name: 'y', dtype: 'f32' }, { name: 't', dtype: 'i8' }, { name: 's', dtype: 'f32' }, { name: 'u', dtype: 'f32' }, ...(sumOutput ? [{ name: sumOutput, dtype: 'f32' as const }] : [])],
      nodes: [normNode, node('LutPrecompute', ['y'], ['t', 's', 'u'], { g: 4, group_size: 8, table: 'i8' })],
      weights,
    });
    const fused = model({
      inputs: unfused.graph.inputs.map((i) => ({ name: i.name, dtype: i.type.dtype, shape: i.type.shape! })),
      outputs: unfused.graph.outputs.map((o) => ({ name: o.name, dtype: o.type.dtype })),
      nodes: [node('NormLutPrecompute', fusedInputs, ['y', 't', 's', 'u', ...(sumOutput ? [sumOutput] : [])], { g: 4, group_size: 8, table: 'i8', ...fusedAttrs } as Record<string, number | string>)],
      weights,
    });
    inferTypes(fused.graph, fused.opsets);
    const a = run(unfused, { x, ...extraFeeds });
    const b = run(fused, { x, ...extraFeeds });
    expect(maxRelativeError(b.get('y')!, a.get('y')!)).toBeLessThan(1e-6);
    // Tables come from the rounded y: equal whenever y is (int8 codes may flip only if y differs).
    const same = Array.from(a.get('y')!.numbers()).every((v, i) => v === b.get('y')!.get(i));
    if (same) expect(Array.from(b.get('t')!.numbers())).toEqual(Array.from(a.get('t')!.numbers()));
    expect(maxRelativeError(b.get('u')!, a.get('u')!)).toBeLessThan(1e-5);
    if (sumOutput) expect(Array.from(b.get(sumOutput)!.numbers())).toEqual(Array.from(a.get(sumOutput)!.numbers()));
  }

  const random = rng(11);
  const gamma = randomTensor('f32', [H], random);
  const beta = randomTensor('f32', [H], random);
  const skipBias = randomTensor('f32', [H], random);

  it('rms equals RMSNormalization then LutPrecompute', () => {
    compare(node('RMSNormalization', ['x', 'gamma'], ['y'], { epsilon: floatAttr(1e-5) }, ''), { norm: 'rms', epsilon: floatAttr(1e-5) }, ['x', 'gamma'], { gamma }, {});
  });

  it('layer equals LayerNormalization then LutPrecompute', () => {
    compare(node('LayerNormalization', ['x', 'gamma', 'beta'], ['y'], { epsilon: floatAttr(1e-5) }, ''), { norm: 'layer', epsilon: floatAttr(1e-5) }, ['x', 'gamma', 'beta'], { gamma, beta }, {});
  });

  it('rms with skip equals SkipSimplifiedLayerNormalization (and returns its residual sum)', () => {
    const skip = randomTensor('f32', [2, 3, H], rng(5));
    compare(node('SkipSimplifiedLayerNormalization', ['x', 'skip', 'gamma', 'sb'], ['y', '', '', 'sum'], { epsilon: floatAttr(1e-6) }, 'com.microsoft'),
      { norm: 'rms', epsilon: floatAttr(1e-6) }, ['x', 'gamma', '', 'skip', 'sb'], { gamma, sb: skipBias }, { skip }, 'sum');
  });

  it('layer with skip equals SkipLayerNormalization', () => {
    const skip = randomTensor('f32', [3, H], rng(6));
    compare(node('SkipLayerNormalization', ['x', 'skip', 'gamma', 'beta', 'sb'], ['y', '', '', 'sum'], { epsilon: floatAttr(1e-6) }, 'com.microsoft'),
      { norm: 'layer', epsilon: floatAttr(1e-6) }, ['x', 'gamma', 'beta', 'skip', 'sb'], { gamma, beta, sb: skipBias }, { skip }, 'sum');
  });

  it('rejects bad norms and shapes', () => {
    const m = model({
      inputs: [{ name: 'x', dtype: 'f32', shape: [2, H] }],
      outputs: [{ name: 'y', dtype: 'f32' }],
      nodes: [node('NormLutPrecompute', ['x', 'gamma'], ['y', 't', 's', 'u'], { norm: 'batch', group_size: 8 })],
      weights: { gamma },
    });
    expect(() => inferTypes(m.graph, m.opsets)).toThrow(/'norm' must be 'rms' or 'layer'/);
    const m2 = model({
      inputs: [{ name: 'x', dtype: 'f32', shape: [2, H] }],
      outputs: [{ name: 'y', dtype: 'f32' }],
      nodes: [node('NormLutPrecompute', ['x', 'gamma'], ['y', 't', 's', 'u'], { norm: 'rms', group_size: 8 })],
      weights: { gamma: randomTensor('f32', [H + 1], rng(1)) } });
    expect(() => inferTypes(m2.graph, m2.opsets)).toThrow(/gamma must have shape \[16\]/);
  });
});
