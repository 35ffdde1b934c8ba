import { describe, expect, it } from 'vitest';
import * as path from 'node:path';
import { LlmccError } from '../ir/errors.js';
import type { Model } from '../ir/graph.js';
import { interpret } from '../ir/interpreter.js';
import { Tensor } from '../ir/tensor.js';
import { verifyModel } from '../ir/verify.js';
import { loadModel, loadModelFromBytes } from '../src/onnx/load.js';
import { bindInputs, readTestDataSet } from '../src/testdata.js';
import { quantizeWeightsPass, type QuantizeWeightsOptions } from '../passes/quantize-weights.js';
import { dequantize, quantizeRtn } from '../passes/quant/rtn.js';
import { quantReport, type QuantReportRow } from '../passes/quant/report.js';
import { gaussian, sqnrDb } from '../passes/quant/sqnr.js';
import { buildModel, floatAttr, type ModelSpec } from './helpers/onnx-builder.js';
import { MODELS_DIR } from './helpers/paths.js';

const INT4: QuantizeWeightsOptions = { bits: 4, groupSize: 32, symmetric: true, ternary: false, keep: [] };

function load(spec: ModelSpec): Model {
  const model = loadModelFromBytes(buildModel(spec), { path: 'test.onnx' });
  verifyModel(model);
  return model;
}

function randomTensor(shape: number[], seed: number, dtype: 'f32' | 'f16' = 'f32'): Tensor {
  return Tensor.fromNumbers(dtype, shape, gaussian(seed, shape.reduce((a, b) => a * b, 1)));
}

/** y = x · W for a [K, N] weight. */
function matmulModel(k: number, n: number, m = 4, dtype: 'f32' | 'f16' = 'f32'): { model: Model; w: Tensor } {
  const w = randomTensor([k, n], 1, dtype);
  return {
    w,
    model: load({
      nodes: [{ op: 'MatMul', name: 'proj', inputs: ['x', 'w'], outputs: ['y'] }],
      inputs: [{ name: 'x', dtype, shape: ['batch', m, k] }],
      outputs: [{ name: 'y', dtype, shape: ['batch', m, n] }],
      initializers: { w },
    }),
  };
}

function run(model: Model, feeds: Record<string, Tensor>): Tensor {
  const out = interpret(model.graph, new Map(Object.entries(feeds)), { opsets: model.opsets });
  return out.get(model.graph.outputs[0].name)!;
}

/** W [K, N] → rows [N, K]. */
function rowsOf(w: Tensor): Float32Array {
  const [k, n] = w.shape;
  const rows = new Float32Array(n * k);
  for (let i = 0; i < k; i++) for (let j = 0; j < n; j++) rows[j * k + i] = w.get(i * n + j);
  return rows;
}

