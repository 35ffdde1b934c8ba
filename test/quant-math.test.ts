import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { LlmccError } from '../ir/errors.js';
import { f16BitsToNumber, numberToF16Bits, roundToF16 } from '../ir/float.js';
import type { WeightBits } from '../ir/quant.js';
import { dequantize, quantizeRtn, roundScaleUp } from '../passes/quant/rtn.js';
import { quantizeTernary } from '../passes/quant/ternary.js';
import { gaussian, matmulNK, sqnrDb } from '../passes/quant/sqnr.js';
import { compilePattern, parseBitsMap } from '../passes/quant/layers.js';
import { formatQuantReport, type QuantReportRow } from '../passes/quant/report.js';

const GROUPS = [32, 64, 128] as const;
const BITS: WeightBits[] = [1, 2, 3, 4, 8];

/** A random weight matrix: rows × (groups · groupSize) f32 values of mixed magnitudes. */
const weightArb = fc.record({
  n: fc.integer({ min: 1, max: 3 }),
  groupsPerRow: fc.integer({ min: 1, max: 2 }),
  groupSize: fc.constantFrom(...GROUPS),
  magnitude: fc.constantFrom(1e-3, 1, 100),
  seed: fc.integer({ min: 0, max: 2 ** 31 - 1 }),
  offset: fc.double({ min: -2, max: 2, noNaN: true }),
}).map(({ n, groupsPerRow, groupSize, magnitude, seed, offset }) => {
  const k = groupsPerRow * groupSize;
  const w = gaussian(seed, n * k).map((x) => Math.fround((x + offset) * magnitude));
  return { n, k, groupSize, w };
});

function groupOf(q: { k: number; info: { groupSize: number } }, i: number): number {
  const row = Math.floor(i / q.k);
  return row * (q.k / q.info.groupSize) + Math.floor((i % q.k) / q.info.groupSize);
}

