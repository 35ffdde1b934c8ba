import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import type { Attribute, Dim, Node, TensorType } from '../ir/graph.js';
import type { DType } from '../ir/dtype.js';
import { Tensor } from '../ir/tensor.js';
import { Attrs } from '../ir/ops/attrs.js';
import { SymbolSource } from '../ir/dims.js';
import { LlmccError } from '../ir/errors.js';
import type { OpDef, OutputInfo } from '../ir/ops/types.js';
import { lookupOp } from '../ir/ops/registry.js';
import { formatFloat, parseNumber } from '../ir/ops/elementwise/convert.js';
import { erf, roundHalfEven } from '../ir/ops/elementwise/math.js';

type AttrValue = number | number[] | string | { float: number };

function node(op: string, inputCount: number, attributes: Record<string, AttrValue>): Node {
  const attrs = new Map<string, Attribute>();
  for (const [name, value] of Object.entries(attributes)) {
    if (Array.isArray(value)) attrs.set(name, { kind: 'ints', value });
    else if (typeof value === 'number') attrs.set(name, { kind: 'int', value });
    else if (typeof value === 'string') attrs.set(name, { kind: 'string', value });
    else attrs.set(name, { kind: 'float', value: value.float });
  }
  return {
    name: `test_${op}`, domain: '', op,
    inputs: Array.from({ length: inputCount }, (_, i) => `in${i}`),
    outputs: ['out0', 'out1'],
    attributes: attrs,
  };
}

function def(op: string): OpDef {
  const found = lookupOp('', op);
  if (!found) throw new Error(`op ${op} is not registered`);
  return found;
}

interface InferOptions {
  constants?: (Tensor | undefined)[];
  shapeValues?: (Dim[] | undefined)[];
}

function infer(
  op: string, inputs: (TensorType | undefined)[], attributes: Record<string, AttrValue> = {}, opset = 23, options: InferOptions = {},
): OutputInfo[] {
  const n = node(op, inputs.length, attributes);
  return def(op).infer({
    node: n, opset, attrs: new Attrs(n), inputs,
    constant: (i) => options.constants?.[i], shapeValue: (i) => options.shapeValues?.[i],
    symbols: new SymbolSource(), inferSubgraph: () => [],
  });
}

/** Evaluates an op and checks its inferred types (with inputs as constants) against the result. */
function run(op: string, inputs: (Tensor | undefined)[], attributes: Record<string, AttrValue> = {}, opset = 23): Tensor[] {
  const n = node(op, inputs.length, attributes);
  const outputs = def(op).evaluate({ node: n, opset, attrs: new Attrs(n), inputs, runSubgraph: () => [] });
  const inferred = infer(op, inputs.map((x) => (x ? { dtype: x.dtype, shape: [...x.shape] } : undefined)), attributes, opset, { constants: inputs });
  outputs.forEach((out, i) => {
    expect(inferred[i].type.dtype).toBe(out.dtype);
    expect(inferred[i].type.shape).toEqual([...out.shape]);
  });
  return outputs;
}

const t = (dtype: DType, shape: number[], values: number[]): Tensor => Tensor.fromNumbers(dtype, shape, values);
const f32 = (shape: number[], values: number[]): Tensor => t('f32', shape, values);
const i64 = (values: number[], shape: number[] = [values.length]): Tensor => t('i64', shape, values);
const values = (x: Tensor): number[] => x.toArray();
const first = (op: string, inputs: (Tensor | undefined)[], attributes: Record<string, AttrValue> = {}, opset = 23): number[] =>
  values(run(op, inputs, attributes, opset)[0]);

function expectClose(actual: number[], expected: number[], tol = 1e-6): void {
  expect(actual.length).toBe(expected.length);
  actual.forEach((a, i) => {
    if (Number.isNaN(expected[i])) expect(a).toBeNaN();
    else if (!Number.isFinite(expected[i])) expect(a).toBe(expected[i]);
    else expect(Math.abs(a - expected[i])).toBeLessThanOrEqual(tol * (1 + Math.abs(expected[i])));
  });
}

