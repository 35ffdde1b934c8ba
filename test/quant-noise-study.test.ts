import { describe, expect, it } from 'vitest';
import * as path from 'node:path';
import { Tensor } from '../ir/tensor.js';
import { verifyModel } from '../ir/verify.js';
import { loadModelFromBytes } from '../src/onnx/load.js';
import { findLayers } from '../passes/quant/layers.js';
import { cosine, describeCosines, noiseStudy, runOutput, type StudySet } from '../passes/quant/noise-study.js';
import { gaussian } from '../passes/quant/sqnr.js';
import { buildModel } from './helpers/onnx-builder.js';
import { llmcc } from './helpers/cli.js';
import { MODELS_DIR } from './helpers/paths.js';

const K = 16, N = 8, V = 8;

/**
 * y = x · Transpose(w)ᵀᵀ (the weight read through a Transpose, as torch exports linear layers)
 * and e = Gather(w, ids): the same table also read outside the layer, like a tied lm_head.
 */
function tiedModel() {
  const model = loadModelFromBytes(buildModel({
    nodes: [
      { op: 'Transpose', name: 't', inputs: ['w'], outputs: ['wt'], attributes: { perm: [1, 0] } },
      { op: 'MatMul', name: 'proj', inputs: ['x', 'wt'], outputs: ['y'] },
      { op: 'Gather', name: 'embed', inputs: ['w', 'ids'], outputs: ['e'] },
    ],
    inputs: [{ name: 'x', dtype: 'f32', shape: [4, K] }, { name: 'ids', dtype: 'i64', shape: [3] }],
    outputs: [{ name: 'y', dtype: 'f32', shape: [4, V] }, { name: 'e', dtype: 'f32', shape: [3, K] }],
    initializers: { w: Tensor.fromNumbers('f32', [V, K], gaussian(7, V * K)) },
  }), { path: 'tied.onnx' });
  verifyModel(model);
  return model;
}

describe('end-to-end weight-noise study', () => {
  const model = tiedModel();
  const { layers } = findLayers(model.graph);
  const feeds = new Map([
    ['x', Tensor.fromNumbers('f32', [4, K], gaussian(3, 4 * K))],
    ['ids', Tensor.fromNumbers('i64', [3], [0, 5, 7])],
  ]);
  const setFor = (output: string): StudySet => ({ name: 'set', feeds, expected: runOutput(model, model.graph, { name: 'set', feeds }, output) });

  it('finds the layer behind the Transpose', () => {
    expect(layers.map((l) => l.node.name)).toEqual(['proj']);
  });

  it('perturbs the layer by the SNR asked: cosine falls with the SNR and is reproducible per seed', () => {
    const options = { seeds: 4, threshold: 0.99 };
    const [high, low] = noiseStudy(model, layers, [setFor('y')], 'y', { ...options, snrsDb: [80, 0] });
    expect(high.cosines[0][0]).toBeGreaterThan(0.99999);
    expect(high.cosines[0][3]).toBeLessThan(1);
    expect(high.allSetsAtLeast).toBe(4);
    // At 0 dB the noise is as large as the weights: cos ≈ 1/√2 on average.
    expect(low.cosines[0][3]).toBeLessThan(0.95);
    expect(low.allSetsAtLeast).toBe(0);
    const again = noiseStudy(model, layers, [setFor('y')], 'y', { ...options, snrsDb: [0] });
    expect(again[0].cosines).toEqual(low.cosines);
  });

  it('leaves the weight exact where the graph reads it outside the layer (the tied Gather)', () => {
    const [row] = noiseStudy(model, layers, [setFor('e')], 'e', { seeds: 2, threshold: 0.99, snrsDb: [0] });
    expect(row.cosines[0]).toEqual([1, 1]);
  });

  it('summarizes min / median / max and the count reaching the bar', () => {
    expect(describeCosines([0.9, 0.95, 0.995], 0.99)).toBe('0.9000 / 0.9500 / 0.9950 (1/3 >= 0.99)');
    expect(cosine([1, 0], [0, 1])).toBe(0);
  });
});

describe('llmcc inspect --quant --data --noise', () => {
  const dir = path.join(MODELS_DIR, 'genai-static-scatter-bias-decoder');
  it('prints the quantized model\'s cosine per data set (as `run --lower` measures it) and the noise rows', () => {
    const sets = [0, 1].map((i) => path.join(dir, `test_data_set_${i}`));
    const r = llmcc('inspect', path.join(dir, 'model.onnx'), '--quant', '--bits', '4', '--group', '32', '--data', ...sets, '--noise', 'q,60', '--noise-seeds', '2');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const quantized = [...r.stdout.matchAll(/quantized \(rtn\), test_data_set_(\d): ([0-9.]+)/g)].map((m) => Number(m[2]));
    expect(quantized).toHaveLength(2);
    // The same cosine `llmcc run --target ref --lower --table f32` reports (f32 tables are exact).
    const run = llmcc('run', path.join(dir, 'model.onnx'), '--data', sets[0], '--target', 'ref', '--lower', '--bits', '4', '--group', '32', '--table', 'f32');
    expect(Number(/'logits'.*cosine ([0-9.]+)/.exec(run.stdout)![1])).toBeCloseTo(quantized[0], 5);
    expect(r.stdout).toMatch(/quantizer's mean weight SQNR 2\d\.\d dB/);
    expect(r.stdout).toMatch(/60\.0 dB, every set >= 0\.99: 2\/2/);
    expect(llmcc('inspect', path.join(dir, 'model.onnx'), '--quant', '--bits', '4', '--noise').stderr).toMatch(/--noise needs --data/);
  });
});
