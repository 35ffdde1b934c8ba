import { describe, expect, it } from 'vitest';
import type { Model, Node } from '../ir/graph.js';
import { Tensor } from '../ir/tensor.js';
import { lutLowerPass } from '../passes/lut-lower.js';
import { fuseLutPrecomputePass } from '../passes/fuse-lut-precompute.js';
import * as path from 'node:path';
import { loadModel } from '../src/onnx/load.js';
import { bindInputs, readTestDataSet } from '../src/testdata.js';
import { verifyModel } from '../ir/verify.js';
import { quantizeWeightsPass } from '../passes/quantize-weights.js';
import { MODELS_DIR } from './helpers/paths.js';
import { floatAttr, maxRelativeError, maxScaledError, model, node, quantWeights, randomTensor, rng, run } from './helpers/lut-graph.js';

const H = 32;
const N = 8;

/**
 * x (+ skip) → norm → y → two 4-bit QuantMatMuls (q, k). `extraOutputs` become graph outputs
 * too (e.g. the residual sum, or y itself).
 */
function build(normNode: Node, normWeights: Record<string, Tensor>, extraOutputs: string[] = [], withSkip = false): Model {
  const random = rng(21);
  const weights: Record<string, Tensor> = { ...normWeights };
  const nodes: Node[] = [normNode];
  for (const name of ['q', 'k']) {
    const w = quantWeights(random, N, H, 4, 16, { bias: name === 'q' });
    weights[`${name}_codes`] = w.codes;
    weights[`${name}_scales`] = w.scales;
    const inputs = ['y', `${name}_codes`, `${name}_scales`];
    if (w.bias) {
      weights[`${name}_bias`] = w.bias;
      inputs.push('', `${name}_bias`);
    }
    nodes.push(node('QuantMatMul', inputs, [name], { bits: 4, group_size: 16, ternary: 0, K: H, N }, 'llmcc', `mm_${name}`));
  }
  return model({
    inputs: [{ name: 'x', dtype: 'f32', shape: [2, 3, H] }, ...(withSkip ? [{ name: 'skip', dtype: 'f32' as const, shape: [2, 3, H] }] : [])],
    outputs: [...['q', 'k', ...extraOutputs].map((name) => ({ name, dtype: 'f32' as const }))],
    nodes,
    weights,
  });
}

const random = rng(5);
const gamma = randomTensor('f32', [H], random);
const beta = randomTensor('f32', [H], random);
const feeds = { x: randomTensor('f32', [2, 3, H], random, 6), skip: randomTensor('f32', [2, 3, H], random) };

function lowerAndFuse(make: () => Model, table: 'i8' | 'f32' = 'f32') {
  const reference = run(make(), feeds);
  const m = make();
  lutLowerPass.run(m, { table });
  const unfused = run(m, feeds);
  const result = fuseLutPrecomputePass.run(m, undefined);
  return { m, result, reference, unfused, fused: run(m, feeds) };
}

const cases: { title: string; make: () => Model; outputs: string[] }[] = [
  {
    title: 'RMSNormalization (opset 23)',
    make: () => build(node('RMSNormalization', ['x', 'gamma'], ['y'], { epsilon: floatAttr(1e-5) }, '', 'norm'), { gamma }),
    outputs: ['q', 'k'],
  },
  {
    title: 'LayerNormalization',
    make: () => build(node('LayerNormalization', ['x', 'gamma', 'beta'], ['y'], { axis: -1 }, '', 'norm'), { gamma, beta }),
    outputs: ['q', 'k'],
  },
  {
    title: 'com.microsoft SimplifiedLayerNormalization',
    make: () => build(node('SimplifiedLayerNormalization', ['x', 'gamma'], ['y'], { axis: 2 }, 'com.microsoft', 'norm'), { gamma }),
    outputs: ['q', 'k'],
  },
  {
    title: 'SkipSimplifiedLayerNormalization with its residual sum in use',
    make: () => build(node('SkipSimplifiedLayerNormalization', ['x', 'skip', 'gamma'], ['y', '', '', 'sum'], { epsilon: floatAttr(1e-6) }, 'com.microsoft', 'norm'), { gamma }, ['sum'], true),
    outputs: ['q', 'k', 'sum'],
  },
  {
    title: 'SkipLayerNormalization with y also a graph output',
    make: () => build(node('SkipLayerNormalization', ['x', 'skip', 'gamma', 'beta'], ['y'], {}, 'com.microsoft', 'norm'), { gamma, beta }, ['y'], true),
    outputs: ['q', 'k', 'y'],
  },
];