describe('unary ops', () => {
  it('rounds half to even', () => {
    expect(first('Round', [f32([8], [0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 2.4, -2.6])])).toEqual([0, 2, 2, -0, -2, -2, 2, -3]);
    expect(roundHalfEven(3.5)).toBe(4);
  });

  it('computes erf to double precision', () => {
    expectClose([erf(0.5), erf(1), erf(-2), erf(3.5), erf(7)], [0.5204998778130465, 0.8427007929497149, -0.9953222650189527, 0.9999992569016276, 1], 1e-14);
  });

  it('keeps integer dtypes and wraps like two\'s complement', () => {
    const [y] = run('Abs', [t('i8', [3], [-128, -5, 7])]);
    expect(y.dtype).toBe('i8');
    expect(values(y)).toEqual([-128, 5, 7]);
    expect(first('Relu', [t('i32', [3], [-3, 0, 4])])).toEqual([0, 0, 4]);
    expect(first('Sign', [f32([4], [-2, 0, 3, NaN])])).toEqual([-1, 0, 1, NaN]);
  });

  it('gives the narrow dtype\'s rounding for f16', () => {
    const [y] = run('Exp', [t('f16', [1], [1])]);
    expect(values(y)).toEqual([2.71875]);
  });

  it('computes Gelu in both modes and Swish with alpha', () => {
    expectClose(first('Gelu', [f32([3], [-1, 0, 1])]), [-0.15865525393145707, 0, 0.8413447460685429]);
    expectClose(first('Gelu', [f32([1], [1])], { approximate: 'tanh' }), [0.8411919906082768]);
    expect(() => run('Gelu', [f32([1], [1])], { approximate: 'fast' })).toThrow(/approximate/);
    expectClose(first('Swish', [f32([2], [1, -2])], { alpha: { float: 2 } }), [1 / (1 + Math.exp(-2)), -2 / (1 + Math.exp(4))]);
  });

  it('keeps Softplus finite for large inputs', () => {
    expectClose(first('Softplus', [f32([3], [1000, -1000, 0])]), [1000, 0, Math.LN2]);
  });

  it('rejects dtypes the op does not define', () => {
    expect(() => run('Sqrt', [t('i32', [1], [4])])).toThrow(LlmccError);
    expect(() => run('Not', [f32([1], [1])])).toThrow(/does not accept f32/);
  });
});

