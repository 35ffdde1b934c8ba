import { describe, expect, it } from 'vitest';
import { seededRandom } from '../ir/random.js';
import fc from 'fast-check';
import {
  accumulationBounds, checkAccumulationFits, checkGroupLayout, fullTable, int8OutputErrorBound, lookupSymmetric,
  precomputeTables, roundHalfEven, storedEntries, symmetricTable, tableCode, tableScale, TABLE_ENTRY_ERROR,
} from '../passes/lut/tables.js';
import {
  canPackTwoPerByte, packPlanes, planeOffset, readPlaneIndex, relayoutWeights, symmetrizeCode, unpackPlanes, defaultZeroPoint,
} from '../passes/lut/bitplanes.js';
import { lutBlockSums, lutMatMul, type LutMatMulArgs } from '../passes/lut/matmul.js';
import { LlmccError } from '../ir/errors.js';


interface Problem {
  M: number; N: number; K: number; bits: number; g: number; groupSize: number; ternary: boolean; rowsPerTile: number;
  a: Float32Array; codes: Uint8Array; scales: Float32Array; zeroPoints?: Float32Array; bias?: Float32Array;
}

const config = fc.record({
  bits: fc.integer({ min: 1, max: 4 }),
  g: fc.constantFrom(2, 3, 4),
  groupsPerBlock: fc.integer({ min: 1, max: 4 }),
  blocks: fc.integer({ min: 1, max: 3 }),
  M: fc.integer({ min: 1, max: 3 }),
  tiles: fc.integer({ min: 1, max: 3 }),
  rowsPerTile: fc.constantFrom(1, 2, 4),
  ternary: fc.boolean(),
  asymmetric: fc.boolean(),
  withBias: fc.boolean(),
  seed: fc.integer(),
});

type Config = typeof config extends fc.Arbitrary<infer T> ? T : never;

function makeProblem(c: Config): Problem {
  const random = seededRandom(c.seed);
  const ternary = c.ternary && c.bits === 2;
  const groupSize = c.g * c.groupsPerBlock;
  const K = groupSize * c.blocks;
  const N = c.tiles * c.rowsPerTile;
  const a = Float32Array.from({ length: c.M * K }, () => (random() - 0.5) * 8);
  const maxCode = ternary ? 2 : 2 ** c.bits - 1;
  const codes = Uint8Array.from({ length: N * K }, () => Math.floor(random() * (maxCode + 1)));
  const blocks = K / groupSize;
  const scales = Float32Array.from({ length: N * blocks }, () => 0.01 + random());
  // The 1-bit ±s weight carries explicit zero points 0.5 (the spec); others may be asymmetric.
  const zeroPoints = c.bits === 1 ? new Float32Array(N * blocks).fill(0.5)
    : c.asymmetric && !ternary ? Float32Array.from({ length: N * blocks }, () => random() * maxCode) : undefined;
  const bias = c.withBias ? Float32Array.from({ length: N }, () => random() - 0.5) : undefined;
  return { M: c.M, N, K, bits: c.bits, g: c.g, groupSize, ternary, rowsPerTile: c.rowsPerTile, a, codes, scales, zeroPoints, bias };
}

/** The dequantized matmul (QuantMatMul's reference): f32 weights, f64 sums. */
function dequantMatMul(p: Problem): { y: Float64Array; magnitude: Float64Array } {
  const blocks = p.K / p.groupSize;
  const y = new Float64Array(p.M * p.N);
  const magnitude = new Float64Array(p.M * p.N);
  const z0 = defaultZeroPoint(p.bits, p.ternary);
  for (let m = 0; m < p.M; m++) {
    for (let n = 0; n < p.N; n++) {
      let acc = 0, mag = 0;
      for (let k = 0; k < p.K; k++) {
        const blk = n * blocks + Math.floor(k / p.groupSize);
        const z = p.zeroPoints ? p.zeroPoints[blk] : z0;
        const w = Math.fround((p.codes[n * p.K + k] - z) * p.scales[blk]);
        acc += p.a[m * p.K + k] * w;
        // Magnitudes of the offset decomposition too: (s/2)·|q'| and the offset term.
        mag += Math.abs(p.a[m * p.K + k]) * (Math.abs(w) + Math.abs(p.scales[blk]) * 2 ** p.bits);
      }
      y[m * p.N + n] = acc + (p.bias ? p.bias[n] : 0);
      magnitude[m * p.N + n] = mag + (p.bias ? Math.abs(p.bias[n]) : 0);
    }
  }
  return { y, magnitude };
}

