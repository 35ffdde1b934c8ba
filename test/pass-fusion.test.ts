import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Model, Node } from '../ir/graph.js';
import { Tensor } from '../ir/tensor.js';
import { interpret } from '../ir/interpreter.js';
import { parseModel } from '../ir/text/parse.js';
import { fusionPass } from '../passes/fusions/index.js';
import { weightFromTensor } from '../passes/graph-edit.js';
import { runFusionPipeline, runLoweringPipeline, type PassRecord } from '../passes/pipeline.js';
import { sessionFromCompiled } from '../src/runtime/index.js';
import { compileWasm } from '../targets/wasm/compile.js';
import { encodeTensorProto } from '../src/onnx/tensor-proto.js';
import { llmcc } from './helpers/cli.js';
import { model, node, randomTensor, rng } from './helpers/lut-graph.js';
import { decoderInput, primitiveDecoder, primitiveDecoderBytes, type DecoderSpec } from './helpers/primitive-decoder.js';

/**
 * Graph fusions (passes/fusions) on decoders written in primitive ops as torch.onnx / tf2onnx
 * export them: each rule fires the expected number of times, and the fused graph computes what
 * the unfused one does (within 1e-4, f32) on the reference interpreter and on wasm.
 */

const TOLERANCE = 1e-4;

function runRef(m: Model, feeds: Map<string, Tensor>): Tensor {
  return interpret(m.graph, feeds, { opsets: m.opsets }).get('logits')!;
}

function maxAbsDiff(a: Tensor, b: Tensor): number {
  const x = a.numbers(), y = b.numbers();
  expect(x.length).toBe(y.length);
  let worst = 0;
  for (let i = 0; i < x.length; i++) worst = Math.max(worst, Math.abs(x[i] - y[i]));
  return worst;
}

function statsOf(records: PassRecord[], pass: string): Record<string, number> {
  return records.find((r) => r.pass === pass)!.result.stats;
}

/** The rule counters that fired (nonzero), without the bookkeeping ones. */
function fired(stats: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(stats).filter(([k, v]) => v !== 0 && k !== 'deadNodesRemoved'));
}

interface Case {
  title: string;
  spec: Partial<DecoderSpec>;
  graph: Record<string, number>;
  epilogue: Record<string, number>;
  /** Ops left in the fused graph. */
  ops: string[];
  wasm?: boolean;
}