describe('Add, Sub, Mul, Div', () => {
  it('broadcasts numpy-style', () => {
    const [y] = run('Add', [f32([2, 1], [1, 2]), f32([3], [10, 20, 30])]);
    expect(y.shape).toEqual([2, 3]);
    expect(values(y)).toEqual([11, 21, 31, 12, 22, 32]);
  });

  it('truncates integer division toward zero and wraps overflow', () => {
    expect(first('Div', [t('i32', [4], [7, -7, 7, -7]), t('i32', [4], [2, 2, -2, -2])])).toEqual([3, -3, -3, 3]);
    expect(first('Add', [t('u8', [1], [250]), t('u8', [1], [10])])).toEqual([4]);
    expect(first('Sub', [t('u8', [1], [1]), t('u8', [1], [2])])).toEqual([255]);
    expect(first('Mul', [t('i32', [1], [2 ** 30]), t('i32', [1], [4])])).toEqual([0]);
    expect(first('Mul', [t('u32', [1], [0xffffffff]), t('u32', [1], [0xffffffff])])).toEqual([1]);
  });

  it('is exact for int64 beyond 2^53 and wraps at 2^63', () => {
    expect(first('Mul', [i64([2 ** 40]), i64([2 ** 20])])).toEqual([2 ** 60]);
    expect(first('Add', [i64([2 ** 62]), i64([2 ** 62])])).toEqual([-(2 ** 63)]);
  });

  it('rejects mixed dtypes and unbroadcastable shapes, naming the node', () => {
    expect(() => run('Add', [f32([1], [1]), t('i32', [1], [1])])).toThrow(/one dtype/);
    expect(() => run('Mul', [f32([2], [1, 2]), f32([3], [1, 2, 3])])).toThrow(/test_Mul/);
    expect(() => infer('Sub', [{ dtype: 'f32', shape: [2] }, { dtype: 'f32', shape: [3] }])).toThrow(LlmccError);
  });

  it('aligns B at axis with the legacy (opset < 7) broadcast attributes', () => {
    const a = f32([2, 3], [0, 0, 0, 0, 0, 0]);
    expect(first('Add', [a, f32([2], [1, 2])], { broadcast: 1, axis: 0 }, 6)).toEqual([1, 1, 1, 2, 2, 2]);
    expect(first('Add', [a, f32([3], [1, 2, 3])], { broadcast: 1 }, 6)).toEqual([1, 2, 3, 1, 2, 3]);
    expect(() => run('Add', [a, f32([3], [1, 2, 3])], {}, 6)).toThrow(/broadcast is not set/);
  });

  it('infers symbolic broadcast shapes', () => {
    const [out] = infer('Add', [{ dtype: 'f32', shape: ['batch', 1, 64] }, { dtype: 'f32', shape: ['seq', 1] }]);
    expect(out.type.shape).toEqual(['batch', 'seq', 64]);
    expect(infer('Add', [{ dtype: 'f32', shape: undefined }, { dtype: 'f32', shape: [1] }])[0].type.shape).toBeUndefined();
  });

  it('propagates symbolic shape values', () => {
    const scalar = { dtype: 'i64' as const, shape: [] };
    const options = (a: Dim[], b: Dim[]) => ({ shapeValues: [a, b] });
    expect(infer('Add', [scalar, scalar], {}, 14, options(['past'], ['seq']))[0].shapeValue).toEqual(['past+seq']);
    expect(infer('Mul', [{ dtype: 'i64', shape: [2] }, scalar], {}, 14, options(['batch', 4], [2]))[0].shapeValue).toEqual(['2*batch', 8]);
    expect(infer('Div', [scalar, scalar], {}, 14, options(['hidden'], [4]))[0].shapeValue).toEqual(['hidden/4']);
    expect(infer('Sub', [scalar, scalar], {}, 14, options([7], [2]))[0].shapeValue).toEqual([5]);
    // Float arithmetic carries no shape value.
    expect(infer('Add', [{ dtype: 'f32', shape: [] }, { dtype: 'f32', shape: [] }], {}, 14, options([1], [2]))[0].shapeValue).toBeUndefined();
  });
});

describe('Pow and Mod', () => {
  it('keeps the base dtype for mixed types', () => {
    const [y] = run('Pow', [t('i32', [3], [1, 2, 3]), f32([3], [1, 2, 3])]);
    expect(y.dtype).toBe('i32');
    expect(values(y)).toEqual([1, 4, 27]);
    expect(first('Pow', [f32([2], [2, 4]), i64([3, -1])])).toEqual([8, 0.25]);
    expect(first('Pow', [i64([3]), i64([40])])).toEqual([Number(BigInt.asIntN(64, 3n ** 40n))]);
  });

  it('takes the divisor\'s sign with fmod = 0 and the dividend\'s with fmod = 1', () => {
    const a = t('i32', [4], [5, -5, 5, -5]);
    const b = t('i32', [4], [3, 3, -3, -3]);
    expect(first('Mod', [a, b])).toEqual([2, 1, -1, -2]);
    expect(first('Mod', [a, b], { fmod: 1 })).toEqual([2, -2, 2, -2]);
    expectClose(first('Mod', [f32([2], [5.5, -5.5]), f32([2], [2, 2])], { fmod: 1 }), [1.5, -1.5]);
    expect(() => run('Mod', [f32([1], [1]), f32([1], [1])])).toThrow(/fmod = 1/);
  });
});

