import { describe, expect, it } from 'vitest';
import { Tensor } from '../ir/tensor.js';
import { LlmccError } from '../ir/errors.js';
import { inferTypes } from '../ir/infer.js';
import { relayoutWeights } from '../passes/lut/bitplanes.js';
import { unpackNBitsCodes, unpackNBitsZeroPoints } from '../passes/quant/nbits.js';
import { model, node, quantWeights, rng, run } from './helpers/lut-graph.js';

/** Packs values of `bits` bits into bytes, least significant bit first. */
function packBits(values: number[], bits: number, byteCount: number): number[] {
  const bytes = new Array<number>(byteCount).fill(0);
  values.forEach((v, i) => {
    for (let b = 0; b < bits; b++) if ((v >> b) & 1) bytes[(i * bits + b) >> 3] |= 1 << ((i * bits + b) & 7);
  });
  return bytes;
}

describe('llmcc.UnpackNBits', () => {
  const K = 64, N = 3, blockSize = 32, blocks = 2;

  function build(bits: number, zeroPoints: 'none' | 'packed' | 'float', scaleDtype: 'f32' | 'f16' = 'f32') {
    const random = rng(bits * 10 + zeroPoints.length);
    const codes = Array.from({ length: N * K }, () => Math.floor(random() * 2 ** bits));
    const blob = (blockSize * bits) / 8;
    const b: number[] = [];
    for (let row = 0; row < N; row++) {
      for (let blk = 0; blk < blocks; blk++) b.push(...packBits(codes.slice(row * K + blk * blockSize, row * K + (blk + 1) * blockSize), bits, blob));
    }
    const feeds: Record<string, Tensor> = {
      B: Tensor.fromNumbers('u8', [N, blocks, blob], b),
      scales: Tensor.fromNumbers(scaleDtype, [N * blocks], Array.from({ length: N * blocks }, () => 0.01 + random())),
    };
    const zps = Array.from({ length: N * blocks }, () => Math.floor(random() * 2 ** bits));
    const zpRow = Math.ceil((blocks * bits) / 8);
    if (zeroPoints === 'packed') feeds.zp = Tensor.fromNumbers('u8', [N * zpRow], zps.flatMap((_, i) => (i % blocks === 0 ? packBits(zps.slice(i, i + blocks), bits, zpRow) : [])));
    if (zeroPoints === 'float') feeds.zp = Tensor.fromNumbers('f32', [N, blocks], zps.map((z) => z + 0.25));
    const inputs = zeroPoints === 'none' ? ['B', 'scales'] : ['B', 'scales', 'zp'];
    const m = model({
      inputs: inputs.map((name) => ({ name, dtype: feeds[name].dtype, shape: [...feeds[name].shape] })),
      outputs: [{ name: 'codes', dtype: 'u8' }, { name: 's', dtype: scaleDtype }, { name: 'z', dtype: 'f32' }],
      nodes: [node('UnpackNBits', inputs, ['codes', 's', 'z'], { K, N, bits, block_size: blockSize }, 'llmcc', 'unpack')],
    });
    return { m, feeds, codes, zps };
  }

  for (const [bits, zeroPoints] of [[4, 'none'], [4, 'packed'], [2, 'packed'], [3, 'float'], [5, 'none'], [8, 'packed']] as const) {
    it(`${bits}-bit, zero points ${zeroPoints}: codes [N, K], scales [N, blocks], explicit zero points`, () => {
      const { m, feeds, codes, zps } = build(bits, zeroPoints);
      inferTypes(m.graph, m.opsets);
      const storedBits = [2, 3, 4, 8].includes(bits) ? bits : 8;
      expect(m.graph.valueInfo.get('codes')).toEqual({
        dtype: 'u8', shape: [N, K],
        quant: { bits: storedBits, ternary: false, groupSize: blockSize, symmetric: zeroPoints === 'none' && storedBits === bits, scaleDtype: 'f32', layout: { kind: 'codes-nk' } },
      });
      expect(m.graph.valueInfo.get('z')).toEqual({ dtype: 'f32', shape: [N, blocks] });
      const out = run(m, feeds);
      expect(Array.from(out.get('codes')!.numbers())).toEqual(codes);
      expect(Array.from(out.get('s')!.numbers())).toEqual(Array.from(feeds.scales.numbers()));
      expect(out.get('s')!.shape).toEqual([N, blocks]);
      const expectedZero = zeroPoints === 'none' ? zps.map(() => 2 ** (bits - 1)) : zeroPoints === 'float' ? zps.map((z) => z + 0.25) : zps;
      expect(Array.from(out.get('z')!.numbers())).toEqual(expectedZero);
      // The same helpers the compile-time import uses.
      const params = { k: K, n: N, bits, blockSize };
      expect(Array.from(unpackNBitsCodes(feeds.B.numbers(), params))).toEqual(codes);
      if (zeroPoints === 'packed') expect(Array.from(unpackNBitsZeroPoints(feeds.zp.numbers(), true, params)!)).toEqual(zps);
    });
  }

  it('keeps f16 scales f16', () => {
    const { m, feeds } = build(4, 'none', 'f16');
    expect(run(m, feeds).get('s')!.dtype).toBe('f16');
  });

  it('reports wrong sizes and types as LlmccError naming the node', () => {
    const { m } = build(4, 'packed');
    m.graph.inputs[0] = { name: 'B', type: { dtype: 'u8', shape: [N, blocks, 8] } };
    expect(() => inferTypes(m.graph, m.opsets)).toThrow(LlmccError);
    expect(() => inferTypes(m.graph, m.opsets)).toThrow(/B must have 96 elements.*unpack/);
    m.graph.inputs[0] = { name: 'B', type: { dtype: 'i8', shape: [N, blocks, 16] } };
    expect(() => inferTypes(m.graph, m.opsets)).toThrow(/B must be u8/);
    m.graph.inputs[0] = { name: 'B', type: { dtype: 'u8', shape: [N, blocks, 16] } };
    m.graph.nodes[0].attributes.set('block_size', { kind: 'int', value: 24 });
    expect(() => inferTypes(m.graph, m.opsets)).toThrow(/block_size must be a power of 2/);
  });
});

