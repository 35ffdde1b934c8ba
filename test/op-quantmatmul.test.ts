import { describe, expect, it } from 'vitest';
import type { DType } from '../ir/dtype.js';
import { LlmccError } from '../ir/errors.js';
import type { Attribute, Dim, Model } from '../ir/graph.js';
import { inferTypes } from '../ir/infer.js';
import { interpret } from '../ir/interpreter.js';
import { Tensor } from '../ir/tensor.js';
import { roundToF16 } from '../ir/float.js';
import { weightFromTensor } from '../passes/graph-edit.js';
import { gaussian, seededRandom } from '../passes/quant/sqnr.js';

interface Case {
  a: Tensor;
  aShape?: Dim[];
  codes: Tensor;
  scales: Tensor;
  zeroPoints?: Tensor;
  bias?: Tensor;
  attrs: Record<string, number>;
  /** Weights as initializers (default) or graph inputs. */
  constants?: boolean;
}

function quantModel(c: Case): Model {
  const named: [string, Tensor | undefined][] = [['codes', c.codes], ['scales', c.scales], ['zero_points', c.zeroPoints], ['bias', c.bias]];
  const present = named.filter((e): e is [string, Tensor] => e[1] !== undefined);
  const inputs = ['a', ...named.map(([name, t]) => (t ? name : ''))];
  while (inputs[inputs.length - 1] === '') inputs.pop();
  const constants = c.constants ?? true;
  return {
    irVersion: 10,
    producer: 'test',
    opsets: new Map([['', 21], ['llmcc', 1]]),
    graph: {
      name: 'g',
      inputs: [
        { name: 'a', type: { dtype: c.a.dtype, shape: c.aShape ?? [...c.a.shape] } },
        ...(constants ? [] : present.map(([name, t]) => ({ name, type: { dtype: t.dtype, shape: [...t.shape] } }))),
      ],
      outputs: [{ name: 'y', type: { dtype: c.a.dtype, shape: undefined } }],
      nodes: [{
        name: 'qmm',
        domain: 'llmcc',
        op: 'QuantMatMul',
        inputs,
        outputs: ['y'],
        attributes: new Map<string, Attribute>(Object.entries(c.attrs).map(([k, v]) => [k, { kind: 'int', value: v }])),
      }],
      initializers: new Map(constants ? present.map(([name, t]) => [name, weightFromTensor(name, t)]) : []),
      valueInfo: new Map(),
    },
  };
}

function run(c: Case): Tensor {
  const m = quantModel(c);
  const feeds = new Map<string, Tensor>([['a', c.a]]);
  if (c.constants === false) {
    for (const [name, t] of [['codes', c.codes], ['scales', c.scales], ['zero_points', c.zeroPoints], ['bias', c.bias]] as const) {
      if (t) feeds.set(name, t);
    }
  }
  return interpret(m.graph, feeds, { opsets: m.opsets }).get('y')!;
}

/** Straightforward reference: dequantize, multiply, add bias, in f64 then to `dtype`. */
function reference(c: Case, dtype: DType): number[] {
  const { K, N, bits, group_size: G } = c.attrs;
  const ternary = c.attrs.ternary === 1;
  const groups = Math.ceil(K / G);
  const a = c.a.numbers();
  const rows = a.length / K;
  const out: number[] = [];
  for (let m = 0; m < rows; m++) {
    for (let n = 0; n < N; n++) {
      let acc = 0;
      for (let k = 0; k < K; k++) {
        const g = n * groups + Math.floor(k / G);
        const z = c.zeroPoints ? c.zeroPoints.get(g) : ternary ? 1 : 2 ** (bits - 1);
        acc += a[m * K + k] * Math.fround((c.codes.get(n * K + k) - z) * c.scales.get(g));
      }
      out.push(acc + (c.bias ? c.bias.get(n) : 0));
    }
  }
  return Array.from(Tensor.fromNumbers(dtype, [out.length], out).numbers());
}

function randomCodes(n: number, k: number, max: number, seed: number): Tensor {
  const random = seededRandom(seed);
  return Tensor.fromNumbers('u8', [n, k], Array.from({ length: n * k }, () => Math.floor(random() * (max + 1))));
}

function randomScales(n: number, groups: number, seed: number, dtype: 'f32' | 'f16' = 'f32'): Tensor {
  const random = seededRandom(seed);
  return Tensor.fromNumbers(dtype, [n, groups], Array.from({ length: n * groups }, () => 0.01 + random() * 0.1));
}