describe('RTN quantization', () => {
  it('codes stay within [0, 2^bits - 1] and zero points within range, any scheme', () => {
    fc.assert(fc.property(weightArb, fc.constantFrom(...BITS), fc.boolean(), fc.constantFrom('f32' as const, 'f16' as const),
      ({ n, k, groupSize, w }, bits, symmetric, scaleDtype) => {
        const q = quantizeRtn(w, n, k, { bits, groupSize, symmetric, scaleDtype });
        expect(q.codes.every((c) => c <= 2 ** bits - 1)).toBe(true);
        expect(q.scales.length).toBe(n * (k / groupSize));
        expect(q.scales.every((s) => s >= 0 && (scaleDtype === 'f32' ? Math.fround(s) === s : roundToF16(s) === s))).toBe(true);
        if (q.zeroPoints && bits > 1) expect(q.zeroPoints.every((z) => z >= 0 && z <= 2 ** bits - 1)).toBe(true);
        // Symmetric b >= 3 relies on the default offset-binary zero point; 1 and 2 bits are mid-rise.
        expect(q.zeroPoints === undefined).toBe(symmetric && bits > 2);
        if (symmetric && bits <= 2) expect(q.zeroPoints!.every((z) => z === 2 ** (bits - 1) - 0.5)).toBe(true);
      }), { numRuns: 150 });
  });

  it('every code is the nearest level of its group grid; error <= s/2 inside the grid (bits >= 2)', () => {
    fc.assert(fc.property(weightArb, fc.constantFrom<WeightBits>(2, 3, 4, 8), fc.boolean(), fc.constantFrom('f32' as const, 'f16' as const),
      ({ n, k, groupSize, w }, bits, symmetric, scaleDtype) => {
        const q = quantizeRtn(w, n, k, { bits, groupSize, symmetric, scaleDtype });
        const approx = dequantize(q);
        const zeroDefault = 2 ** (bits - 1);
        for (let i = 0; i < w.length; i++) {
          const group = groupOf(q, i);
          const s = q.scales[group];
          const z = q.zeroPoints ? q.zeroPoints[group] : zeroDefault;
          // Slack for the f32 rounding of the dequantized values.
          const slack = (Math.abs(w[i]) + s * 2 ** bits) * 2 ** -22 + 1e-30;
          const error = Math.abs(w[i] - approx[i]);
          const lowest = (0 - z) * s;
          const highest = (2 ** bits - 1 - z) * s;
          if (w[i] >= lowest && w[i] <= highest) expect(error).toBeLessThanOrEqual(s / 2 + slack);
          else expect(error).toBeLessThanOrEqual(Math.min(Math.abs(w[i] - lowest), Math.abs(w[i] - highest)) + slack);
          // No other level is nearer (round to nearest; only the grid is searched).
          const lower = Math.max(0, Math.floor(w[i] / (s || 1) + z));
          for (const c of [lower - 1, lower, lower + 1, lower + 2]) {
            if (c < 0 || c > 2 ** bits - 1) continue;
            expect(error).toBeLessThanOrEqual(Math.abs(w[i] - (c - z) * s) + slack);
          }
        }
      }), { numRuns: 150 });
  });

  it('the grid search never does worse than the min/max (no clipping) grid', () => {
    fc.assert(fc.property(weightArb, fc.constantFrom<WeightBits>(2, 3, 4, 8), ({ n, k, groupSize, w }, bits) => {
      const q = quantizeRtn(w, n, k, { bits, groupSize, symmetric: true });
      const approx = dequantize(q);
      const half = 2 ** (bits - 1);
      for (let g = 0; g < q.scales.length; g++) {
        const start = Math.floor(g / (k / groupSize)) * k + (g % (k / groupSize)) * groupSize;
        const group = Array.from(w.slice(start, start + groupSize));
        const maxAbs = Math.max(...group.map(Math.abs));
        // The old fixed grid: outer level half a step inside max|w|.
        const s = bits === 2 ? maxAbs / 2 : maxAbs / (half - 0.5);
        const z = bits === 2 ? 1.5 : half;
        let fixedError = 0;
        let searchedError = 0;
        group.forEach((x, i) => {
          const c = s === 0 ? z : Math.max(0, Math.min(2 ** bits - 1, Math.round(x / s + z)));
          fixedError += (x - (c - z) * s) ** 2;
          searchedError += (x - approx[start + i]) ** 2;
        });
        expect(searchedError).toBeLessThanOrEqual(fixedError * (1 + 1e-5) + 1e-30);
      }
    }), { numRuns: 60 });
  });

  it('1-bit symmetric is ±mean|w| per group (zero point 0.5, scale 2·mean|w|)', () => {
    const w = Float32Array.from([0.5, -1, 2, -0.5, ...new Array(28).fill(0.25)]);
    const q = quantizeRtn(w, 1, 32, { bits: 1, groupSize: 32, symmetric: true });
    const meanAbs = w.reduce((s, x) => s + Math.abs(x), 0) / 32;
    expect(q.scales[0]).toBe(Math.fround(2 * meanAbs));
    expect(Array.from(q.zeroPoints!)).toEqual([0.5]);
    expect(Array.from(q.codes.slice(0, 4))).toEqual([1, 0, 1, 0]);
    const approx = dequantize(q);
    expect(approx[0]).toBeCloseTo(meanAbs, 6);
    expect(approx[1]).toBeCloseTo(-meanAbs, 6);
  });

  it('symmetric 3+ bits: z = 2^(b-1), the searched scale is the least-squares fit of the nearest codes', () => {
    // max|w| = 7: the no-clipping grid (s = 7/3.5 = 2) errs by 1 at ±7 and 0.9 at 2.9; the
    // search settles on codes −3, −1, 0, 1, 3 and their least-squares scale 47/20.
    const w = Float32Array.from([-7, -2.1, 0, 2.9, 7, ...new Array(27).fill(0)]);
    const q = quantizeRtn(w, 1, 32, { bits: 3, groupSize: 32, symmetric: true });
    expect(q.scales[0]).toBe(Math.fround(47 / 20));
    expect(q.zeroPoints).toBeUndefined();
    expect(Array.from(q.codes.slice(0, 5))).toEqual([1, 3, 4, 5, 7]);
  });

  it('symmetric 2 bits: four mid-rise levels ±0.5s, ±1.5s (zero point 1.5)', () => {
    const w = Float32Array.from({ length: 32 }, (_, i) => [-3, -1, 1, 3][i % 4]);
    const q = quantizeRtn(w, 1, 32, { bits: 2, groupSize: 32, symmetric: true });
    expect(q.scales[0]).toBe(2);
    expect(Array.from(q.zeroPoints!)).toEqual([1.5]);
    expect(Array.from(q.codes.slice(0, 4))).toEqual([0, 1, 2, 3]);
    expect(Array.from(dequantize(q))).toEqual(Array.from(w));
  });

  it('importance weights steer the grid search: an unimportant outlier is clipped, codes stay nearest', () => {
    const w = Float32Array.from({ length: 32 }, (_, i) => (i === 0 ? 20 : Math.sin(i)));
    const importance = Float32Array.from({ length: 32 }, (_, i) => (i === 0 ? 0 : 1));
    const plain = dequantize(quantizeRtn(w, 1, 32, { bits: 4, groupSize: 32, symmetric: true }));
    const steered = quantizeRtn(w, 1, 32, { bits: 4, groupSize: 32, symmetric: true, importance });
    const approx = dequantize(steered);
    const weightedError = (a: Float32Array) => a.reduce((sum, x, i) => sum + importance[i] * (w[i] - x) ** 2, 0);
    expect(weightedError(approx)).toBeLessThan(weightedError(plain) / 10);
    expect(approx[0]).toBe(Math.fround(7 * steered.scales[0])); // clipped to the top level
    expect(() => quantizeRtn(w, 1, 32, { bits: 4, groupSize: 32, symmetric: true, importance: [1] })).toThrow(/importance has 1 values, expected K=32/);
  });

  it('asymmetric zero points are integers and an all-zero group dequantizes to zeros', () => {
    fc.assert(fc.property(weightArb, fc.constantFrom<WeightBits>(2, 3, 4, 8), ({ n, k, groupSize, w }, bits) => {
      const q = quantizeRtn(w, n, k, { bits, groupSize, symmetric: false });
      expect(q.zeroPoints!.every(Number.isInteger)).toBe(true);
    }), { numRuns: 50 });
    for (const symmetric of [true, false]) {
      const q = quantizeRtn(new Float32Array(64), 2, 32, { bits: 4, groupSize: 32, symmetric });
      expect(dequantize(q).every((x) => x === 0)).toBe(true);
    }
  });

  it('SQNR grows with bits on Gaussian weights (weight and layer output)', () => {
    fc.assert(fc.property(fc.integer({ min: 0, max: 1000 }), fc.constantFrom(...GROUPS), fc.boolean(), (seed, groupSize, symmetric) => {
      const [n, k] = [8, 256];
      const w = gaussian(seed, n * k);
      const x = gaussian(seed + 1, 16 * k);
      const exact = matmulNK(x, 16, w, n, k);
      let previous = -Infinity;
      let previousOut = -Infinity;
      for (const bits of BITS) {
        const approx = dequantize(quantizeRtn(w, n, k, { bits, groupSize, symmetric }));
        const db = sqnrDb(w, approx);
        const outDb = sqnrDb(exact, matmulNK(x, 16, approx, n, k));
        expect(db).toBeGreaterThan(previous);
        expect(outDb).toBeGreaterThan(previousOut);
        previous = db;
        previousOut = outDb;
      }
      // Roughly 6 dB per bit at 8 bits.
      expect(previous).toBeGreaterThan(35);
    }), { numRuns: 20 });
  });

  it('1-bit asymmetric: levels are the means below / above the group mean', () => {
    const w = Float32Array.from([...new Array(16).fill(1), ...new Array(16).fill(3)]);
    const q = quantizeRtn(w, 1, 32, { bits: 1, groupSize: 32, symmetric: false });
    expect(Array.from(dequantize(q))).toEqual(Array.from(w));
    const constant = quantizeRtn(new Float32Array(32).fill(-0.75), 1, 32, { bits: 1, groupSize: 32, symmetric: false });
    expect(dequantize(constant).every((x) => x === -0.75)).toBe(true);
  });

  it('K not a multiple of the group size is a clear LlmccError', () => {
    expect(() => quantizeRtn(new Float32Array(40), 1, 40, { bits: 4, groupSize: 32, symmetric: true })).toThrow(LlmccError);
    expect(() => quantizeRtn(new Float32Array(40), 1, 40, { bits: 4, groupSize: 32, symmetric: true })).toThrow(/K=40 is not a multiple of the group size 32/);
    expect(() => quantizeTernary(new Float32Array(40), 1, 40, { groupSize: 32 })).toThrow(LlmccError);
  });

  it('rounds scales up to the storage dtype', () => {
    fc.assert(fc.property(fc.double({ min: 1e-4, max: 1e4, noNaN: true }), (x) => {
      const up16 = roundScaleUp(x, 'f16');
      expect(up16).toBeGreaterThanOrEqual(x);
      expect(roundToF16(up16)).toBe(up16);
      expect(f16BitsToNumber(numberToF16Bits(up16) - 1)).toBeLessThan(x);
      const up32 = roundScaleUp(x, 'f32');
      expect(up32).toBeGreaterThanOrEqual(x);
      expect(Math.fround(up32)).toBe(up32);
    }));
  });
});