// 2 layers: 5 norms (2 per layer + final), 4 of them after a residual Add.
const cases: Case[] = [
  {
    title: 'Llama style (TorchScript): RMSNorm Div, SwiGLU, no biases, Div scale, causal mask',
    spec: {},
    graph: { 'rms-norm': 5, 'skip-norm': 4, silu: 2, swiglu: 2, 'merge-parallel-matmuls': 4, attention: 2 },
    epilogue: {},
    ops: ['MatMul', 'MultiHeadAttention', 'SimplifiedLayerNormalization', 'SkipSimplifiedLayerNormalization', 'Split', 'SwiGLU'],
    wasm: true,
  },
  {
    title: 'HF Llama RMSNorm with Cast to f32 and back, Reciprocal',
    spec: { norm: 'rms-cast' },
    graph: { 'rms-norm': 5, 'skip-norm': 4, silu: 2, swiglu: 2, 'merge-parallel-matmuls': 4, attention: 2 },
    epilogue: {},
    ops: ['MatMul', 'MultiHeadAttention', 'SimplifiedLayerNormalization', 'SkipSimplifiedLayerNormalization', 'Split', 'SwiGLU'],
  },
  {
    title: 'Qwen-like: QKV biases, Gelu (erf) MLP with biases, Mul scale, Reshape shapes computed from Shape',
    spec: { norm: 'rms-reciprocal', mlp: 'gelu-erf', qkvBias: true, mlpBias: true, reshape: 'computed', scale: 'mul' },
    graph: { 'gelu-erf': 2, 'rms-norm': 5, 'skip-norm': 4, 'merge-parallel-matmuls': 2, attention: 2 },
    epilogue: { 'matmul-bias-activation': 2, 'matmul-bias': 4 },
    ops: ['FusedMatMul', 'MatMul', 'MultiHeadAttention', 'SimplifiedLayerNormalization', 'SkipSimplifiedLayerNormalization', 'Split'],
    wasm: true,
  },
  {
    title: 'GPT-2 style: LayerNorm, tanh Gelu with biases',
    spec: { norm: 'layer', mlp: 'gelu-tanh', mlpBias: true },
    graph: { 'layer-norm': 5, 'skip-norm': 4, 'gelu-tanh': 2, 'merge-parallel-matmuls': 2, attention: 2 },
    epilogue: { 'matmul-bias-activation': 2, 'matmul-bias': 2 },
    ops: ['FusedMatMul', 'LayerNormalization', 'MatMul', 'MultiHeadAttention', 'SkipLayerNormalization', 'Split'],
    wasm: true,
  },
  {
    title: 'tf2onnx Keras LayerNorm (x·inv + (beta − mean·inv)), Mul scale',
    spec: { norm: 'layer-tf2onnx', mlp: 'gelu-erf', scale: 'mul' },
    graph: { 'layer-norm': 5, 'skip-norm': 4, 'gelu-erf': 2, 'merge-parallel-matmuls': 2, attention: 2 },
    epilogue: { 'matmul-activation': 2 },
    ops: ['FusedMatMul', 'LayerNormalization', 'MatMul', 'MultiHeadAttention', 'SkipLayerNormalization', 'Split'],
  },
  {
    title: 'Relu MLP without a mask',
    spec: { mlp: 'relu', mlpBias: true, mask: false },
    graph: { 'rms-norm': 5, 'skip-norm': 4, 'merge-parallel-matmuls': 2, attention: 2 },
    epilogue: { 'matmul-bias-activation': 2, 'matmul-bias': 2 },
    ops: ['FusedMatMul', 'MatMul', 'MultiHeadAttention', 'SimplifiedLayerNormalization', 'SkipSimplifiedLayerNormalization', 'Split'],
  },
];

describe('fusions on primitive-op decoders', () => {
  for (const c of cases) {
    it(c.title, async () => {
      const feeds = new Map([['hidden_states', decoderInput(c.spec)]]);
      const reference = runRef(primitiveDecoder(c.spec), feeds);
      const m = primitiveDecoder(c.spec);
      const records = runFusionPipeline(m);
      expect(fired(statsOf(records, 'fusion'))).toEqual(c.graph);
      expect(fired(statsOf(records, 'fusion-epilogue'))).toEqual(c.epilogue);
      expect([...new Set(m.graph.nodes.map((n) => n.op))].sort()).toEqual(c.ops);
      expect(maxAbsDiff(runRef(m, feeds), reference)).toBeLessThan(TOLERANCE);
      if (c.wasm) {
        const session = await sessionFromCompiled(await compileWasm(m));
        const onWasm = (await session.run(feeds)).get('logits')!;
        expect(maxAbsDiff(onWasm, reference)).toBeLessThan(TOLERANCE);
      }
    }, 120_000);
  }

  it('is idempotent: a second run finds nothing more', () => {
    const m = primitiveDecoder({ mlp: 'gelu-erf', mlpBias: true, qkvBias: true });
    runFusionPipeline(m);
    const again = runFusionPipeline(m);
    expect(again.every((r) => !r.result.changed)).toBe(true);
  });

  it('makes the table precompute fuse into the norms of a primitive-op graph (--lower --bits 4)', () => {
    const lower = (fusion: boolean): { m: Model; records: PassRecord[] } => {
      const m = primitiveDecoder();
      const records = runLoweringPipeline(m, { quantize: { bits: 4, groupSize: 16, symmetric: true, ternary: false, keep: [] }, lut: { table: 'f32' }, fusion });
      return { m, records };
    };
    const fused = lower(true);
    const unfused = lower(false);
    // 5 norms, each feeding one (merged) projection's table precompute: QKV, gate/up, lm_head.
    expect(statsOf(fused.records, 'fuse-lut-precompute').fused).toBe(5);
    expect(statsOf(unfused.records, 'fuse-lut-precompute').fused).toBe(0);
    // Q/K/V and gate/up are one LUT matmul each once merged: 4 per layer + lm_head, against 7 + 1.
    const lutMatMuls = (m: Model): number => m.graph.nodes.filter((n) => n.op === 'LutMatMul').length;
    expect(lutMatMuls(fused.m)).toBe(9);
    expect(lutMatMuls(unfused.m)).toBe(15);
    const feeds = new Map([['hidden_states', decoderInput()]]);
    const a = runRef(fused.m, feeds), b = runRef(unfused.m, feeds);
    const scale = Math.max(...b.numbers().map(Math.abs));
    expect(maxAbsDiff(a, b) / scale).toBeLessThan(1e-3);
  });
});

