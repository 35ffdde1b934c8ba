import { describe, expect, it } from 'vitest';
import type { DType } from '../ir/dtype.js';
import type { Attribute, Model, Node } from '../ir/graph.js';
import { Tensor } from '../ir/tensor.js';
import { compareTensors } from '../src/compare.js';
import { sessionFromCompiled } from '../src/runtime/index.js';
import { getBackend } from '../targets/registry.js';
import { compileWasm } from '../targets/wasm/compile.js';

/**
 * The wasm kernels for pre-quantized weights — llmcc.QuantMatMul, llmcc.UnpackNBits and
 * llmcc.LutPackWeights — against the reference interpreter on one-node graphs whose weights
 * are graph inputs (so they travel through the arena): the integer outputs and the f32
 * re-layouts are exact, the matmul within f32 accumulation error.
 */

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function ints(values: Record<string, number>): Map<string, Attribute> {
  return new Map(Object.entries(values).map(([k, v]) => [k, { kind: 'int', value: v } as Attribute]));
}

/** A one-node model: every input is a graph input, every output a graph output. */
function oneNode(node: Node, inputs: Map<string, Tensor>, outputs: { name: string; dtype: DType; shape: number[] }[]): Model {
  return {
    irVersion: 10,
    producer: 'test',
    opsets: new Map([['', 21], ['llmcc', 1]]),
    graph: {
      name: 'g',
      inputs: [...inputs].map(([name, t]) => ({ name, type: { dtype: t.dtype, shape: [...t.shape] } })),
      outputs: outputs.map(({ name, dtype, shape }) => ({ name, type: { dtype, shape } })),
      nodes: [node],
      initializers: new Map(),
      valueInfo: new Map(),
    },
  };
}

async function wasmVersusReference(model: Model, feeds: Map<string, Tensor>, atol: (want: Tensor) => number): Promise<string[]> {
  const want = await (await getBackend('ref').prepare(model)).run(feeds);
  const got = await (await sessionFromCompiled(await compileWasm(model))).run(feeds);
  const problems: string[] = [];
  for (const { name } of model.graph.outputs) {
    const expected = want.get(name)!;
    const actual = got.get(name);
    const result = actual ? compareTensors(actual, expected, { atol: atol(expected), rtol: 0 }) : undefined;
    if (!result?.ok) problems.push(`${name}: ${result ? result.reason ?? `max abs ${result.maxAbs}` : 'missing'}`);
  }
  return problems;
}

const maxAbs = (t: Tensor): number => t.numbers().reduce((m: number, v: number) => Math.max(m, Math.abs(v)), 0);

describe('wasm QuantMatMul', () => {
  const cases = [
    { bits: 1, K: 64, group: 32 }, { bits: 2, K: 40, group: 16 }, { bits: 3, K: 48, group: 16 },
    { bits: 4, K: 40, group: 32 }, { bits: 8, K: 72, group: 64 }, { bits: 2, K: 32, group: 16, ternary: true },
  ];
  for (const c of cases) {
    for (const variant of [{ zp: false, bias: false, f16: false }, { zp: true, bias: true, f16: true }]) {
      it(`${c.ternary ? 'ternary' : `${c.bits}-bit`} K=${c.K} group=${c.group} zp=${variant.zp} bias=${variant.bias} f16 scales=${variant.f16}`, async () => {
        const r = rng(c.bits * 31 + c.K);
        const M = 3, N = 5, groups = Math.ceil(c.K / c.group);
        const top = c.ternary ? 2 : 2 ** c.bits - 1;
        const feeds = new Map<string, Tensor>([
          ['a', Tensor.fromNumbers('f32', [1, M, c.K], Array.from({ length: M * c.K }, () => (r() - 0.5) * 4))],
          ['codes', Tensor.fromNumbers('u8', [N, c.K], Array.from({ length: N * c.K }, () => Math.floor(r() * (top + 1))))],
          ['scales', Tensor.fromNumbers(variant.f16 ? 'f16' : 'f32', [N, groups], Array.from({ length: N * groups }, () => 0.01 + r() * 0.2))],
        ]);
        if (variant.zp) feeds.set('zp', Tensor.fromNumbers('f32', [N, groups], Array.from({ length: N * groups }, () => Math.floor(r() * (top + 1)))));
        if (variant.bias) feeds.set('bias', Tensor.fromNumbers('f32', [N], Array.from({ length: N }, () => r() - 0.5)));
        const node: Node = {
          name: 'qmm', domain: 'llmcc', op: 'QuantMatMul',
          inputs: ['a', 'codes', 'scales', variant.zp ? 'zp' : '', variant.bias ? 'bias' : ''], outputs: ['y'],
          attributes: ints({ bits: c.bits, group_size: c.group, ternary: c.ternary ? 1 : 0, K: c.K, N }),
        };
        const model = oneNode(node, feeds, [{ name: 'y', dtype: 'f32', shape: [1, M, N] }]);
        expect(await wasmVersusReference(model, feeds, (t) => 1e-5 * Math.max(1, maxAbs(t)))).toEqual([]);
      });
    }
  }
});