describe('llmcc.LutPackWeights', () => {
  const K = 32, N = 8, G = 16;

  it('is the offline re-layout (relayoutWeights), for every width, at run time', () => {
    for (const [bits, ternary, asymmetric] of [[1, false, false], [2, true, false], [3, false, true], [4, false, false]] as const) {
      for (const [rowsPerTile, perByte] of [[1, 1], [4, 1], [1, 2], [4, 2]] as const) {
        const random = rng(bits * 3 + rowsPerTile);
        const q = quantWeights(random, N, K, bits, G, { ternary, asymmetric });
        const inputs = q.zeroPoints ? ['c', 's', 'z'] : ['c', 's'];
        const feeds: Record<string, Tensor> = { c: q.codes, s: q.scales, ...(q.zeroPoints ? { z: q.zeroPoints } : {}) };
        const m = model({
          inputs: inputs.map((name) => ({ name, dtype: feeds[name].dtype, shape: [...feeds[name].shape] })),
          outputs: [{ name: 'p', dtype: 'u8' }, { name: 'h', dtype: 'f32' }, { name: 'o', dtype: 'f32' }],
          nodes: [node('LutPackWeights', inputs, ['p', 'h', 'o'], {
            bits, ternary: ternary ? 1 : 0, g: 4, group_size: G, K, N, rows_per_tile: rowsPerTile, ...(perByte === 2 ? { indices_per_byte: 2 } : {}),
          })],
        });
        inferTypes(m.graph, m.opsets);
        const layout = { kind: 'bitplanes', g: 4, rowsPerTile, ...(perByte === 2 ? { indicesPerByte: 2 } : {}) };
        expect(m.graph.valueInfo.get('p')).toMatchObject({ dtype: 'u8', shape: [bits, N, K / 4 / perByte], quant: { bits, ternary, layout } });
        const out = run(m, feeds);
        const ref = relayoutWeights({ codes: q.codes.numbers(), scales: q.scales.numbers(), zeroPoints: q.zeroPoints?.numbers(), bits, ternary, N, K, groupSize: G }, 4, rowsPerTile, undefined, false, perByte);
        expect(Array.from(out.get('p')!.numbers())).toEqual(Array.from(ref.planes));
        expect(Array.from(out.get('h')!.numbers())).toEqual(Array.from(ref.scales));
        expect(Array.from(out.get('o')!.numbers())).toEqual(Array.from(ref.offsets));
      }
    }
  });

  it('rejects out-of-range codes, 8 bits and bad shapes with LlmccError naming the node', () => {
    const q = quantWeights(rng(1), N, K, 2, G, {});
    const build = (attrs: Record<string, number>) => model({
      inputs: [{ name: 'c', dtype: 'u8', shape: [N, K] }, { name: 's', dtype: 'f32', shape: [N, K / G] }],
      outputs: [{ name: 'p', dtype: 'u8' }],
      nodes: [node('LutPackWeights', ['c', 's'], ['p', 'h', 'o'], { bits: 2, g: 4, group_size: G, K, N, ...attrs }, 'llmcc', 'pack')],
    });
    const codes = q.codes.numbers().slice();
    codes[3] = 7;
    expect(() => run(build({}), { c: new Tensor('u8', [N, K], Uint8Array.from(codes)), s: q.scales })).toThrow(/outside \[0, 3\].*pack/);
    expect(() => inferTypes(build({ bits: 8 }).graph, new Map([['llmcc', 1]]))).toThrow(/1–4 bit-planes/);
    expect(() => inferTypes(build({ K: 64 }).graph, new Map([['llmcc', 1]]))).toThrow(LlmccError);
    expect(() => inferTypes(build({ indices_per_byte: 3 }).graph, new Map([['llmcc', 1]]))).toThrow(/indices_per_byte must be 1 or 2.*pack/);
    expect(() => inferTypes(build({ indices_per_byte: 2, K: 36, group_size: 4 }).graph, new Map([['llmcc', 1]]))).toThrow(/even K\/g/);
  });
});