describe('llmcc.FusedMatMul', () => {
  it('matches MatMul + Add + activation on the reference and on wasm, for each activation (N = 7: vector body and scalar tail)', async () => {
    const random = rng(11);
    const activations = ['none', 'relu', 'gelu', 'gelu_tanh', 'silu'];
    const unfusedActivation: Record<string, (input: string, out: string) => Node[]> = {
      none: (i, o) => [node('Identity', [i], [o], {}, '')],
      relu: (i, o) => [node('Relu', [i], [o], {}, '')],
      gelu: (i, o) => [node('Gelu', [i], [o], {}, '')],
      gelu_tanh: (i, o) => [node('Gelu', [i], [o], { approximate: 'tanh' }, '')],
      silu: (i, o) => [node('Swish', [i], [o], { alpha: { kind: 'float', value: 1 } }, '')],
    };
    const weights = { w: randomTensor('f32', [12, 7], random), b: randomTensor('f32', [7], random) };
    const make = (fused: boolean): Model => model({
      inputs: [{ name: 'a', dtype: 'f32', shape: [2, 3, 12] }],
      outputs: activations.map((act) => ({ name: `y_${act}`, dtype: 'f32' as const })),
      nodes: activations.flatMap((act) => (fused
        ? [node('FusedMatMul', ['a', 'w', 'b'], [`y_${act}`], { activation: act }, 'llmcc', `fused_${act}`)]
        : [node('MatMul', ['a', 'w'], [`mm_${act}`], {}, ''), node('Add', [`mm_${act}`, 'b'], [`sum_${act}`], {}, ''),
          ...unfusedActivation[act](`sum_${act}`, `y_${act}`)])),
      weights,
    });
    const feeds = new Map([['a', randomTensor('f32', [2, 3, 12], random)]]);
    const reference = interpret(make(false).graph, feeds, { opsets: make(false).opsets });
    const fusedModel = make(true);
    const onRef = interpret(fusedModel.graph, feeds, { opsets: fusedModel.opsets });
    const onWasm = await (await sessionFromCompiled(await compileWasm(fusedModel))).run(feeds);
    for (const act of activations) {
      expect(maxAbsDiff(onRef.get(`y_${act}`)!, reference.get(`y_${act}`)!), act).toBeLessThan(1e-6);
      expect(maxAbsDiff(onWasm.get(`y_${act}`)!, reference.get(`y_${act}`)!), act).toBeLessThan(TOLERANCE);
    }
  }, 60_000);
});