describe('variadic ops', () => {
  it('broadcasts any number of inputs and propagates NaN', () => {
    expect(first('Max', [f32([3], [1, NaN, 3]), f32([1], [2])])).toEqual([2, NaN, 3]);
    expect(first('Min', [f32([2], [1, 5]), f32([2], [4, 2]), f32([1], [3])])).toEqual([1, 2]);
    expect(first('Sum', [f32([2], [1, 2]), f32([2], [3, 4]), f32([1], [10])])).toEqual([14, 16]);
    expect(first('Mean', [f32([2], [1, 2]), f32([2], [3, 6])])).toEqual([2, 4]);
    expect(first('Max', [f32([2], [1, 2])])).toEqual([1, 2]);
  });

  it('computes Max/Min of shape values when decidable', () => {
    const scalar = { dtype: 'i64' as const, shape: [] };
    expect(infer('Max', [scalar, scalar], {}, 13, { shapeValues: [['seq'], [0]] })[0].shapeValue).toEqual(['seq']);
    expect(infer('Max', [scalar, scalar], {}, 13, { shapeValues: [['seq'], [5]] })[0].shapeValue).toBeUndefined();
    expect(infer('Min', [scalar, scalar], {}, 13, { shapeValues: [[3], [5]] })[0].shapeValue).toEqual([3]);
  });
});

describe('comparison and logic', () => {
  it('returns bool tensors and follows IEEE for NaN and -0', () => {
    const [y] = run('Equal', [f32([3], [0, NaN, 1]), f32([3], [-0, NaN, 2])]);
    expect(y.dtype).toBe('bool');
    expect(values(y)).toEqual([1, 0, 0]);
    expect(first('LessOrEqual', [f32([3], [1, 2, 3]), f32([1], [2])])).toEqual([1, 1, 0]);
    expect(first('Greater', [t('u64', [2], [2 ** 60, 1]), t('u64', [2], [1, 2])])).toEqual([1, 0]);
  });

  it('compares strings with broadcasting', () => {
    const [y] = run('Equal', [Tensor.strings([2, 2], ['a', 'b', 'c', 'a']), Tensor.strings([1], ['a'])]);
    expect(values(y)).toEqual([1, 0, 0, 1]);
    expect(() => run('Less', [Tensor.strings([1], ['a']), Tensor.strings([1], ['b'])])).toThrow(LlmccError);
  });

  it('decides Equal on shape values where it can', () => {
    const vec = { dtype: 'i64' as const, shape: [3] };
    const [out] = infer('Equal', [vec, vec], {}, 19, { shapeValues: [['batch', 1, 'seq'], [-1, -1, -1]] });
    expect(out.shapeValue).toEqual([0, 0, 0]);
    expect(infer('Equal', [vec, vec], {}, 19, { shapeValues: [['batch', 1, 'seq'], [1, 1, 1]] })[0].shapeValue).toBeUndefined();
  });

  it('computes And, Or, Xor, Not on bool', () => {
    const a = t('bool', [4], [0, 0, 1, 1]);
    const b = t('bool', [4], [0, 1, 0, 1]);
    expect(first('And', [a, b])).toEqual([0, 0, 0, 1]);
    expect(first('Or', [a, b])).toEqual([0, 1, 1, 1]);
    expect(first('Xor', [a, b])).toEqual([0, 1, 1, 0]);
    expect(first('Not', [a])).toEqual([1, 1, 0, 0]);
    expect(() => run('And', [f32([1], [1]), a])).toThrow(/bool/);
  });
});