function lutArgs(p: Problem, kind: 'i8' | 'f32'): { args: LutMatMulArgs; pre: ReturnType<typeof precomputeTables> } {
  const pre = precomputeTables(p.a, p.M, p.K, p.g, p.groupSize, kind);
  const w = relayoutWeights(p, p.g, p.rowsPerTile);
  return {
    pre,
    args: {
      tables: pre.tables, tableScales: pre.tableScales, actSums: pre.actSums,
      planes: w.planes, scales: w.scales, offsets: w.offsets, bias: p.bias,
      M: p.M, N: p.N, K: p.K, bits: p.bits, g: p.g, groupSize: p.groupSize, rowsPerTile: p.rowsPerTile,
    },
  };
}

/** I with full 2^g tables (no symmetrization), same summation order. */
function fullTableBlockSums(p: Problem, planes: Uint8Array): Float64Array {
  const groups = p.K / p.g;
  const blocks = p.K / p.groupSize;
  const perBlock = p.groupSize / p.g;
  const sums = new Float64Array(p.M * p.N * blocks);
  for (let m = 0; m < p.M; m++) {
    const tables = Array.from({ length: groups }, (_, j) => fullTable(p.a, m * p.K + j * p.g, p.g));
    for (let n = 0; n < p.N; n++) {
      for (let blk = 0; blk < blocks; blk++) {
        let total = 0;
        for (let i = 0; i < p.bits; i++) {
          let plane = 0;
          for (let j = blk * perBlock; j < (blk + 1) * perBlock; j++) {
            plane += tables[j][planes[planeOffset(i, n, j, p.N, groups, p.rowsPerTile)]];
          }
          total += plane * 2 ** i;
        }
        sums[(m * p.N + n) * blocks + blk] = total;
      }
    }
  }
  return sums;
}

describe('symmetrized tables', () => {
  it('store 2^(g-1) entries; the top index bit selects negation, exactly in f32', () => {
    fc.assert(fc.property(fc.constantFrom(1, 2, 3, 4, 5), fc.integer(), (g, seed) => {
      const random = seededRandom(seed);
      const a = Float32Array.from({ length: g }, () => (random() - 0.5) * 1e3);
      const full = fullTable(a, 0, g);
      const half = symmetricTable(a, 0, g);
      expect(half.length).toBe(storedEntries(g));
      for (let idx = 0; idx < 1 << g; idx++) {
        expect(Object.is(lookupSymmetric(half, 0, idx, g) + 0, full[idx] + 0)).toBe(true);
        expect(full[(1 << g) - 1 - idx]).toBe(-full[idx]);
      }
    }));
  });

  it('8 stored entries for g = 4', () => {
    expect(storedEntries(4)).toBe(8);
  });

  it('give the same block sums as unsymmetrized 2^g tables (bits 1-4, g 2-4), exactly', () => {
    fc.assert(fc.property(config, (c) => {
      const p = makeProblem(c);
      const { args } = lutArgs(p, 'f32');
      const symmetric = lutBlockSums(args);
      const full = fullTableBlockSums(p, args.planes as Uint8Array);
      expect(Array.from(symmetric)).toEqual(Array.from(full));
    }), { numRuns: 150 });
  });
});