describe('llmcc.QuantMatMul', () => {
  it('symmetric codes use z = 2^(bits-1) and match the reference, every bit width', () => {
    for (const bits of [1, 2, 3, 4, 8]) {
      const [M, K, N, G] = [3, 64, 5, 32];
      const c: Case = {
        a: Tensor.fromNumbers('f32', [M, K], gaussian(bits, M * K)),
        codes: randomCodes(N, K, 2 ** bits - 1, bits),
        scales: randomScales(N, K / G, bits + 10),
        attrs: { bits, group_size: G, ternary: 0, K, N },
      };
      const y = run(c);
      expect(y.shape).toEqual([M, N]);
      expect(Array.from(y.numbers())).toEqual(reference(c, 'f32'));
    }
  });

  it('ternary uses z = 1; explicit zero points and bias are applied', () => {
    const [M, K, N, G] = [2, 32, 4, 16];
    const ternary: Case = {
      a: Tensor.fromNumbers('f32', [M, K], gaussian(7, M * K)),
      codes: randomCodes(N, K, 2, 3),
      scales: randomScales(N, K / G, 4),
      attrs: { bits: 2, group_size: G, ternary: 1, K, N },
    };
    expect(Array.from(run(ternary).numbers())).toEqual(reference(ternary, 'f32'));
    // Codes {0,1,2} with z = 1 are {-1,0,1}·s: check one weight by hand.
    const single: Case = {
      a: Tensor.fromNumbers('f32', [1, 16], [2, ...new Array(15).fill(0)]),
      codes: Tensor.fromNumbers('u8', [1, 16], [0, ...new Array(15).fill(1)]),
      scales: Tensor.fromNumbers('f32', [1, 1], [0.5]),
      attrs: { bits: 2, group_size: 16, ternary: 1, K: 16, N: 1 },
    };
    expect(Array.from(run(single).numbers())).toEqual([-1]);

    const asym: Case = {
      ...ternary,
      codes: randomCodes(N, K, 15, 5),
      zeroPoints: Tensor.fromNumbers('f32', [N, K / G], [0.5, 3, 7, 8, 15, 2, 0, 1]),
      bias: Tensor.fromNumbers('f32', [N], [0.25, -1, 2, 3.5]),
      attrs: { bits: 4, group_size: G, ternary: 0, K, N },
    };
    expect(Array.from(run(asym).numbers())).toEqual(reference(asym, 'f32'));
  });

  it('keeps leading dims, infers symbolic shapes, and rounds once to f16', () => {
    const [K, N, G] = [32, 3, 32];
    const c: Case = {
      a: Tensor.fromNumbers('f16', [2, 3, K], gaussian(9, 6 * K)),
      aShape: ['batch', 'seq', K],
      codes: randomCodes(N, K, 15, 11),
      scales: randomScales(N, 1, 12, 'f16'),
      bias: Tensor.fromNumbers('f32', [N], [0.1, 0.2, 0.3]),
      attrs: { bits: 4, group_size: G, ternary: 0, K, N },
    };
    const m = quantModel(c);
    inferTypes(m.graph, m.opsets);
    expect(m.graph.valueInfo.get('y')).toEqual({ dtype: 'f16', shape: ['batch', 'seq', N] });
    const y = run(c);
    expect(y.dtype).toBe('f16');
    expect(y.shape).toEqual([2, 3, N]);
    const expected = reference(c, 'f16');
    expect(Array.from(y.numbers())).toEqual(expected);
    expect(expected.every((v) => roundToF16(v) === v)).toBe(true);
  });

  it('allows a partial last group (K not a multiple of group_size)', () => {
    const [M, K, N, G] = [2, 40, 3, 16];
    const c: Case = {
      a: Tensor.fromNumbers('f32', [M, K], gaussian(13, M * K)),
      codes: randomCodes(N, K, 7, 14),
      scales: randomScales(N, 3, 15),
      attrs: { bits: 3, group_size: G, ternary: 0, K, N },
    };
    expect(Array.from(run(c).numbers())).toEqual(reference(c, 'f32'));
  });

  it('works with codes and scales fed at run time', () => {
    const [M, K, N, G] = [1, 32, 2, 32];
    const c: Case = {
      a: Tensor.fromNumbers('f32', [M, K], gaussian(17, M * K)),
      codes: randomCodes(N, K, 3, 18),
      scales: randomScales(N, 1, 19),
      attrs: { bits: 2, group_size: G, ternary: 0, K, N },
      constants: false,
    };
    expect(Array.from(run(c).numbers())).toEqual(reference(c, 'f32'));
  });

  it('rejects bad attributes and mismatched inputs with LlmccError naming the node', () => {
    const base: Case = {
      a: Tensor.fromNumbers('f32', [1, 32], gaussian(1, 32)),
      codes: randomCodes(2, 32, 15, 2),
      scales: randomScales(2, 1, 3),
      attrs: { bits: 4, group_size: 32, ternary: 0, K: 32, N: 2 },
    };
    const infer = (c: Case) => () => { const m = quantModel(c); inferTypes(m.graph, m.opsets); };
    const expectError = (f: () => unknown, pattern: RegExp) => {
      expect(f).toThrow(LlmccError);
      expect(f).toThrow(pattern);
      expect(f).toThrow(/node "qmm" \(llmcc\.QuantMatMul\)/);
    };
    expectError(infer({ ...base, attrs: { ...base.attrs, bits: 5 } }), /bits must be 1, 2, 3, 4 or 8/);
    expectError(infer({ ...base, attrs: { ...base.attrs, ternary: 1 } }), /ternary weights are stored as 2-bit codes/);
    expectError(infer({ ...base, attrs: { ...base.attrs, K: 64 } }), /A's last dim is 32, expected K=64/);
    expectError(infer({ ...base, scales: randomScales(2, 2, 3) }), /scales must have shape \[2,1\]/);
    expectError(infer({ ...base, codes: Tensor.fromNumbers('i8', [2, 32], new Array(64).fill(0)) }), /codes must be u8/);
    expectError(infer({ ...base, bias: Tensor.fromNumbers('f32', [3], [0, 0, 0]) }), /bias must have shape \[2\]/);
    expectError(infer({ ...base, attrs: { bits: 4, K: 32, N: 2 } }), /missing required attribute 'group_size'/);
    const outOfRange = { ...base, codes: Tensor.fromNumbers('u8', [2, 32], new Array(64).fill(16)) };
    expectError(() => run(outOfRange), /code 16 at index 0 is out of range for 4-bit weights/);
  });
});