describe('Cast', () => {
  const cast = (x: Tensor, to: number, attributes: Record<string, AttrValue> = {}) => run('Cast', [x], { to, ...attributes }, 25)[0];

  it('saturates float8 by default and overflows to NaN/inf without saturate', () => {
    const x = f32([5], [1000, -1000, Infinity, NaN, 0.4789]);
    expect(values(cast(x, 17))).toEqual([448, -448, 448, NaN, 0.46875]);
    expect(values(cast(x, 17, { saturate: 0 }))).toEqual([NaN, NaN, NaN, NaN, 0.46875]);
    expect(values(cast(x, 19, { saturate: 0 }))).toEqual([1024, -1024, Infinity, NaN, 0.5]);
    expect(values(cast(f32([2], [1e6, -1e6]), 19, { saturate: 0 }))).toEqual([Infinity, -Infinity]);
    expect(values(cast(f32([2], [1e6, -1e6]), 19))).toEqual([57344, -57344]);
    expect(values(cast(x, 18))).toEqual([240, -240, 240, NaN, 0.46875]);
    // fnuz has no negative zero.
    expect(Object.is(values(cast(f32([1], [-1e-7]), 18))[0], 0)).toBe(true);
  });

  it('saturates float4 and maps NaN to its -0 code', () => {
    const y = values(cast(f32([5], [0.25, 9, -Infinity, NaN, 1.05]), 23));
    expect(y.slice(0, 3)).toEqual([0, 6, -6]);
    expect(Object.is(y[3], -0)).toBe(true);
    expect(y[4]).toBe(1);
  });

  it('rounds to float8e8m0 by round_mode', () => {
    const x = f32([5], [0, 0.124, 1.1, 1.5, 3]);
    expect(values(cast(x, 24))).toEqual([2 ** -127, 0.125, 2, 2, 4]);
    expect(values(cast(x, 24, { round_mode: 'down' }))).toEqual([2 ** -127, 0.0625, 1, 1, 2]);
    expect(values(cast(x, 24, { round_mode: 'nearest' }))).toEqual([2 ** -127, 0.125, 1, 2, 4]);
    expect(() => cast(x, 24, { round_mode: 'odd' })).toThrow(/round_mode/);
  });

  it('wraps 4- and 2-bit integers', () => {
    expect(values(cast(f32([4], [-9, 8, 15, 7]), 22))).toEqual([7, -8, -1, 7]);
    expect(values(cast(f32([3], [-1, 2, 3]), 26))).toEqual([-1, -2, -1]);
    expect(values(cast(f32([2], [-1, 4]), 25))).toEqual([3, 0]);
  });

  it('converts strings both ways', () => {
    const s = cast(f32([5], [1, 0.0001, 1e20, 314.15926, -1.5e-5]), 8);
    // Shortest digits that identify the f32 value, as numpy prints them.
    expect(s.data).toEqual(['1.0', '0.0001', '1e+20', '314.15927', '-1.5e-05']);
    expect(cast(t('i64', [2], [-3, 12]), 8).data).toEqual(['-3', '12']);
    const parsed = values(cast(Tensor.strings([5], ['3.14', '1e-5', '-INF', 'nan', '+inf']), 1));
    expectClose(parsed, [3.14, 1e-5, -Infinity, NaN, Infinity]);
    expect(values(cast(Tensor.strings([1], ['100.5']), 7))).toEqual([100]);
    expect(parseNumber(' 1E8 ')).toBe(1e8);
    expect(formatFloat(0.1, 'f64')).toBe('0.1');
  });

  it('casts to bool with NaN as true and accepts Cast-1 type names', () => {
    expect(values(cast(f32([3], [0, NaN, -2]), 9))).toEqual([0, 1, 1]);
    const [y] = run('Cast', [f32([1], [2.7])], { to: 'INT32' }, 1);
    expect(y.dtype).toBe('i32');
    expect(values(y)).toEqual([2]);
  });

  it('passes integer shape values through and follows CastLike\'s second input', () => {
    const [out] = infer('Cast', [{ dtype: 'i64', shape: [2] }], { to: 6 }, 25, { shapeValues: [['batch', 8]] });
    expect(out.type.dtype).toBe('i32');
    expect(out.shapeValue).toEqual(['batch', 8]);
    const [y] = run('CastLike', [f32([2], [1.5, 70000]), t('f16', [0], [])], {}, 25);
    expect(y.dtype).toBe('f16');
    expect(values(y)).toEqual([1.5, Infinity]);
  });

  it('round-trips f32 through f16 idempotently (property)', () => {
    fc.assert(fc.property(fc.float({ noNaN: true, min: -60000, max: 60000 }), (v) => {
      const once = cast(f32([1], [v]), 10);
      const twice = cast(cast(once, 1), 10);
      expect(values(twice)).toEqual(values(once));
    }), { numRuns: 200 });
  });
});