describe('fuse-lut-precompute', () => {
  for (const c of cases) {
    it(`fuses ${c.title} into NormLutPrecompute`, () => {
      const { m, result, reference, unfused, fused } = lowerAndFuse(c.make);
      expect(result.stats.fused).toBe(1);
      const ops = m.graph.nodes.map((n) => n.op);
      expect(ops).toEqual(['NormLutPrecompute', 'LutMatMul', 'LutMatMul']);
      for (const name of c.outputs) {
        expect(maxRelativeError(fused.get(name)!, unfused.get(name)!, 1e-2)).toBeLessThan(1e-5);
        expect(maxScaledError(fused.get(name)!, reference.get(name)!)).toBeLessThan(1e-5);
      }
    });
  }

  it('drops y when nothing else reads it, keeps it otherwise', () => {
    const plain = lowerAndFuse(cases[0].make).m.graph.nodes[0];
    expect(plain.outputs[0]).toBe('');
    const kept = lowerAndFuse(cases[4].make).m.graph.nodes[0];
    expect(kept.outputs[0]).toBe('y');
    expect(kept.outputs.length).toBe(4);
    const withSum = lowerAndFuse(cases[3].make).m.graph.nodes[0];
    expect(withSum.outputs[4]).toBe('sum');
  });

  it('int8 tables fuse too, within the int8 error of the unlowered graph', () => {
    const { result, unfused, fused } = lowerAndFuse(cases[3].make, 'i8');
    expect(result.stats.fused).toBe(1);
    for (const name of ['q', 'k']) expect(maxRelativeError(fused.get(name)!, unfused.get(name)!, 1e-2)).toBeLessThan(1e-5);
  });

  it('does not fuse when the norm statistics are read, and counts why', () => {
    const make = () => build(node('LayerNormalization', ['x', 'gamma', 'beta'], ['y', 'mean'], {}, '', 'norm'), { gamma, beta }, ['mean']);
    const { m, result, reference, fused } = lowerAndFuse(make);
    expect(result.changed).toBe(false);
    expect(result.stats.notFusedStatsInUse).toBe(1);
    expect(m.graph.nodes.map((n) => n.op)).toContain('LayerNormalization');
    expect(maxScaledError(fused.get('q')!, reference.get('q')!)).toBeLessThan(1e-5);
  });

  it('does not fuse a norm over more than the last axis', () => {
    const g2 = randomTensor('f32', [3, H], rng(1));
    const make = () => build(node('RMSNormalization', ['x', 'gamma'], ['y'], { axis: 1 }, '', 'norm'), { gamma: g2 });
    const { result } = lowerAndFuse(make);
    expect(result.stats.notFusedAxis).toBe(1);
  });

  it('fuses a Mul by a per-channel constant into the precompute, bit-exactly', () => {
    for (const shape of [[H], [1, 1, H], []]) {
      const size = shape.reduce((a, b) => a * b, 1);
      const scale = Tensor.fromNumbers('f32', shape, Array.from({ length: size }, (_, i) => 1 + i / 7));
      const make = () => build(node('Mul', ['scale', 'x'], ['y'], {}, '', 'mul'), { scale });
      for (const table of ['i8', 'f32'] as const) {
        const { m, result, unfused, fused } = lowerAndFuse(make, table);
        expect(result.stats.fusedMul).toBe(1);
        expect(m.graph.nodes.map((n) => n.op)).toEqual(['LutPrecompute', 'LutMatMul', 'LutMatMul']);
        expect(m.graph.nodes[0].inputs).toEqual(['x', 'scale']);
        for (const name of ['q', 'k']) expect(Array.from(fused.get(name)!.numbers())).toEqual(Array.from(unfused.get(name)!.numbers()));
      }
    }
  });

  it('does not fuse a Mul whose product is read elsewhere, or of two activations', () => {
    const scale = Tensor.fromNumbers('f32', [H], Array.from({ length: H }, (_, i) => 1 + i / H));
    const used = lowerAndFuse(() => build(node('Mul', ['x', 'scale'], ['y'], {}, '', 'mul'), { scale }, ['y']));
    expect(used.result.changed).toBe(false);
    expect(used.result.stats.notFusedMulOutputInUse).toBe(1);
    const square = lowerAndFuse(() => build(node('Mul', ['x', 'x'], ['y'], {}, '', 'mul'), {}));
    expect(square.result.stats.notFusedMulNotConstant).toBe(1);
  });

  it('lowers and fuses a real decoder (RMSNormalization, shared Q/K/V tables) with f32 tables to 1e-5', async () => {
    const dir = path.join(MODELS_DIR, 'genai-static-scatter-bias-decoder');
    const quantized = async (): Promise<Model> => {
      const m = await loadModel(path.join(dir, 'model.onnx'));
      verifyModel(m);
      quantizeWeightsPass.run(m, { bits: 2, groupSize: 32, symmetric: true, ternary: false, keep: [] });
      return m;
    };
    const data = readTestDataSet(path.join(dir, 'test_data_set_0'));
    const reference = await quantized();
    const expected = run(reference, Object.fromEntries(bindInputs(reference.graph, data)));
    const m = await quantized();
    const lowered = lutLowerPass.run(m, { table: 'f32' });
    expect(lowered.stats.lowered).toBe(15);
    expect(lowered.stats.sharedTableConsumers).toBeGreaterThan(0);
    const fusion = fuseLutPrecomputePass.run(m, undefined);
    expect(fusion.stats.fused).toBeGreaterThan(0);
    expect(m.graph.nodes.some((n) => n.op === 'QuantMatMul')).toBe(false);
    const actual = run(m, Object.fromEntries(bindInputs(m.graph, data)));
    for (const [name, value] of expected) expect(maxScaledError(actual.get(name)!, value)).toBeLessThan(1e-5);
  });
});