describe('ternary absmean quantization', () => {
  it('codes are in {0,1,2}, scale is mean|w| per group, q = clamp(round(w/γ), -1, 1)', () => {
    fc.assert(fc.property(weightArb, ({ n, k, groupSize, w }) => {
      const q = quantizeTernary(w, n, k, { groupSize });
      expect(q.info).toMatchObject({ bits: 2, ternary: true, symmetric: true });
      expect(q.zeroPoints).toBeUndefined();
      expect(q.codes.every((c) => c <= 2)).toBe(true);
      for (let g = 0; g < q.scales.length; g++) {
        const row = Math.floor(g / (k / groupSize));
        const start = row * k + (g % (k / groupSize)) * groupSize;
        const group = Array.from(w.slice(start, start + groupSize));
        const gamma = Math.fround(group.reduce((s, x) => s + Math.abs(x), 0) / groupSize);
        expect(q.scales[g]).toBe(gamma);
        group.forEach((x, i) => {
          const expected = gamma === 0 ? 0 : Math.max(-1, Math.min(1, Math.round(x / gamma)));
          expect(q.codes[start + i] - 1 === expected).toBe(true);
        });
      }
    }), { numRuns: 100 });
  });

  it('an all-zero group gets scale 0 and dequantizes to zeros', () => {
    const q = quantizeTernary(new Float32Array(32), 1, 32, { groupSize: 32 });
    expect(Array.from(q.scales)).toEqual([0]);
    expect(q.codes.every((c) => c === 1)).toBe(true);
    expect(dequantize(q).every((x) => x === 0)).toBe(true);
  });
});