describe('weight symmetrization and bit-planes', () => {
  it('q\' = 2q - (2^b - 1) = Σ 2^i (2 bit_i - 1)', () => {
    for (let bits = 1; bits <= 4; bits++) {
      for (let q = 0; q < 2 ** bits; q++) {
        let fromBits = 0;
        for (let i = 0; i < bits; i++) fromBits += 2 ** i * (2 * ((q >> i) & 1) - 1);
        expect(symmetrizeCode(q, bits)).toBe(fromBits);
        expect(Math.abs(symmetrizeCode(q, bits)) % 2).toBe(1);
      }
    }
  });

  it('pack and unpack round-trip, with row interleaving', () => {
    fc.assert(fc.property(config, (c) => {
      const p = makeProblem(c);
      const planes = packPlanes(p.codes, p.N, p.K, p.bits, p.g, p.rowsPerTile);
      expect(planes.length).toBe(p.bits * p.N * (p.K / p.g));
      expect(Array.from(unpackPlanes(planes, p.N, p.K, p.bits, p.g, p.rowsPerTile))).toEqual(Array.from(p.codes));
      for (const index of planes) expect(index).toBeLessThan(1 << p.g);
    }));
  });

  it('two indices per byte: pack and unpack round-trip, groups 2j and 2j + 1 in the low and high nibble', () => {
    fc.assert(fc.property(config, (c) => {
      const p = makeProblem(c);
      const groups = p.K / p.g;
      if (!canPackTwoPerByte(p.g, groups)) {
        expect(() => packPlanes(p.codes, p.N, p.K, p.bits, p.g, p.rowsPerTile, 2)).toThrow(/even K\/g/);
        return;
      }
      const one = packPlanes(p.codes, p.N, p.K, p.bits, p.g, p.rowsPerTile);
      const two = packPlanes(p.codes, p.N, p.K, p.bits, p.g, p.rowsPerTile, 2);
      expect(two.length).toBe(one.length / 2);
      expect(Array.from(unpackPlanes(two, p.N, p.K, p.bits, p.g, p.rowsPerTile, 2))).toEqual(Array.from(p.codes));
      for (let i = 0; i < p.bits; i++) {
        for (let n = 0; n < p.N; n++) {
          for (let j = 0; j < groups; j++) {
            const index = one[planeOffset(i, n, j, p.N, groups, p.rowsPerTile)];
            const byte = two[planeOffset(i, n, j >> 1, p.N, groups / 2, p.rowsPerTile)];
            expect((byte >> (4 * (j & 1))) & 15).toBe(index);
            expect(readPlaneIndex(two, i, n, j, p.N, groups, p.rowsPerTile, 2)).toBe(index);
          }
        }
      }
    }));
  });

  it('two indices per byte: the reference block sums and Y are those of one index per byte', () => {
    fc.assert(fc.property(config, (c) => {
      const p = makeProblem(c);
      if (!canPackTwoPerByte(p.g, p.K / p.g)) return;
      for (const kind of ['i8', 'f32'] as const) {
        const { args } = lutArgs(p, kind);
        const packed = relayoutWeights(p, p.g, p.rowsPerTile, undefined, false, 2);
        const packedArgs = { ...args, planes: packed.planes, indicesPerByte: 2 as const };
        expect(Array.from(packed.scales)).toEqual(Array.from(args.scales));
        expect(Array.from(lutBlockSums(packedArgs))).toEqual(Array.from(lutBlockSums(args)));
        expect(Array.from(lutMatMul(packedArgs))).toEqual(Array.from(lutMatMul(args)));
      }
    }));
  });

  it('two indices per byte need g ≤ 4', () => {
    expect(canPackTwoPerByte(5, 4)).toBe(false);
    expect(() => packPlanes(new Uint8Array(10), 1, 10, 1, 5, 1, 2)).toThrow(/g ≤ 4/);
  });

  it('interleaves R rows innermost', () => {
    // N = 4, K = g = 2, R = 2: element (plane 0, n, j=0) sits at tile·K/g·R + n mod R.
    expect([0, 1, 2, 3].map((n) => planeOffset(0, n, 0, 4, 1, 2))).toEqual([0, 1, 2, 3]);
    expect([0, 1, 2, 3].map((n) => planeOffset(0, n, 1, 4, 2, 2))).toEqual([2, 3, 6, 7]);
  });

  it('rejects codes that do not fit the bit width', () => {
    expect(() => relayoutWeights({ codes: [0, 4], scales: [1], bits: 2, ternary: false, N: 1, K: 2, groupSize: 2 }, 2, 1))
      .toThrow(LlmccError);
    expect(() => relayoutWeights({ codes: [3, 0], scales: [1], bits: 2, ternary: true, N: 1, K: 2, groupSize: 2 }, 2, 1))
      .toThrow(/ternary/);
  });
});