describe('Clip', () => {
  it('reads bounds from attributes before opset 11 and inputs after', () => {
    expect(first('Clip', [f32([3], [-5, 0, 5])], { min: { float: -1 }, max: { float: 2 } }, 6)).toEqual([-1, 0, 2]);
    expect(first('Clip', [f32([3], [-5, 0, 5]), f32([], [-1]), f32([], [2])], {}, 13)).toEqual([-1, 0, 2]);
    expect(first('Clip', [f32([3], [-5, 0, 5]), undefined, f32([], [2])], {}, 13)).toEqual([-5, 0, 2]);
    expect(first('Clip', [t('i8', [3], [-100, 0, 100]), t('i8', [], [-10]), undefined], {}, 13)).toEqual([-10, 0, 100]);
  });

  it('sets everything to max when min > max', () => {
    expect(first('Clip', [f32([3], [-5, 0, 5]), f32([], [2]), f32([], [1])], {}, 13)).toEqual([1, 1, 1]);
  });
});

describe('Softmax and LogSoftmax', () => {
  it('normalises along one axis from opset 13', () => {
    const x = f32([2, 2], [1, 2, 3, 4]);
    const e = 1 / (1 + Math.E);
    expectClose(first('Softmax', [x], {}, 13), [e, 1 - e, e, 1 - e]);
    expectClose(first('Softmax', [x], { axis: 0 }, 13), [1 / (1 + Math.E ** 2), 1 / (1 + Math.E ** 2), 1 / (1 + Math.E ** -2), 1 / (1 + Math.E ** -2)]);
  });

  it('coerces to 2-D at axis before opset 13', () => {
    const x = f32([1, 2, 2], [0, 0, 0, 0]);
    expectClose(first('Softmax', [x], {}, 11), [0.25, 0.25, 0.25, 0.25]);
    expectClose(first('Softmax', [x], { axis: 2 }, 11), [0.5, 0.5, 0.5, 0.5]);
  });

  it('stays stable for large inputs', () => {
    expectClose(first('LogSoftmax', [f32([2], [10000, 10000])]), [-Math.LN2, -Math.LN2]);
    expectClose(first('Softmax', [f32([2], [10000, 9999])]), [1 / (1 + Math.exp(-1)), 1 / (1 + Math.E)]);
  });
});

describe('reductions', () => {
  const x = f32([2, 3], [1, 2, 3, 4, 5, 6]);

  it('takes axes from the attribute before the switch-over opset and from the input after', () => {
    expect(first('ReduceSum', [x], { axes: [1] }, 11)).toEqual([6, 15]);
    expect(first('ReduceSum', [x, i64([1])], {}, 13)).toEqual([6, 15]);
    expect(first('ReduceMean', [x], { axes: [0], keepdims: 0 }, 17)).toEqual([2.5, 3.5, 4.5]);
    expect(first('ReduceMean', [x, i64([-2])], { keepdims: 0 }, 18)).toEqual([2.5, 3.5, 4.5]);
  });

  it('reduces everything without axes, or nothing with noop_with_empty_axes', () => {
    const [all] = run('ReduceMax', [x], {}, 18);
    expect(all.shape).toEqual([1, 1]);
    expect(values(all)).toEqual([6]);
    expect(values(run('ReduceSum', [x, i64([])], { noop_with_empty_axes: 1 }, 13)[0])).toEqual(values(x));
  });

  it('gives the identity for an empty set', () => {
    const empty = f32([2, 0, 4], []);
    const axes = i64([1]);
    expect(first('ReduceSum', [empty, axes], {}, 13)).toEqual(Array(8).fill(0));
    expect(first('ReduceMax', [empty, axes], {}, 20)).toEqual(Array(8).fill(-Infinity));
    expect(first('ReduceMin', [empty, axes], {}, 20)).toEqual(Array(8).fill(Infinity));
    expect(first('ReduceProd', [empty, axes], {}, 18)).toEqual(Array(8).fill(1));
    expect(first('ReduceLogSumExp', [empty, axes], {}, 18)).toEqual(Array(8).fill(-Infinity));
    expect(first('ReduceMax', [t('i32', [0], []), i64([0])], {}, 20)).toEqual([-(2 ** 31)]);
  });

  it('computes the other reducers', () => {
    const axes = i64([1]);
    expect(first('ReduceSumSquare', [x, axes], {}, 18)).toEqual([14, 77]);
    expect(first('ReduceProd', [x, axes], {}, 18)).toEqual([6, 120]);
    expectClose(first('ReduceL2', [x, axes], {}, 18), [Math.sqrt(14), Math.sqrt(77)]);
    expectClose(first('ReduceLogSumExp', [f32([2], [1000, 1000]), i64([0])], {}, 18), [1000 + Math.LN2]);
    expect(first('ReduceMax', [t('bool', [3], [0, 1, 0]), i64([0])], {}, 20)).toEqual([1]);
  });

  it('rejects repeated or out-of-range axes', () => {
    expect(() => run('ReduceSum', [x, i64([1, -1])], {}, 13)).toThrow(/repeated/);
    expect(() => run('ReduceSum', [x, i64([2])], {}, 13)).toThrow(/test_ReduceSum/);
  });

  it('keeps symbolic dims and handles unknown axes', () => {
    const input = { dtype: 'f32' as const, shape: ['batch', 'seq', 64] };
    const axesType = { dtype: 'i64' as const, shape: [1] };
    const [out] = infer('ReduceMean', [input, axesType], {}, 18, { constants: [undefined, i64([-1])] });
    expect(out.type.shape).toEqual(['batch', 'seq', 1]);
    const [unknown] = infer('ReduceMean', [input, axesType], { keepdims: 0 }, 18);
    expect(unknown.type.shape).toHaveLength(2);
  });
});