describe('wasm UnpackNBits', () => {
  for (const bits of [2, 3, 4, 5, 8]) {
    for (const zp of ['none', 'packed', 'float'] as const) {
      it(`${bits}-bit, K=40 block 16, zero points ${zp}`, async () => {
        const r = rng(bits * 7 + zp.length);
        const K = 40, N = 3, blockSize = 16, blocks = Math.ceil(K / blockSize), blob = (blockSize * bits) / 8;
        const feeds = new Map<string, Tensor>([
          ['b', Tensor.fromNumbers('u8', [N, blocks, blob], Array.from({ length: N * blocks * blob }, () => Math.floor(r() * 256)))],
          ['scales', Tensor.fromNumbers('f16', [N * blocks], Array.from({ length: N * blocks }, () => r()))],
        ]);
        const zpRow = Math.ceil((blocks * bits) / 8);
        if (zp === 'packed') feeds.set('zp', Tensor.fromNumbers('u8', [N * zpRow], Array.from({ length: N * zpRow }, () => Math.floor(r() * 256))));
        if (zp === 'float') feeds.set('zp', Tensor.fromNumbers('f32', [N * blocks], Array.from({ length: N * blocks }, () => Math.floor(r() * 2 ** bits))));
        const node: Node = {
          name: 'unpack', domain: 'llmcc', op: 'UnpackNBits',
          inputs: zp === 'none' ? ['b', 'scales'] : ['b', 'scales', 'zp'], outputs: ['codes', 'scales_out', 'zp_out'],
          attributes: ints({ K, N, bits, block_size: blockSize }),
        };
        const model = oneNode(node, feeds, [
          { name: 'codes', dtype: 'u8', shape: [N, K] }, { name: 'scales_out', dtype: 'f16', shape: [N, blocks] },
          { name: 'zp_out', dtype: 'f32', shape: [N, blocks] },
        ]);
        expect(await wasmVersusReference(model, feeds, () => 0)).toEqual([]);
      });
    }
  }
});

describe('wasm LutPackWeights', () => {
  for (const bits of [1, 2, 3, 4]) {
    for (const [rowsPerTile, perByte] of [[1, 1], [16, 1], [1, 2], [16, 2]] as const) {
      it(`${bits}-bit, rows_per_tile ${rowsPerTile}, ${perByte} index per byte, ${bits === 2 ? 'with' : 'without'} zero points`, async () => {
        const r = rng(bits * 13 + rowsPerTile);
        const K = 64, N = 32, group = 32, blocks = K / group;
        const withZero = bits === 2;
        const feeds = new Map<string, Tensor>([
          ['codes', Tensor.fromNumbers('u8', [N, K], Array.from({ length: N * K }, () => Math.floor(r() * 2 ** bits)))],
          ['scales', Tensor.fromNumbers('f32', [N, blocks], Array.from({ length: N * blocks }, () => r()))],
        ]);
        if (withZero) feeds.set('zp', Tensor.fromNumbers('f32', [N, blocks], Array.from({ length: N * blocks }, () => Math.floor(r() * 4) + 0.5)));
        const node: Node = {
          name: 'pack', domain: 'llmcc', op: 'LutPackWeights',
          inputs: withZero ? ['codes', 'scales', 'zp'] : ['codes', 'scales'], outputs: ['planes', 'half', 'offsets'],
          attributes: ints({ bits, ternary: 0, g: 4, group_size: group, K, N, rows_per_tile: rowsPerTile, indices_per_byte: perByte }),
        };
        const model = oneNode(node, feeds, [
          { name: 'planes', dtype: 'u8', shape: [bits, N, K / 4 / perByte] }, { name: 'half', dtype: 'f32', shape: [N, blocks] },
          { name: 'offsets', dtype: 'f32', shape: [N, blocks] },
        ]);
        expect(await wasmVersusReference(model, feeds, () => 0)).toEqual([]);
      });
    }
  }
});