describe('quantize-weights pass', () => {
  it('rewrites MatMul into llmcc.QuantMatMul carrying quant info, output = x · dequant(W)', () => {
    const { model, w } = matmulModel(64, 16);
    const x = randomTensor([2, 4, 64], 2);
    const before = run(model, { x });
    const result = quantizeWeightsPass.run(model, INT4);
    expect(result.changed).toBe(true);
    expect(result.stats).toMatchObject({ layers_quantized: 1, weights_quantized: 1, layers_int4: 1, bytes_before: 4096, bytes_after: 512 + 2 * 16 * 4 });
    const [node] = model.graph.nodes;
    expect(node).toMatchObject({ name: 'proj', domain: 'llmcc', op: 'QuantMatMul', outputs: ['y'] });
    expect(node.inputs).toHaveLength(3);
    expect(model.graph.initializers.has('w')).toBe(false);
    expect(model.graph.valueInfo.get(node.inputs[1])).toEqual({
      dtype: 'u8', shape: [16, 64],
      quant: { bits: 4, ternary: false, groupSize: 32, symmetric: true, scaleDtype: 'f32', layout: { kind: 'codes-nk' } },
    });
    expect(model.graph.valueInfo.get('y')).toEqual({ dtype: 'f32', shape: ['batch', 4, 16] });
    expect(model.opsets.get('llmcc')).toBe(1);

    const after = run(model, { x });
    const approx = dequantize(quantizeRtn(rowsOf(w), 16, 64, INT4));
    const expected: number[] = [];
    for (let m = 0; m < 8; m++) {
      for (let n = 0; n < 16; n++) {
        let acc = 0;
        for (let k = 0; k < 64; k++) acc += x.get(m * 64 + k) * approx[n * 64 + k];
        expected.push(Math.fround(acc));
      }
    }
    expect(Array.from(after.numbers())).toEqual(expected);
    expect(sqnrDb(before.numbers(), after.numbers())).toBeGreaterThan(15);
  });

  it('covers every width, asymmetric and ternary; SQNR grows with bits', () => {
    const x = randomTensor([1, 4, 128], 3);
    let previous = -Infinity;
    for (const bits of [1, 2, 3, 4, 8] as const) {
      for (const symmetric of [true, false]) {
        const { model } = matmulModel(128, 8);
        const before = run(model, { x });
        quantizeWeightsPass.run(model, { ...INT4, bits, symmetric, groupSize: 64 });
        const db = sqnrDb(before.numbers(), run(model, { x }).numbers());
        if (symmetric) {
          expect(db).toBeGreaterThan(previous);
          previous = db;
        }
        expect(model.graph.nodes[0].inputs.length).toBe(symmetric && bits > 2 ? 3 : 4);
      }
    }
    const { model } = matmulModel(128, 8);
    const stats = quantizeWeightsPass.run(model, { ...INT4, ternary: true }).stats;
    expect(stats.layers_ternary).toBe(1);
    const node = model.graph.nodes[0];
    expect(node.attributes.get('ternary')).toEqual({ kind: 'int', value: 1 });
    expect(node.attributes.get('bits')).toEqual({ kind: 'int', value: 2 });
    expect(model.graph.valueInfo.get(node.inputs[1])?.quant).toMatchObject({ bits: 2, ternary: true });
  });

  it('handles Gemm with transB, alpha and beta·C as the bias', () => {
    const [m, k, n] = [3, 64, 8];
    const b = randomTensor([n, k], 4);
    const c = randomTensor([n], 5);
    const model = load({
      nodes: [{ op: 'Gemm', name: 'fc', inputs: ['x', 'b', 'c'], outputs: ['y'], attributes: { transB: 1, alpha: floatAttr(0.5), beta: floatAttr(2) } }],
      inputs: [{ name: 'x', dtype: 'f32', shape: [m, k] }],
      outputs: [{ name: 'y', dtype: 'f32', shape: [m, n] }],
      initializers: { b, c },
    });
    const x = randomTensor([m, k], 6);
    const before = run(model, { x });
    quantizeWeightsPass.run(model, { ...INT4, bits: 8 });
    const node = model.graph.nodes[0];
    expect(node.op).toBe('QuantMatMul');
    expect(node.inputs).toHaveLength(5);
    expect(node.inputs[3]).toBe('');
    const bias = model.graph.initializers.get(node.inputs[4])!.load();
    expect(Array.from(bias.numbers())).toEqual(Array.from(c.numbers()).map((v) => Math.fround(2 * v)));
    expect(sqnrDb(before.numbers(), run(model, { x }).numbers())).toBeGreaterThan(35);
  });

  it('looks through Transpose(weight) → MatMul (PyTorch Linear exports)', () => {
    const weight = randomTensor([8, 64], 7);
    const model = load({
      nodes: [
        { op: 'Transpose', name: 't', inputs: ['weight'], outputs: ['wt'], attributes: { perm: [1, 0] } },
        { op: 'MatMul', name: 'mm', inputs: ['x', 'wt'], outputs: ['y'] },
      ],
      inputs: [{ name: 'x', dtype: 'f32', shape: [2, 64] }],
      outputs: [{ name: 'y', dtype: 'f32', shape: [2, 8] }],
      initializers: { weight },
    });
    const x = randomTensor([2, 64], 8);
    const before = run(model, { x });
    quantizeWeightsPass.run(model, { ...INT4, bits: 8 });
    expect(model.graph.nodes.map((n) => n.op)).toEqual(['QuantMatMul']);
    expect(sqnrDb(before.numbers(), run(model, { x }).numbers())).toBeGreaterThan(35);
  });

  it('keep patterns and the bits map choose per layer; shared weights are stored once', () => {
    const w1 = randomTensor([64, 64], 9);
    const w2 = randomTensor([64, 64], 10);
    const spec: ModelSpec = {
      nodes: [
        { op: 'MatMul', name: 'attn.q', inputs: ['x', 'w1'], outputs: ['a'] },
        { op: 'MatMul', name: 'mlp.up', inputs: ['a', 'w2'], outputs: ['b'] },
        { op: 'MatMul', name: 'mlp.down', inputs: ['b', 'w2'], outputs: ['y'] },
      ],
      inputs: [{ name: 'x', dtype: 'f32', shape: [1, 64] }],
      outputs: [{ name: 'y', dtype: 'f32', shape: [1, 64] }],
      initializers: { w1, w2 },
    };
    const kept = load(spec);
    const keptStats = quantizeWeightsPass.run(kept, { ...INT4, keep: ['*attn*'] }).stats;
    expect(keptStats).toMatchObject({ layers_quantized: 2, layers_kept: 1, weights_quantized: 1 });
    expect(kept.graph.nodes.map((n) => n.op)).toEqual(['MatMul', 'QuantMatMul', 'QuantMatMul']);
    expect(kept.graph.nodes[1].inputs.slice(1)).toEqual(kept.graph.nodes[2].inputs.slice(1));
    expect(kept.graph.initializers.has('w1')).toBe(true);
    expect(kept.graph.initializers.has('w2')).toBe(false);

    const mapped = load(spec);
    const stats = quantizeWeightsPass.run(mapped, { ...INT4, bitsMap: { 'mlp.down': 'keep', '/^mlp/': 'ternary', w1: 2 } }).stats;
    expect(stats).toMatchObject({ layers_quantized: 2, layers_kept: 1, layers_ternary: 1, layers_int2: 1 });
    expect(mapped.graph.nodes.map((n) => n.op)).toEqual(['QuantMatMul', 'QuantMatMul', 'MatMul']);
    // w2 stays for the kept layer, alongside its ternary codes.
    expect(mapped.graph.initializers.has('w2')).toBe(true);

    expect(() => quantizeWeightsPass.run(load(spec), { ...INT4, bitsMap: { '*': 'int4' as never } })).toThrow(LlmccError);
  });

  it('skips K not divisible by the group, non-constant and non-2-D weights, with stats', () => {
    const odd = matmulModel(40, 8).model;
    const result = quantizeWeightsPass.run(odd, INT4);
    expect(result).toEqual({ changed: false, stats: expect.objectContaining({ skipped_k_not_divisible: 1, layers_quantized: 0 }) });
    expect(odd.graph.nodes[0].op).toBe('MatMul');

    const dynamic = load({
      nodes: [{ op: 'MatMul', name: 'mm', inputs: ['x', 'w'], outputs: ['y'] }],
      inputs: [{ name: 'x', dtype: 'f32', shape: [1, 64] }, { name: 'w', dtype: 'f32', shape: [64, 8] }],
      outputs: [{ name: 'y', dtype: 'f32', shape: [1, 8] }],
    });
    expect(quantizeWeightsPass.run(dynamic, INT4).stats.skipped_weight_not_constant).toBe(1);

    const batched = load({
      nodes: [{ op: 'MatMul', name: 'mm', inputs: ['x', 'w'], outputs: ['y'] }],
      inputs: [{ name: 'x', dtype: 'f32', shape: [2, 1, 64] }],
      outputs: [{ name: 'y', dtype: 'f32', shape: [2, 1, 8] }],
      initializers: { w: randomTensor([2, 64, 8], 3) },
    });
    expect(quantizeWeightsPass.run(batched, INT4).stats.skipped_weight_not_2d).toBe(1);
  });

  it('keeps f16 models in f16 with f16 scales', () => {
    const { model } = matmulModel(64, 8, 2, 'f16');
    const x = randomTensor([1, 2, 64], 11, 'f16');
    const before = run(model, { x });
    quantizeWeightsPass.run(model, { ...INT4, bits: 8 });
    const node = model.graph.nodes[0];
    expect(model.graph.initializers.get(node.inputs[2])!.dtype).toBe('f16');
    expect(model.graph.valueInfo.get(node.inputs[1])?.quant?.scaleDtype).toBe('f16');
    const after = run(model, { x });
    expect(after.dtype).toBe('f16');
    expect(sqnrDb(before.numbers(), after.numbers())).toBeGreaterThan(30);
  });

  it('reports per-layer SQNR and sizes, with Gaussian or real calibration input', () => {
    const { model } = matmulModel(128, 16);
    const rows = quantReport(model, { ...INT4, bits: 2 });
    expect(rows).toHaveLength(1);
    const row = rows[0];
    expect(row).toMatchObject({ layer: 'proj', weight: 'w', bits: 2, groupSize: 32, calibration: 'gaussian', bytesBefore: 128 * 16 * 4 });
    expect(row.bytesAfter).toBe(128 * 16 / 4 + 16 * 4 * 4 * 2);
    expect(row.weightSqnrDb).toBeGreaterThan(5);
    expect(row.outputSqnrDb).toBeGreaterThan(5);
    // quantReport does not change the model.
    expect(model.graph.nodes[0].op).toBe('MatMul');

    const feeds = new Map([['x', randomTensor([1, 4, 128], 12)]]);
    const real = quantReport(model, { ...INT4, bits: 2 }, feeds)[0];
    expect(real.calibration).toBe('real');
    expect(real.weightSqnrDb).toBe(row.weightSqnrDb);
    expect(real.outputSqnrDb).not.toBe(row.outputSqnrDb);

    const collected: QuantReportRow[] = [];
    quantizeWeightsPass.run(model, { ...INT4, bits: 2, report: collected, calibration: feeds });
    expect(collected).toEqual([real]);
  });

  it('quantizes a real decoder (static-scatter-bias, Transpose → MatMul) and stays close at 8 bits', async () => {
    const dir = path.join(MODELS_DIR, 'genai-static-scatter-bias-decoder');
    const model = await loadModel(path.join(dir, 'model.onnx'));
    verifyModel(model);
    const data = readTestDataSet(path.join(dir, 'test_data_set_0'));
    const feeds = bindInputs(model.graph, data);
    const stats = quantizeWeightsPass.run(model, { ...INT4, bits: 8 }).stats;
    expect(stats.layers_quantized).toBe(15);
    expect(stats.bytes_after).toBeLessThan(stats.bytes_before / 3);
    const logits = interpret(model.graph, feeds, { opsets: model.opsets }).get(model.graph.outputs[0].name)!;
    expect(sqnrDb(data.outputs[0].tensor.numbers(), logits.numbers())).toBeGreaterThan(25);
  });
});

