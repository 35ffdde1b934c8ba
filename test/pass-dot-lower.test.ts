/**
 * passes/dot-lower.ts: QuantMatMul → QuantizeActQ8 + QuantMatMulQ8 (the int8-activation dot
 * path) — the lowered graph runs on the reference interpreter close to the float one, shares
 * one quantizer per activation, round-trips through the text IR, leaves layers the layout
 * cannot take (group size, zero points) for the LUT lowering, and `--matmul` picks widths per target.
 */
import { describe, expect, it } from 'vitest';
import type { Model } from '../ir/graph.js';
import { Tensor } from '../ir/tensor.js';
import { verifyModel } from '../ir/verify.js';
import { parseModel } from '../ir/text/parse.js';
import { printModel } from '../ir/text/print.js';
import { dotLowerPass, DOT_WIDTHS } from '../passes/dot-lower.js';
import { runLoweringPipeline } from '../passes/pipeline.js';
import { dotWidthsFor, loweringFromFlags, type LoweringFlags } from '../src/cli/lowering-options.js';
import { NEON_DOT_WIDTHS, NEON_NO_DOTPROD_DOT_WIDTHS } from '../targets/neon/matmul-choice.js';
import { maxScaledError, model, node, quantWeights, randomTensor, rng, run } from './helpers/lut-graph.js';

const K = 64;

interface Layer { name: string; input: string; bits: number; ternary?: boolean; zero?: number[]; G: number; N: number; bias?: boolean }

function buildModel(layers: Layer[], seed: number): Model {
  const random = rng(seed);
  const weights: Record<string, Tensor> = {};
  const nodes = layers.map((l) => {
    const q = quantWeights(random, l.N, K, l.bits, l.G, { ternary: l.ternary, bias: l.bias });
    weights[`${l.name}_codes`] = q.codes;
    weights[`${l.name}_scales`] = q.scales;
    const inputs = [l.input, `${l.name}_codes`, `${l.name}_scales`];
    const zero = l.zero ? Tensor.fromNumbers('f32', [l.N, K / l.G], Array.from({ length: l.N * (K / l.G) }, (_, i) => l.zero![i % l.zero!.length])) : q.zeroPoints;
    if (zero) weights[`${l.name}_zp`] = zero;
    if (q.bias) weights[`${l.name}_bias`] = q.bias;
    inputs.push(zero ? `${l.name}_zp` : '', q.bias ? `${l.name}_bias` : '');
    while (inputs[inputs.length - 1] === '') inputs.pop();
    return node('QuantMatMul', inputs, [l.name], { bits: l.bits, group_size: l.G, ternary: l.ternary ? 1 : 0, K, N: l.N }, 'llmcc', `mm_${l.name}`);
  });
  return model({
    inputs: [{ name: 'a', dtype: 'f32', shape: [2, K] }, { name: 'b', dtype: 'f32', shape: [2, K] }],
    outputs: layers.map((l) => ({ name: l.name, dtype: 'f32' })),
    nodes,
    weights,
  });
}

const LAYERS: Layer[] = [
  { name: 'q', input: 'a', bits: 4, G: 32, N: 12, bias: true },
  { name: 'k', input: 'a', bits: 2, ternary: true, G: 32, N: 8 },
  { name: 'v', input: 'a', bits: 3, G: 32, N: 6, zero: [3, 5] },
  { name: 'o', input: 'b', bits: 8, G: 64, N: 5, bias: true },
  { name: 'u', input: 'b', bits: 2, G: 16, N: 4, zero: [1.5] },
  { name: 'w1', input: 'b', bits: 1, G: 32, N: 4 },
];