describe('fusions that must not fire', () => {
  const H = 16;
  const random = rng(3);
  const gamma = randomTensor('f32', [H], random);
  const f = (v: number): Tensor => Tensor.fromNumbers('f32', [], [v]);
  const axes = Tensor.fromNumbers('i64', [1], [-1]);
  const x = { name: 'x', dtype: 'f32' as const, shape: [2, 3, H] };

  /** RMSNorm in primitive ops; `variant` bends one thing. */
  function rms(variant: 'ok' | 'eps-after-sqrt' | 'variance-read' | 'mean-over-rows'): Model {
    const meanAxes = variant === 'mean-over-rows' ? 'axes0' : 'axes';
    const nodes: Node[] = [
      node('Pow', ['x', 'two'], ['sq'], {}, ''),
      node('ReduceMean', ['sq', meanAxes], ['var'], { keepdims: 1 }, ''),
      ...(variant === 'eps-after-sqrt'
        ? [node('Sqrt', ['var'], ['root0'], {}, ''), node('Add', ['root0', 'eps'], ['root'], {}, '')]
        : [node('Add', ['var', 'eps'], ['vareps'], {}, ''), node('Sqrt', ['vareps'], ['root'], {}, '')]),
      node('Div', ['x', 'root'], ['normed'], {}, ''),
      node('Mul', ['normed', 'gamma'], ['out'], {}, ''),
    ];
    const outputs = [{ name: 'out', dtype: 'f32' as const }, ...(variant === 'variance-read' ? [{ name: 'var', dtype: 'f32' as const }] : [])];
    return model({
      inputs: [x], outputs, nodes,
      weights: { two: f(2), eps: f(1e-6), gamma, axes, axes0: Tensor.fromNumbers('i64', [1], [0]) },
    });
  }

  function graphStats(m: Model): Record<string, number> {
    return fusionPass.run(m, { stage: 'graph' }).stats;
  }

  it('fires on the well-formed RMSNorm (control)', () => {
    expect(graphStats(rms('ok'))['rms-norm']).toBe(1);
  });

  it('not when epsilon is added after the square root', () => {
    expect(graphStats(rms('eps-after-sqrt'))['rms-norm']).toBe(0);
  });

  it('not when an intermediate (the variance) is read elsewhere', () => {
    expect(graphStats(rms('variance-read'))['rms-norm']).toBe(0);
  });

  it('not when the mean is over another axis', () => {
    expect(graphStats(rms('mean-over-rows'))['rms-norm']).toBe(0);
  });

  function projections(weightsAreInputs: boolean): Model {
    const names = ['wq', 'wk', 'wv'];
    const weights = Object.fromEntries(names.map((n) => [n, randomTensor('f32', [H, H], random)]));
    return model({
      inputs: [x, ...(weightsAreInputs ? names.map((name) => ({ name, dtype: 'f32' as const, shape: [H, H] })) : [])],
      outputs: ['q', 'k', 'v'].map((name) => ({ name: `${name}_out`, dtype: 'f32' as const })),
      nodes: ['q', 'k', 'v'].flatMap((p, i) => [node('MatMul', ['x', names[i]], [p], {}, ''), node('Relu', [p], [`${p}_out`], {}, '')]),
      weights: weightsAreInputs ? {} : weights,
    });
  }

  it('merges Q/K/V with constant weights (control) but not with weights fed as inputs', () => {
    expect(graphStats(projections(false))['merge-parallel-matmuls']).toBe(1);
    expect(graphStats(projections(true))['merge-parallel-matmuls']).toBe(0);
  });

  it('not Gelu with a wrong constant, nor SiLU of two different values', () => {
    const m = model({
      inputs: [x, { name: 'y', dtype: 'f32', shape: [2, 3, H] }],
      outputs: [{ name: 'g', dtype: 'f32' }, { name: 's', dtype: 'f32' }],
      nodes: [
        node('Div', ['x', 'sqrt2'], ['xd'], {}, ''), node('Erf', ['xd'], ['e'], {}, ''), node('Add', ['e', 'one'], ['e1'], {}, ''),
        node('Mul', ['x', 'half'], ['xh'], {}, ''), node('Mul', ['xh', 'e1'], ['g'], {}, ''),
        node('Sigmoid', ['y'], ['sy'], {}, ''), node('Mul', ['x', 'sy'], ['s'], {}, ''),
      ],
      weights: { sqrt2: f(Math.SQRT2), one: f(1), half: f(0.6) },
    });
    const stats = graphStats(m);
    expect(stats['gelu-erf']).toBe(0);
    expect(stats.silu).toBe(0);
  });
});