describe('ArgMax, ArgMin, CumSum, TopK', () => {
  it('selects the first or last extreme index', () => {
    const x = f32([2, 3], [1, 3, 3, 2, 2, 1]);
    const [y] = run('ArgMax', [x], { axis: 1 }, 13);
    expect(y.dtype).toBe('i64');
    expect(y.shape).toEqual([2, 1]);
    expect(values(y)).toEqual([1, 0]);
    expect(first('ArgMax', [x], { axis: 1, select_last_index: 1, keepdims: 0 }, 13)).toEqual([2, 1]);
    expect(first('ArgMin', [x], { axis: 0, keepdims: 0 }, 13)).toEqual([0, 1, 1]);
  });

  it('sums cumulatively with exclusive and reverse', () => {
    const x = f32([4], [1, 2, 3, 4]);
    const axis = t('i32', [], [0]);
    expect(first('CumSum', [x, axis], {}, 14)).toEqual([1, 3, 6, 10]);
    expect(first('CumSum', [x, axis], { exclusive: 1 }, 14)).toEqual([0, 1, 3, 6]);
    expect(first('CumSum', [x, axis], { reverse: 1 }, 14)).toEqual([10, 9, 7, 4]);
    expect(first('CumSum', [x, axis], { reverse: 1, exclusive: 1 }, 14)).toEqual([9, 7, 4, 0]);
    expect(first('CumSum', [f32([2, 2], [1, 2, 3, 4]), t('i64', [], [-1])], {}, 14)).toEqual([1, 3, 3, 7]);
  });

  it('returns the top k with ties broken by lower index', () => {
    const x = f32([2, 4], [1, 3, 3, 2, 0, 0, 5, 0]);
    const [v, i] = run('TopK', [x, i64([2])], { axis: 1 }, 24);
    expect(values(v)).toEqual([3, 3, 5, 0]);
    expect(values(i)).toEqual([1, 2, 2, 0]);
    const [small, smallIndex] = run('TopK', [x, i64([3])], { largest: 0 }, 24);
    expect(values(small)).toEqual([1, 2, 3, 0, 0, 0]);
    expect(values(smallIndex)).toEqual([0, 3, 1, 0, 1, 3]);
    expect(() => run('TopK', [x, i64([5])], {}, 24)).toThrow(/outside/);
  });

  it('infers TopK\'s axis length from k', () => {
    const input = { dtype: 'f32' as const, shape: ['batch', 100] };
    const kType = { dtype: 'i64' as const, shape: [1] };
    expect(infer('TopK', [input, kType], {}, 24, { constants: [undefined, i64([5])] })[0].type.shape).toEqual(['batch', 5]);
    expect(infer('TopK', [input, kType], {}, 24)[1].type.shape?.[1]).toMatch(/^unk/);
  });
});