describe('dot-lower', () => {
  it('rewrites every QuantMatMul, shares one quantizer per activation and group size, and stays close to the float graph', () => {
    const original = buildModel(LAYERS, 3);
    const lowered = buildModel(LAYERS, 3);
    const result = dotLowerPass.run(lowered, { widths: DOT_WIDTHS });
    expect(result.changed).toBe(true);
    expect(result.stats.lowered).toBe(LAYERS.length);
    // a: one group size (32); b: three (64, 16, 32).
    expect(result.stats.quantizers).toBe(4);
    const ops = lowered.graph.nodes.map((n) => n.op);
    expect(ops.filter((o) => o === 'QuantizeActQ8')).toHaveLength(4);
    expect(ops.filter((o) => o === 'QuantMatMulQ8')).toHaveLength(LAYERS.length);
    expect(ops).not.toContain('QuantMatMul');
    // The codes are gone: only the packed layout is stored.
    expect([...lowered.graph.initializers.keys()].some((n) => n.endsWith('_codes'))).toBe(false);
    verifyModel(lowered);
    const random = rng(11);
    const feeds = { a: randomTensor('f32', [2, K], random), b: randomTensor('f32', [2, K], random) };
    const want = run(original, feeds);
    const got = run(lowered, feeds);
    for (const l of LAYERS) expect(maxScaledError(got.get(l.name)!, want.get(l.name)!), l.name).toBeLessThan(0.03);
  });

  it('round-trips through the text IR and evaluates the same after parsing', () => {
    const lowered = buildModel(LAYERS, 4);
    dotLowerPass.run(lowered, { widths: DOT_WIDTHS });
    const text = printModel(lowered, { inlineLimit: Infinity });
    const parsed = parseModel(text);
    expect(printModel(parsed, { inlineLimit: Infinity })).toBe(text);
    verifyModel(parsed);
    const random = rng(5);
    const feeds = { a: randomTensor('f32', [2, K], random), b: randomTensor('f32', [2, K], random) };
    const x = run(lowered, feeds), y = run(parsed, feeds);
    for (const l of LAYERS) expect(Array.from(y.get(l.name)!.numbers())).toEqual(Array.from(x.get(l.name)!.numbers()));
  });

  it('leaves for the LUT lowering what the layout cannot take, and the widths not asked for', () => {
    const m = buildModel([
      { name: 'g8', input: 'a', bits: 2, G: 8, N: 4 },            // 2-bit chunks cover 16 k
      { name: 'zq', input: 'a', bits: 4, G: 32, N: 4, zero: [2.25] }, // not a whole or half zero point
      { name: 'four', input: 'a', bits: 4, G: 32, N: 4 },
      { name: 'two', input: 'a', bits: 2, G: 32, N: 4 },
    ], 6);
    const result = dotLowerPass.run(m, { widths: ['2', '4'] });
    expect(result.stats).toMatchObject({ lowered: 2, skippedGroupSize: 1, skippedZeroPoints: 1 });
    const byOutput = new Map(m.graph.nodes.map((n) => [n.outputs[0], n.op]));
    expect([byOutput.get('g8'), byOutput.get('zq'), byOutput.get('four'), byOutput.get('two')]).toEqual(['QuantMatMul', 'QuantMatMul', 'QuantMatMulQ8', 'QuantMatMulQ8']);
    const only4 = buildModel([{ name: 'four', input: 'a', bits: 4, G: 32, N: 4 }, { name: 'two', input: 'a', bits: 2, G: 32, N: 4 }], 7);
    dotLowerPass.run(only4, { widths: ['4'] });
    expect(only4.graph.nodes.map((n) => n.op)).toEqual(['QuantizeActQ8', 'QuantMatMulQ8', 'QuantMatMul']);
  });

  it('the reference ops check their inputs and name the node', () => {
    const m = buildModel([{ name: 'q', input: 'a', bits: 4, G: 32, N: 8 }], 9);
    dotLowerPass.run(m, { widths: DOT_WIDTHS });
    const mm = m.graph.nodes.find((n) => n.op === 'QuantMatMulQ8')!;
    mm.attributes.set('N', { kind: 'int', value: 12 });
    expect(() => verifyModel(m)).toThrow(/packed must have shape \[3,2,64\].*mm_q_dot/);
    mm.attributes.set('N', { kind: 'int', value: 8 });
    mm.attributes.set('group_size', { kind: 'int', value: 12 });
    expect(() => verifyModel(m)).toThrow(/group_size 12 is not a multiple of 8/);
  });

  it('--matmul: dot takes every width, lut none, auto the target default (neon: its measured choice; wasm: LUT)', () => {
    expect(dotWidthsFor('dot', 'wasm')).toEqual(DOT_WIDTHS);
    expect(dotWidthsFor('lut', 'neon')).toEqual([]);
    expect(dotWidthsFor('auto', 'neon')).toEqual(NEON_DOT_WIDTHS);
    expect(dotWidthsFor('auto', 'neon', 'cortex-a53')).toEqual(NEON_NO_DOTPROD_DOT_WIDTHS);
    expect(dotWidthsFor('auto', 'wasm')).toEqual([]);
    const flags: LoweringFlags = { group: '32', table: 'i8', g: '4', fuse: true, bits: '4', matmul: 'auto', target: 'neon' };
    // neon compiles with wasm's layouts: the command's own --target still picks the default.
    expect(loweringFromFlags(flags, 'wasm').dot?.widths).toEqual(NEON_DOT_WIDTHS);
    expect(loweringFromFlags({ ...flags, cpu: 'cortex-a53' }, 'wasm').dot?.widths).toEqual(NEON_NO_DOTPROD_DOT_WIDTHS);
    // The pipeline runs dot-lower before lut-lower: a dot width never reaches the LUT pass.
    const m = buildModel([{ name: 'four', input: 'a', bits: 4, G: 32, N: 8 }, { name: 'two', input: 'a', bits: 2, G: 32, N: 16 }], 8);
    const records = runLoweringPipeline(m, { lut: { g: 4, table: 'i8' }, dot: { widths: ['4'] }, fusion: false });
    expect(records.map((r) => r.pass)).toEqual(['import-prequantized', 'dot-lower', 'lut-lower', 'fuse-lut-precompute']);
    expect(m.graph.nodes.map((n) => n.op)).toEqual(['QuantizeActQ8', 'QuantMatMulQ8', 'LutPrecompute', 'LutMatMul']);
  });
});