describe('attention and skip fusions that must not fire', () => {
  it('not attention whose Softmax runs over another axis, nor Skip over an Add of a constant', () => {
    const spec = { layers: 1, mask: false };
    const m = primitiveDecoder(spec);
    const softmax = m.graph.nodes.find((n) => n.op === 'Softmax')!;
    softmax.attributes.set('axis', { kind: 'int', value: 2 });
    // The first residual Add's skip input becomes a constant: a bias, not a residual.
    const residual = m.graph.nodes.find((n) => n.op === 'Add' && n.inputs[0] === 'hidden_states')!;
    const bias = 'constant_residual';
    m.graph.initializers.set(bias, weightFromTensor(bias, decoderInput(spec, 9)));
    residual.inputs[1] = bias;
    const stats = fusionPass.run(m, { stage: 'graph' }).stats;
    expect(stats.attention).toBe(0);
    expect(stats['rms-norm']).toBe(3);
    expect(stats['skip-norm']).toBe(1);
  });
});

describe('CLI', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'llmcc-fusion-'));
  const file = path.join(dir, 'decoder.onnx');
  fs.writeFileSync(file, primitiveDecoderBytes());

  it('compile --emit ir --lower --stats shows what fired, and the IR stays parseable', () => {
    const r = llmcc('compile', file, '--emit', 'ir', '--lower', '--stats');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/pass fusion: changed .*rms-norm=5 .*skip-norm=4/);
    expect(r.stdout).toMatch(/^llmcc\.ir 1\n\/\/ pass fusion: changed .*attention=2/);
    const parsed = parseModel(r.stdout);
    expect(parsed.graph.nodes.filter((n) => n.op === 'MultiHeadAttention')).toHaveLength(2);
  });

  it('compile --target wasm fuses by default; --no-fusion keeps the primitive ops', () => {
    const out = path.join(dir, 'd.llmcc');
    const oneLayer = path.join(dir, 'decoder1.onnx');
    fs.writeFileSync(oneLayer, primitiveDecoderBytes({ layers: 1 }));
    const fusedRun = llmcc('compile', oneLayer, '--target', 'wasm', '-o', out, '--stats', '--no-tuning');
    expect(fusedRun.code, fusedRun.stderr).toBe(0);
    expect(fusedRun.stderr).toMatch(/pass fusion: changed/);
    const plainRun = llmcc('compile', oneLayer, '--target', 'wasm', '-o', out, '--stats', '--no-fusion', '--no-tuning');
    expect(plainRun.code, plainRun.stderr).toBe(0);
    expect(plainRun.stderr).not.toMatch(/pass fusion/);
    const steps = (s: string): number => Number(/for (\d+) kernel steps/.exec(s)![1]);
    expect(steps(fusedRun.stdout)).toBeLessThan(steps(plainRun.stdout));
  }, 120_000);

  it('run --target wasm fuses by default and matches the unfused reference outputs', () => {
    const data = path.join(dir, 'test_data_set_0');
    fs.mkdirSync(data, { recursive: true });
    const input = decoderInput();
    const expected = runRef(primitiveDecoder(), new Map([['hidden_states', input]]));
    fs.writeFileSync(path.join(data, 'input_0.pb'), encodeTensorProto(input, 'hidden_states'));
    fs.writeFileSync(path.join(data, 'output_0.pb'), encodeTensorProto(expected, 'logits'));
    const r = llmcc('run', file, '--data', data, '--target', 'wasm', '--stats');
    expect(r.stdout).toMatch(/pass fusion: changed .*attention=2/);
    expect(r.stdout).toMatch(/output 0 'logits' .* ok/);
    expect(r.code, r.stderr).toBe(0);
  }, 120_000);
});
