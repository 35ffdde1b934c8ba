import { describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { LlmccError } from '../ir/errors.js';
import type { Model } from '../ir/graph.js';
import { interpret } from '../ir/interpreter.js';
import { Tensor } from '../ir/tensor.js';
import { verifyModel } from '../ir/verify.js';
import { loadModel, loadModelFromBytes } from '../src/onnx/load.js';
import { bindInputs, readTestDataSet } from '../src/testdata.js';
import { importPrequantizedPass } from '../passes/import-prequantized.js';
import { gaussian, seededRandom } from '../passes/quant/sqnr.js';
import { buildModel, type ModelSpec, type NodeSpec } from './helpers/onnx-builder.js';
import { MODELS_DIR } from './helpers/paths.js';

function load(spec: ModelSpec): Model {
  const model = loadModelFromBytes(buildModel(spec), { path: 'test.onnx' });
  verifyModel(model);
  return model;
}

function run(model: Model, feeds: Map<string, Tensor>): Tensor {
  return interpret(model.graph, feeds, { opsets: model.opsets }).get(model.graph.outputs[0].name)!;
}

/** Runs the pass and checks the result is bit-identical to the original graph's. */
function expectExactImport(model: Model, feeds: Map<string, Tensor>): Record<string, number> {
  const before = run(model, feeds);
  const result = importPrequantizedPass.run(model, undefined);
  expect(result.changed).toBe(true);
  expect(model.graph.nodes.every((n) => n.op !== 'MatMulNBits' && n.op !== 'DequantizeLinear')).toBe(true);
  const after = run(model, feeds);
  expect(after.dtype).toBe(before.dtype);
  expect(after.shape).toEqual(before.shape);
  expect(Array.from(after.numbers())).toEqual(Array.from(before.numbers()));
  return result.stats;
}

/** Packs values of `bits` bits into bytes, least significant bit first. */
function packBits(values: number[], bits: number, byteCount: number): number[] {
  const bytes = new Array<number>(byteCount).fill(0);
  values.forEach((v, i) => {
    for (let b = 0; b < bits; b++) if ((v >> b) & 1) bytes[(i * bits + b) >> 3] |= 1 << ((i * bits + b) & 7);
  });
  return bytes;
}

interface NBitsCase {
  k: number;
  n: number;
  bits: number;
  blockSize: number;
  zeroPoints?: 'packed' | 'float';
  bias?: boolean;
  dtype?: 'f32' | 'f16';
  gIdx?: number[];
  /** B, scales, zero points (and an f32 bias) as graph inputs instead of initializers. */
  runtime?: boolean;
}

function nbitsModel(c: NBitsCase): { model: Model; feeds: Map<string, Tensor> } {
  const random = seededRandom(c.k * 131 + c.n * 7 + c.bits);
  const dtype = c.dtype ?? 'f32';
  const blocks = Math.ceil(c.k / c.blockSize);
  const blob = (c.blockSize * c.bits) / 8;
  const bBytes: number[] = [];
  for (let row = 0; row < c.n; row++) {
    for (let blk = 0; blk < blocks; blk++) {
      const codes = Array.from({ length: c.blockSize }, () => Math.floor(random() * 2 ** c.bits));
      bBytes.push(...packBits(codes, c.bits, blob));
    }
  }
  const initializers: Record<string, Tensor> = {
    B: Tensor.fromNumbers('u8', [c.n, blocks, blob], bBytes),
    scales: Tensor.fromNumbers(dtype, [c.n * blocks], Array.from({ length: c.n * blocks }, () => 0.001 + random() * 0.05)),
  };
  const inputs = ['A', 'B', 'scales', '', '', ''];
  if (c.zeroPoints === 'packed') {
    const rowBytes = Math.ceil((blocks * c.bits) / 8);
    const bytes: number[] = [];
    for (let row = 0; row < c.n; row++) {
      bytes.push(...packBits(Array.from({ length: blocks }, () => Math.floor(random() * 2 ** c.bits)), c.bits, rowBytes));
    }
    initializers.zp = Tensor.fromNumbers('u8', [c.n * rowBytes], bytes);
    inputs[3] = 'zp';
  } else if (c.zeroPoints === 'float') {
    initializers.zp = Tensor.fromNumbers(dtype, [c.n, blocks], Array.from({ length: c.n * blocks }, () => random() * 2 ** c.bits));
    inputs[3] = 'zp';
  }
  if (c.gIdx) {
    initializers.g_idx = Tensor.fromNumbers('i32', [c.k], c.gIdx);
    inputs[4] = 'g_idx';
  }
  if (c.bias) {
    initializers.bias = Tensor.fromNumbers(dtype, [c.n], gaussian(5, c.n));
    inputs[5] = 'bias';
  }
  while (inputs[inputs.length - 1] === '') inputs.pop();
  const node: NodeSpec = {
    op: 'MatMulNBits', domain: 'com.microsoft', name: 'mmnb', inputs, outputs: ['Y'],
    attributes: { K: c.k, N: c.n, bits: c.bits, block_size: c.blockSize, accuracy_level: 4 },
  };
  const feeds = new Map([['A', Tensor.fromNumbers(dtype, [2, 3, c.k], gaussian(c.bits, 6 * c.k))]]);
  const graphInputs = [{ name: 'A', dtype, shape: [2, 3, c.k] }];
  if (c.runtime) {
    for (const name of ['B', 'scales', 'zp', ...(dtype === 'f32' ? ['bias'] : [])]) {
      const tensor = initializers[name];
      if (!tensor) continue;
      graphInputs.push({ name, dtype: tensor.dtype as 'f32', shape: [...tensor.shape] });
      feeds.set(name, tensor);
      delete initializers[name];
    }
  }
  const model = load({
    nodes: [node],
    inputs: graphInputs,
    outputs: [{ name: 'Y', dtype, shape: [2, 3, c.n] }],
    initializers,
    opsets: { '': 21, 'com.microsoft': 1 },
  });
  return { model, feeds };
}

describe('import-prequantized: MatMulNBits', () => {
  const dirs = fs.readdirSync(path.join(MODELS_DIR, 'matmulnbits')).filter((d) => /^matmulnbits_case.*_(initializers|inputs)$/.test(d)).sort();

  it.each(dirs)('%s: imported when constant, exact ONNX Runtime outputs', async (name) => {
    const dir = path.join(MODELS_DIR, 'matmulnbits', name);
    const model = await loadModel(path.join(dir, 'model.onnx'));
    verifyModel(model);
    const data = readTestDataSet(path.join(dir, 'test_data_set_0'));
    const feeds = bindInputs(model.graph, data);
    const expected = data.outputs[0].tensor;
    if (name.endsWith('_inputs')) {
      // B and scales are graph inputs: unpacked at run time by llmcc.UnpackNBits, same result.
      const result = importPrequantizedPass.run(model, undefined);
      expect(result).toEqual({ changed: true, stats: expect.objectContaining({ matmulnbits_runtime_unpacked: 1 }) });
      expect(model.graph.nodes.map((n) => `${n.domain}.${n.op}`)).toEqual(['llmcc.UnpackNBits', 'llmcc.QuantMatMul']);
      const [unpack, matmul] = model.graph.nodes;
      expect(matmul.inputs.slice(1, 4)).toEqual(unpack.outputs);
      expect(model.graph.valueInfo.get(unpack.outputs[0])?.quant).toEqual({
        bits: 4, ternary: false, groupSize: 16, symmetric: !name.includes('asym'), scaleDtype: 'f32', layout: { kind: 'codes-nk' },
      });
      expect(Array.from(run(model, feeds).numbers())).toEqual(Array.from(expected.numbers()));
      return;
    }
    const stats = expectExactImport(model, feeds);
    expect(stats.matmulnbits_imported).toBe(1);
    const node = model.graph.nodes[0];
    expect(node).toMatchObject({ domain: 'llmcc', op: 'QuantMatMul' });
    const asymmetric = name.includes('asym');
    expect(model.graph.valueInfo.get(node.inputs[1])?.quant).toEqual({
      bits: 4, ternary: false, groupSize: 16, symmetric: !asymmetric, scaleDtype: 'f32', layout: { kind: 'codes-nk' },
    });
    expect(node.inputs.length).toBe(asymmetric ? 4 : 3);
    const y = run(model, feeds);
    expect(Array.from(y.numbers())).toEqual(Array.from(expected.numbers()));
  });

  const cases: [string, NBitsCase][] = [
    ['2-bit, packed zero points, bias', { k: 64, n: 5, bits: 2, blockSize: 32, zeroPoints: 'packed', bias: true }],
    ['3-bit (codes straddle bytes)', { k: 64, n: 4, bits: 3, blockSize: 32 }],
    ['4-bit, float zero points, K not a multiple of block_size', { k: 40, n: 3, bits: 4, blockSize: 16, zeroPoints: 'float' }],
    ['5-bit, carried as 8-bit codes', { k: 32, n: 3, bits: 5, blockSize: 16 }],
    ['6-bit, packed zero points', { k: 48, n: 3, bits: 6, blockSize: 16, zeroPoints: 'packed' }],
    ['8-bit, packed zero points', { k: 64, n: 4, bits: 8, blockSize: 32, zeroPoints: 'packed' }],
    ['f16, packed zero points, bias', { k: 64, n: 4, bits: 4, blockSize: 32, zeroPoints: 'packed', bias: true, dtype: 'f16' }],
    ['trivial g_idx', { k: 64, n: 2, bits: 4, blockSize: 32, gIdx: Array.from({ length: 64 }, (_, i) => Math.floor(i / 32)) }],
  ];
  it.each(cases)('%s: bit-identical to MatMulNBits', (_name, c) => {
    const { model, feeds } = nbitsModel(c);
    expectExactImport(model, feeds);
    const node = model.graph.nodes[0];
    expect(node.attributes.get('bits')).toEqual({ kind: 'int', value: [2, 3, 4, 8].includes(c.bits) ? c.bits : 8 });
    expect(model.graph.initializers.get(node.inputs[2])?.dtype).toBe(c.dtype ?? 'f32');
  });

  it.each(cases)('%s, weights as graph inputs: UnpackNBits + QuantMatMul, bit-identical', (_name, c) => {
    const { model, feeds } = nbitsModel({ ...c, runtime: true });
    const stats = expectExactImport(model, feeds);
    expect(stats.matmulnbits_runtime_unpacked).toBe(1);
    const [unpack, matmul] = model.graph.nodes;
    expect(unpack).toMatchObject({ domain: 'llmcc', op: 'UnpackNBits' });
    expect(matmul.attributes.get('bits')).toEqual({ kind: 'int', value: [2, 3, 4, 8].includes(c.bits) ? c.bits : 8 });
    expect(model.graph.valueInfo.get(unpack.outputs[1])?.dtype).toBe(c.dtype ?? 'f32');
  });

  it('rejects a reordering g_idx with an LlmccError naming the node', () => {
    const gIdx = Array.from({ length: 64 }, (_, i) => (i % 2));
    const { model } = nbitsModel({ k: 64, n: 2, bits: 4, blockSize: 32, gIdx });
    const attempt = () => importPrequantizedPass.run(model, undefined);
    expect(attempt).toThrow(LlmccError);
    expect(attempt).toThrow(/g_idx reorders K .*node "mmnb" \(com\.microsoft\.MatMulNBits\)/);
  });
});

describe('import-prequantized: DequantizeLinear → MatMul', () => {
  function dqModel(options: {
    xDtype: 'i4' | 'u4' | 'i2' | 'u2' | 'i8' | 'u8'; k: number; n: number;
    layout: 'blocked' | 'per-channel' | 'per-tensor'; blockSize?: number; zeroPoint?: boolean; dtype?: 'f32' | 'f16';
    scale?: (i: number) => number; consumers?: number;
  }): { model: Model; feeds: Map<string, Tensor> } {
    const { xDtype, k, n, layout } = options;
    const dtype = options.dtype ?? 'f32';
    const blockSize = options.blockSize ?? 16;
    const random = seededRandom(k + n);
    const [lo, hi] = { i4: [-8, 7], u4: [0, 15], i2: [-2, 1], u2: [0, 3], i8: [-128, 127], u8: [0, 255] }[xDtype];
    const draw = () => lo + Math.floor(random() * (hi - lo + 1));
    const paramShape = layout === 'blocked' ? [Math.ceil(k / blockSize), n] : layout === 'per-channel' ? [n] : [];
    const paramSize = paramShape.reduce((a, b) => a * b, 1);
    const initializers: Record<string, Tensor> = {
      x: Tensor.fromNumbers(xDtype, [k, n], Array.from({ length: k * n }, draw)),
      s: Tensor.fromNumbers(dtype, paramShape, Array.from({ length: paramSize }, (_, i) => options.scale?.(i) ?? 0.002 + random() * 0.03)),
    };
    if (options.zeroPoint) initializers.zp = Tensor.fromNumbers(xDtype, paramShape, Array.from({ length: paramSize }, draw));
    const attributes = layout === 'blocked' ? { axis: 0, block_size: blockSize } : layout === 'per-channel' ? { axis: 1 } : {};
    const consumers = options.consumers ?? 1;
    const nodes: NodeSpec[] = [
      { op: 'DequantizeLinear', name: 'dq', inputs: options.zeroPoint ? ['x', 's', 'zp'] : ['x', 's'], outputs: ['w'], attributes },
    ];
    for (let i = 0; i < consumers; i++) nodes.push({ op: 'MatMul', name: `mm${i}`, inputs: [i === 0 ? 'a' : `y${i - 1}`, 'w'], outputs: [`y${i}`] });
    if (consumers > 1 && k !== n) throw new Error('chained consumers need a square weight');
    const model = load({
      nodes,
      inputs: [{ name: 'a', dtype, shape: [3, k] }],
      outputs: [{ name: `y${consumers - 1}`, dtype, shape: [3, n] }],
      initializers,
      opsets: { '': 21 },
    });
    return { model, feeds: new Map([['a', Tensor.fromNumbers(dtype, [3, k], gaussian(3, 3 * k))]]) };
  }

  const cases: [string, Parameters<typeof dqModel>[0]][] = [
    ['int4 blocked with zero point', { xDtype: 'i4', k: 64, n: 8, layout: 'blocked', zeroPoint: true }],
    ['int4 blocked, no zero point (offset-binary default)', { xDtype: 'i4', k: 64, n: 8, layout: 'blocked' }],
    ['uint4 blocked, K not a multiple of block_size', { xDtype: 'u4', k: 40, n: 4, layout: 'blocked', zeroPoint: true }],
    ['int2 blocked with zero point', { xDtype: 'i2', k: 64, n: 4, layout: 'blocked', blockSize: 32, zeroPoint: true }],
    ['uint2 blocked, no zero point', { xDtype: 'u2', k: 64, n: 4, layout: 'blocked', blockSize: 32 }],
    ['int8 per output channel', { xDtype: 'i8', k: 32, n: 4, layout: 'per-channel', zeroPoint: true }],
    ['uint8 per tensor', { xDtype: 'u8', k: 32, n: 4, layout: 'per-tensor', zeroPoint: true }],
    ['f16 with exactly representable weights', { xDtype: 'i4', k: 32, n: 4, layout: 'blocked', dtype: 'f16', scale: (i) => 2 ** -(i % 5) }],
  ];
  it.each(cases)('%s: bit-identical to DequantizeLinear → MatMul', (_name, options) => {
    const { model, feeds } = dqModel(options);
    const stats = expectExactImport(model, feeds);
    expect(stats.dequantize_matmul_imported).toBe(1);
    expect(model.graph.initializers.has('x')).toBe(false);
  });

  it('i4 without zero point reads as symmetric offset-binary: no zero_points input', () => {
    const { model } = dqModel({ xDtype: 'i4', k: 32, n: 4, layout: 'blocked' });
    importPrequantizedPass.run(model, undefined);
    const node = model.graph.nodes[0];
    expect(node.inputs).toHaveLength(3);
    expect(model.graph.valueInfo.get(node.inputs[1])?.quant).toMatchObject({ bits: 4, symmetric: true, groupSize: 16 });
  });

  it('one weight read by two MatMuls keeps one copy of its codes', () => {
    const { model, feeds } = dqModel({ xDtype: 'i4', k: 32, n: 32, layout: 'blocked', zeroPoint: true, consumers: 2 });
    expectExactImport(model, feeds);
    const [first, second] = model.graph.nodes;
    expect(first.inputs.slice(1)).toEqual(second.inputs.slice(1));
    expect([...model.graph.initializers.keys()].filter((k) => k.endsWith('_codes'))).toHaveLength(1);
  });

  it('leaves f16 weights that DequantizeLinear would round alone', () => {
    const { model } = dqModel({ xDtype: 'i4', k: 32, n: 4, layout: 'blocked', dtype: 'f16', scale: () => 1 + 2 ** -10 });
    const result = importPrequantizedPass.run(model, undefined);
    expect(result).toEqual({ changed: false, stats: expect.objectContaining({ dequantize_skipped_dq_inexact: 1 }) });
    expect(model.graph.nodes.map((n) => n.op)).toEqual(['DequantizeLinear', 'MatMul']);
  });

  it('ignores blocking along N (not a K grouping)', () => {
    const model = load({
      nodes: [
        { op: 'DequantizeLinear', name: 'dq', inputs: ['x', 's'], outputs: ['w'], attributes: { axis: 1, block_size: 4 } },
        { op: 'MatMul', name: 'mm', inputs: ['a', 'w'], outputs: ['y'] },
      ],
      inputs: [{ name: 'a', dtype: 'f32', shape: [1, 16] }],
      outputs: [{ name: 'y', dtype: 'f32', shape: [1, 8] }],
      initializers: { x: Tensor.fromNumbers('i4', [16, 8], new Array(128).fill(1)), s: Tensor.fromNumbers('f32', [16, 2], new Array(32).fill(0.5)) },
      opsets: { '': 21 },
    });
    expect(importPrequantizedPass.run(model, undefined).stats.dequantize_skipped_dq_layout).toBe(1);
  });
});