describe('quantize-weights progress', () => {
  it('reports each layer before it is quantized and once at the end; the line says layers, MiB and time', async () => {
    const { formatQuantProgress, lineProgressSink } = await import('../passes/quant/progress.js');
    const model = load({
      nodes: [
        { op: 'MatMul', name: 'a', inputs: ['x', 'w1'], outputs: ['h'] },
        { op: 'MatMul', name: 'b', inputs: ['h', 'w2'], outputs: ['y'] },
      ],
      inputs: [{ name: 'x', dtype: 'f32', shape: [1, 64] }],
      outputs: [{ name: 'y', dtype: 'f32', shape: [1, 32] }],
      initializers: { w1: randomTensor([64, 64], 3), w2: randomTensor([64, 32], 4) },
    });
    const seen: { done: number; total: number; bytes: number; layer: string }[] = [];
    quantizeWeightsPass.run(model, { ...INT4, onProgress: (p) => seen.push(p) });
    expect(seen.map((p) => [p.done, p.total, p.layer])).toEqual([[0, 2, 'a'], [1, 2, 'b'], [2, 2, 'done']]);
    expect(seen.map((p) => p.bytes)).toEqual([0, 64 * 64 * 4, 64 * 64 * 4 + 64 * 32 * 4]);
    expect(formatQuantProgress({ done: 1, total: 2, bytes: 2 ** 21, totalBytes: 2 ** 22, layer: 'b', elapsedMs: 1500 }))
      .toBe('quantize-weights: 1/2 layers, 2/4 MiB, 1.5 s (b)');
    // The line sink drops updates closer than its interval, but never the last one.
    const lines: string[] = [];
    const sink = lineProgressSink((line) => lines.push(line), 1000);
    for (const elapsedMs of [0, 10, 20]) sink({ done: 0, total: 1, bytes: 0, totalBytes: 1, layer: 'a', elapsedMs });
    sink({ done: 1, total: 1, bytes: 1, totalBytes: 1, layer: 'done', elapsedMs: 30 });
    expect(lines.length).toBe(2);
    expect(lines[1]).toMatch(/^quantize-weights: 1\/1 layers/);
  });
});