describe('SQNR and report helpers', () => {
  it('sqnrDb: exact is Infinity, a known noise level gives its dB', () => {
    expect(sqnrDb([1, 2, 3], [1, 2, 3])).toBe(Infinity);
    expect(sqnrDb([1, 1, 1, 1], [1.1, 0.9, 1.1, 0.9])).toBeCloseTo(20, 10);
  });

  it('gaussian is reproducible and roughly standard normal', () => {
    const a = gaussian(42, 10000);
    expect(Array.from(gaussian(42, 10000))).toEqual(Array.from(a));
    const mean = a.reduce((s, x) => s + x, 0) / a.length;
    const variance = a.reduce((s, x) => s + (x - mean) ** 2, 0) / a.length;
    expect(Math.abs(mean)).toBeLessThan(0.05);
    expect(Math.abs(variance - 1)).toBeLessThan(0.05);
  });

  it('patterns: globs match whole names, /regex/ searches; bits maps are validated', () => {
    expect(compilePattern('*lm_head*').test('model.lm_head.MatMul')).toBe(true);
    expect(compilePattern('lm_head').test('model.lm_head.MatMul')).toBe(false);
    expect(compilePattern('layers.?.mlp*').test('layers.3.mlp.up')).toBe(true);
    expect(compilePattern('layers.?.mlp*').test('layersX3.mlp.up')).toBe(false);
    expect(compilePattern('/q_proj|k_proj/').test('attn.k_proj.MatMul')).toBe(true);
    expect(compilePattern('re:^attn').test('attn.k_proj')).toBe(true);
    expect(() => compilePattern('/(/')).toThrow(LlmccError);
    expect(parseBitsMap({ '*mlp*': 2, '*attn*': 'ternary', head: 'keep', x: '4' })).toEqual({ '*mlp*': 2, '*attn*': 'ternary', head: 'keep', x: 4 });
    expect(() => parseBitsMap({ '*': 5 })).toThrow(/must be 1, 2, 3, 4, 8, "ternary" or "keep"/);
    expect(() => parseBitsMap([1, 2])).toThrow(LlmccError);
  });

  it('formats a report table with totals', () => {
    const row: QuantReportRow = {
      layer: 'mm', weight: 'w', bits: 4, ternary: false, groupSize: 32, scheme: 'int4 group=32 sym scale=f32 layout=codes-nk',
      weightSqnrDb: 20.1234, outputSqnrDb: Infinity, calibration: 'gaussian', bytesBefore: 4096, bytesAfter: 576,
    };
    const text = formatQuantReport([row]);
    expect(text).toMatch(/^layer\s+scheme\s+weight SQNR dB/);
    expect(text).toMatch(/mm\s+int4 group=32 sym scale=f32 layout=codes-nk\s+20\.12\s+exact\s+4096\s+576/);
    expect(text).toMatch(/total\s+1 layers\s+4096\s+576/);
  });
});