describe('LUT mpGEMV', () => {
  it('with f32 tables equals the dequantized matmul within f32 rounding', () => {
    fc.assert(fc.property(config, (c) => {
      const p = makeProblem(c);
      const y = lutMatMul(lutArgs(p, 'f32').args);
      const ref = dequantMatMul(p);
      for (let i = 0; i < y.length; i++) {
        expect(Math.abs(y[i] - ref.y[i])).toBeLessThanOrEqual(1e-6 * ref.magnitude[i] + 1e-12);
      }
    }), { numRuns: 200 });
  });

  it('with int8 tables stays within the derived bound of the f32-table result', () => {
    fc.assert(fc.property(config, (c) => {
      const p = makeProblem(c);
      const exact = lutArgs(p, 'f32');
      const quant = lutArgs(p, 'i8');
      const yf = lutMatMul(exact.args);
      const yq = lutMatMul(quant.args);
      const sums = lutBlockSums(quant.args);
      const bounds = accumulationBounds(p.bits, p.g, p.groupSize);
      for (const s of sums) {
        expect(Number.isInteger(s)).toBe(true);
        expect(Math.abs(s)).toBeLessThanOrEqual(bounds.perBlock);
      }
      const blocks = p.K / p.groupSize;
      const halfScales = quant.args.scales as Float32Array;
      for (let m = 0; m < p.M; m++) {
        for (let n = 0; n < p.N; n++) {
          const bound = int8OutputErrorBound(
            halfScales.subarray(n * blocks, (n + 1) * blocks), quant.pre.tableScales.subarray(m * blocks, (m + 1) * blocks),
            p.bits, p.g, p.groupSize);
          // The f64 epilogue adds rounding far below the bound's scale.
          expect(Math.abs(yq[m * p.N + n] - yf[m * p.N + n])).toBeLessThanOrEqual(bound * (1 + 1e-9) + 1e-9);
        }
      }
    }), { numRuns: 200 });
  });
});

describe('int8 table quantization', () => {
  it('is symmetric: code(-T) = -code(T), so the stored half describes the full table', () => {
    fc.assert(fc.property(fc.float({ noNaN: true, noDefaultInfinity: true, min: -1e6, max: 1e6 }),
      fc.float({ noNaN: true, min: Math.fround(1e-3), max: Math.fround(1e4) }), (t, scale) => {
        expect(tableCode(-t, scale) + 0).toBe(-tableCode(t, scale) + 0);
      }));
    expect(roundHalfEven(2.5)).toBe(2);
    expect(roundHalfEven(-2.5)).toBe(-2);
    expect(roundHalfEven(3.5)).toBe(4);
    expect(roundHalfEven(-3.5)).toBe(-4);
  });

  it('each entry is within TABLE_ENTRY_ERROR · scale of its f32 value, codes within ±127', () => {
    fc.assert(fc.property(fc.integer(), fc.integer({ min: 1, max: 64 }), (seed, count) => {
      const random = seededRandom(seed);
      const entries = Float32Array.from({ length: count }, () => (random() - 0.5) * 10 ** (random() * 6 - 3));
      const scale = tableScale(entries);
      for (const e of entries) {
        const code = tableCode(e, scale);
        expect(Math.abs(code)).toBeLessThanOrEqual(127);
        expect(Math.abs(e - code * scale)).toBeLessThanOrEqual(TABLE_ENTRY_ERROR * scale);
      }
    }));
  });

  it('uses one scale per quant group of the activations and all-1 scales for f32 tables', () => {
    const a = Float32Array.from({ length: 16 }, (_, i) => (i < 8 ? 1 : 100) * (i % 3 - 1));
    const q = precomputeTables(a, 1, 16, 4, 8, 'i8');
    expect(q.tableScales.length).toBe(2);
    expect(q.tableScales[1] / q.tableScales[0]).toBeCloseTo(100, 3);
    expect(Array.from(q.actSums)).toEqual([0, 0].map((_, b) => a.slice(b * 8, b * 8 + 8).reduce((x, y) => x + y, 0)));
    const f = precomputeTables(a, 1, 16, 4, 8, 'f32');
    expect(Array.from(f.tableScales)).toEqual([1, 1]);
  });
});

describe('accumulation bounds', () => {
  it('are computed from lookups per block and planes', () => {
    const b = accumulationBounds(4, 4, 128);
    expect(b.perPlane).toBe(127 * 32);
    expect(b.perBlock).toBe(127 * 32 * 15);
    expect(b.planeFitsInt16).toBe(true);
    expect(b.blockFitsInt16).toBe(false);
    expect(b.int16LookupsBeforeWiden).toBe(258);
    expect(accumulationBounds(2, 4, 32).blockFitsInt16).toBe(true);
  });

  it('throw when int32 could overflow', () => {
    // 127 · (K/g) · 15 > 2^31 − 1 needs about 4.5 M lookups per block.
    expect(() => checkAccumulationFits(4, 1, 2 ** 21)).toThrow(/overflow int32/);
    expect(() => checkAccumulationFits(4, 4, 4096)).not.toThrow();
  });

  it('group layout errors are clear', () => {
    expect(() => checkGroupLayout(30, 4, 30)).toThrow(/K = 30 is not a multiple of the LUT group size g = 4/);
    expect(() => checkGroupLayout(32, 4, 12)).toThrow(/not a multiple of group_size/);
    expect(() => checkGroupLayout(36, 4, 6)).toThrow(/straddle/);
  });
});
