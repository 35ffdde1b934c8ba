import { describe, expect, it } from 'vitest';
import type { Attribute, Dim, Graph, Node, TensorType } from '../ir/graph.js';
import { Tensor } from '../ir/tensor.js';
import { Attrs } from '../ir/ops/attrs.js';
import { lookupOp } from '../ir/ops/registry.js';
import { SymbolSource } from '../ir/dims.js';
import { LlmccError } from '../ir/errors.js';
import { interpret } from '../ir/interpreter.js';
import type { OutputInfo } from '../ir/ops/types.js';

type AttrValue = number | string | number[] | string[] | Tensor | Graph | { float: number } | { floats: number[] };

function toAttribute(value: AttrValue): Attribute {
  if (value instanceof Tensor) return { kind: 'tensor', value };
  if (typeof value === 'number') return { kind: 'int', value };
  if (typeof value === 'string') return { kind: 'string', value };
  if (Array.isArray(value)) {
    return value.length > 0 && typeof value[0] === 'string'
      ? { kind: 'strings', value: value as string[] }
      : { kind: 'ints', value: value as number[] };
  }
  if ('float' in value) return { kind: 'float', value: value.float };
  if ('floats' in value) return { kind: 'floats', value: value.floats };
  return { kind: 'graph', value };
}

function makeNode(op: string, inputCount: number, attrs: Record<string, AttrValue> = {}, outputCount = 1): Node {
  return {
    name: `test_${op}`,
    domain: '',
    op,
    inputs: Array.from({ length: inputCount }, (_, i) => `in${i}`),
    outputs: Array.from({ length: outputCount }, (_, i) => `out${i}`),
    attributes: new Map(Object.entries(attrs).map(([k, v]) => [k, toAttribute(v)])),
  };
}

/** Evaluates one op on tensors (undefined = omitted optional input). */
function run(op: string, inputs: (Tensor | undefined)[], attrs: Record<string, AttrValue> = {}, opset = 21, outputs = 1): Tensor[] {
  const def = lookupOp('', op);
  if (!def) throw new Error(`no op ${op}`);
  const node = makeNode(op, inputs.length, attrs, outputs);
  return def.evaluate({ node, opset, attrs: new Attrs(node), inputs, runSubgraph: () => [] });
}

interface InferInput {
  type?: TensorType;
  constant?: Tensor;
  shapeValue?: Dim[];
}

/** Infers one op from input types, constants and tracked shape values. */
function infer(op: string, inputs: InferInput[], attrs: Record<string, AttrValue> = {}, opset = 21, outputs = 1): OutputInfo[] {
  const def = lookupOp('', op);
  if (!def) throw new Error(`no op ${op}`);
  const node = makeNode(op, inputs.length, attrs, outputs);
  return def.infer({
    node,
    opset,
    attrs: new Attrs(node),
    inputs: inputs.map((i) => i.type ?? (i.constant ? { dtype: i.constant.dtype, shape: [...i.constant.shape] } : undefined)),
    constant: (i) => inputs[i]?.constant,
    shapeValue: (i) => inputs[i]?.shapeValue,
    symbols: new SymbolSource('u'),
    inferSubgraph: () => [],
  });
}

const i64 = (values: number[], shape: number[] = [values.length]): Tensor => Tensor.fromNumbers('i64', shape, values);
const f32 = (values: number[], shape: number[] = [values.length]): Tensor => Tensor.fromNumbers('f32', shape, values);
const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i);
const shapeVector = (dims: Dim[]): InferInput => ({ type: { dtype: 'i64', shape: [dims.length] }, shapeValue: dims });

describe('shape group: evaluation', () => {
  it('Reshape copies 0 dims, infers -1, honours allowzero', () => {
    const x = f32(range(24), [2, 3, 4]);
    expect(run('Reshape', [x, i64([0, -1])])[0].shape).toEqual([2, 12]);
    expect(run('Reshape', [x, i64([4, 0, -1])])[0].shape).toEqual([4, 3, 2]);
    const empty = f32([], [0, 3]);
    expect(run('Reshape', [empty, i64([3, 0])], { allowzero: 1 })[0].shape).toEqual([3, 0]);
    expect(() => run('Reshape', [x, i64([-1, -1])])).toThrow(LlmccError);
    expect(() => run('Reshape', [x, i64([5, -1])])).toThrow(LlmccError);
  });

  it('Slice clamps, handles negative steps and INT64 extremes', () => {
    const x = f32(range(10));
    const slice = (starts: number[], ends: number[], steps?: number[]): number[] =>
      run('Slice', [x, i64(starts), i64(ends), i64([0]), steps ? i64(steps) : undefined], {}, 13)[0].toArray();
    expect(slice([2], [5])).toEqual([2, 3, 4]);
    expect(slice([-3], [2 ** 63])).toEqual([7, 8, 9]);
    expect(slice([20], [-1], [-1])).toEqual([]);
    expect(slice([20], [0], [-1])).toEqual([9, 8, 7, 6, 5, 4, 3, 2, 1]);
    expect(slice([-1], [-(2 ** 63)], [-1])).toEqual([9, 8, 7, 6, 5, 4, 3, 2, 1, 0]);
    expect(slice([1], [8], [3])).toEqual([1, 4, 7]);
    expect(slice([5], [2])).toEqual([]);
    // Opset 1: attributes.
    expect(run('Slice', [x], { starts: [1], ends: [3] }, 1)[0].toArray()).toEqual([1, 2]);
    expect(() => slice([0], [5], [0])).toThrow(LlmccError);
  });

  it('Split: attribute, input, and num_outputs with an uneven last chunk', () => {
    const x = f32(range(7));
    expect(run('Split', [x, undefined], { num_outputs: 3 }, 18, 3).map((t) => t.toArray())).toEqual([[0, 1, 2], [3, 4, 5], [6]]);
    expect(run('Split', [x, i64([2, 5])], {}, 13, 2).map((t) => t.shape)).toEqual([[2], [5]]);
    expect(run('Split', [x], { split: [3, 4] }, 11, 2).map((t) => t.shape)).toEqual([[3], [4]]);
    expect(() => run('Split', [x], {}, 13, 2)).toThrow(LlmccError);
  });

  it('Squeeze / Unsqueeze from attribute (opset 11) and input (opset 13)', () => {
    const x = f32(range(3), [1, 3, 1]);
    expect(run('Squeeze', [x], {}, 11)[0].shape).toEqual([3]);
    expect(run('Squeeze', [x], { axes: [-1] }, 11)[0].shape).toEqual([1, 3]);
    expect(run('Squeeze', [x, i64([0])], {}, 13)[0].shape).toEqual([3, 1]);
    expect(() => run('Squeeze', [x, i64([1])], {}, 13)).toThrow(LlmccError);
    expect(run('Unsqueeze', [f32(range(6), [2, 3]), i64([3, 0])], {}, 13)[0].shape).toEqual([1, 2, 3, 1]);
    expect(run('Unsqueeze', [f32(range(6), [2, 3])], { axes: [-1] }, 11)[0].shape).toEqual([2, 3, 1]);
  });

  it('Transpose permutes and reverses by default; works on strings', () => {
    const x = f32(range(6), [2, 3]);
    expect(run('Transpose', [x])[0].toArray()).toEqual([0, 3, 1, 4, 2, 5]);
    const s = Tensor.strings([2, 2], ['a', 'b', 'c', 'd']);
    expect(run('Transpose', [s], { perm: [1, 0] })[0].data).toEqual(['a', 'c', 'b', 'd']);
    expect(() => run('Transpose', [x], { perm: [0, 0] })).toThrow(LlmccError);
  });

  it('Gather, GatherElements and GatherND with negative indices and batch_dims', () => {
    const x = f32(range(6), [3, 2]);
    expect(run('Gather', [x, i64([-1, 0])])[0].toArray()).toEqual([4, 5, 0, 1]);
    expect(run('Gather', [x, i64([1], [])], { axis: 1 })[0].toArray()).toEqual([1, 3, 5]);
    expect(() => run('Gather', [x, i64([3])])).toThrow(LlmccError);
    expect(run('GatherElements', [x, i64([1, -2, 0, 0], [2, 2])], { axis: 1 })[0].toArray()).toEqual([1, 0, 2, 2]);
    const d = f32(range(8), [2, 2, 2]);
    expect(run('GatherND', [d, i64([1, 0], [2, 1])], { batch_dims: 1 })[0].toArray()).toEqual([2, 3, 4, 5]);
    expect(run('GatherND', [d, i64([0, 1, 1, 0], [2, 2])])[0].toArray()).toEqual([2, 3, 4, 5]);
  });

  it('ScatterND and ScatterElements with reductions', () => {
    const data = f32([1, 2, 3, 4]);
    expect(run('ScatterND', [data, i64([1, 1], [2, 1]), f32([5, 6])], { reduction: 'add' }, 18)[0].toArray()).toEqual([1, 13, 3, 4]);
    expect(run('ScatterND', [data, i64([3], [1, 1]), f32([0])], {}, 18)[0].toArray()).toEqual([1, 2, 3, 0]);
    expect(run('ScatterND', [data, i64([0], [1, 1]), f32([9])], { reduction: 'max' }, 18)[0].toArray()).toEqual([9, 2, 3, 4]);
    expect(() => run('ScatterND', [data, i64([0], [1, 1]), f32([9])], { reduction: 'max' }, 16)).toThrow(LlmccError);
    const m = f32(range(4), [2, 2]);
    expect(run('ScatterElements', [m, i64([1, 1], [1, 2]), f32([10, 20], [1, 2])], { axis: 0, reduction: 'mul' }, 18)[0].toArray())
      .toEqual([0, 1, 20, 60]);
    expect(run('ScatterElements', [m, i64([-1], [1, 1]), f32([7], [1, 1])], { axis: 1 }, 18)[0].toArray()).toEqual([0, 7, 2, 3]);
  });

  it('Pad: constant, reflect, edge, wrap, axes and negative pads', () => {
    const x = f32([1, 2, 3]);
    const pad = (mode: string, pads: number[]): number[] => run('Pad', [x, i64(pads)], { mode }, 19)[0].toArray();
    expect(pad('constant', [2, 1])).toEqual([0, 0, 1, 2, 3, 0]);
    expect(pad('reflect', [2, 2])).toEqual([3, 2, 1, 2, 3, 2, 1]);
    expect(pad('edge', [2, 1])).toEqual([1, 1, 1, 2, 3, 3]);
    expect(pad('wrap', [2, 1])).toEqual([2, 3, 1, 2, 3, 1]);
    expect(pad('constant', [-1, 1])).toEqual([2, 3, 0]);
    expect(run('Pad', [x, i64([1, 0]), f32([7], []), i64([-1])], {}, 18)[0].toArray()).toEqual([7, 1, 2, 3]);
    expect(run('Pad', [x], { pads: [1, 1], value: { float: 5 } }, 2)[0].toArray()).toEqual([5, 1, 2, 3, 5]);
    expect(() => pad('wrap', [1, 1].concat([]))).not.toThrow();
    expect(() => run('Pad', [x, i64([1, 1])], { mode: 'wrap' }, 18)).toThrow(LlmccError);
  });

  it('Range, Trilu, Where, Tile, Expand, ConstantOfShape', () => {
    expect(run('Range', [Tensor.scalar('i32', 10), Tensor.scalar('i32', 4), Tensor.scalar('i32', -3)])[0].toArray()).toEqual([10, 7]);
    expect(run('Range', [Tensor.scalar('f32', 0), Tensor.scalar('f32', 1), Tensor.scalar('f32', 0.25)])[0].toArray()).toEqual([0, 0.25, 0.5, 0.75]);
    const m = f32(range(9), [3, 3]);
    expect(run('Trilu', [m])[0].toArray()).toEqual([0, 1, 2, 0, 4, 5, 0, 0, 8]);
    expect(run('Trilu', [m, i64([-1], [])], { upper: 0 })[0].toArray()).toEqual([0, 0, 0, 3, 0, 0, 6, 7, 0]);
    const cond = Tensor.fromNumbers('bool', [2, 1], [1, 0]);
    expect(run('Where', [cond, f32([1, 2]), f32([9], [])])[0].toArray()).toEqual([1, 2, 9, 9]);
    expect(run('Tile', [f32([1, 2], [1, 2]), i64([2, 2])])[0].toArray()).toEqual([1, 2, 1, 2, 1, 2, 1, 2]);
    expect(run('Expand', [f32([1, 2], [2, 1]), i64([2, 3])])[0].toArray()).toEqual([1, 1, 1, 2, 2, 2]);
    expect(run('Expand', [f32([1, 2, 3], [3]), i64([2, 1])])[0].shape).toEqual([2, 3]);
    const fill = run('ConstantOfShape', [i64([2, 2])], { value: Tensor.fromNumbers('i32', [1], [7]) })[0];
    expect([fill.dtype, fill.toArray()]).toEqual(['i32', [7, 7, 7, 7]]);
  });

  it('Tile (block copies) matches the per-element definition; refuses outputs over the size budget', () => {
    const cases: [number[], number[]][] = [[[], []], [[3], [4]], [[2, 3], [1, 1]], [[2, 3], [3, 2]], [[2, 1, 3], [2, 3, 1]], [[2, 3], [0, 2]], [[0, 2], [3, 1]], [[2, 3, 4, 5], [2, 1, 3, 2]]];
    for (const [shape, repeats] of cases) {
      const size = shape.reduce((a, b) => a * b, 1);
      const x = f32(range(size), shape);
      const out = run('Tile', [x, i64(repeats)])[0];
      const outShape = shape.map((d, i) => d * repeats[i]);
      expect(out.shape).toEqual(outShape);
      const expected: number[] = [];
      const outSize = outShape.reduce((a, b) => a * b, 1);
      for (let flat = 0; flat < outSize; flat++) {
        let rest = flat;
        let source = 0;
        let stride = 1;
        for (let d = shape.length - 1; d >= 0; d--) {
          source += ((rest % outShape[d]) % shape[d]) * stride;
          rest = Math.floor(rest / outShape[d]);
          stride *= shape[d];
        }
        expected.push(source);
      }
      expect(out.toArray()).toEqual(expected);
    }
    const strings = new Tensor('string', [2], ['a', 'b']);
    expect(run('Tile', [strings, i64([2])])[0].data).toEqual(['a', 'b', 'a', 'b']);
    // A large output is one pass of memmoves, not per-element index math (was > 20 s).
    const started = performance.now();
    expect(run('Tile', [f32(range(120), [2, 3, 4, 5]), i64([7, 6, 4, 2048])])[0].size).toBe(120 * 7 * 6 * 4 * 2048);
    expect(performance.now() - started).toBeLessThan(5000);
    expect(() => run('Tile', [f32(range(120), [2, 3, 4, 5]), i64([7, 6, 4, 65536])])).toThrow(/more than the .* one tensor may hold/);
  });

  it('Einsum: matmul, transpose, diagonal, sum, ellipsis, implicit output', () => {
    const a = f32(range(6), [2, 3]);
    const b = f32(range(6), [3, 2]);
    expect(run('Einsum', [a, b], { equation: 'ij,jk->ik' })[0].toArray()).toEqual([10, 13, 28, 40]);
    expect(run('Einsum', [a], { equation: 'ij->ji' })[0].toArray()).toEqual([0, 3, 1, 4, 2, 5]);
    expect(run('Einsum', [a], { equation: 'ij' })[0].shape).toEqual([2, 3]);
    expect(run('Einsum', [a], { equation: 'ij->' })[0].toArray()).toEqual([15]);
    const sq = f32(range(9), [3, 3]);
    expect(run('Einsum', [sq], { equation: 'ii->i' })[0].toArray()).toEqual([0, 4, 8]);
    expect(run('Einsum', [sq], { equation: 'ii' })[0].toArray()).toEqual([12]);
    const batch = f32(range(12), [2, 2, 3]);
    expect(run('Einsum', [batch, b], { equation: '...ij,jk->...ik' })[0].shape).toEqual([2, 2, 2]);
    expect(run('Einsum', [a, a], { equation: 'ij,ij->i' })[0].toArray()).toEqual([5, 50]);
  });

  it('TensorScatter writes per batch, linear and circular', () => {
    const past = f32(new Array<number>(8).fill(0), [2, 4, 1]);
    const update = f32([1, 2, 3, 4], [2, 2, 1]);
    expect(run('TensorScatter', [past, update, i64([1, 3])], { mode: 'circular', axis: 1 }, 24)[0].toArray())
      .toEqual([0, 1, 2, 0, 4, 0, 0, 3]);
    expect(run('TensorScatter', [past, update], { axis: -2 }, 24)[0].toArray()).toEqual([1, 2, 0, 0, 3, 4, 0, 0]);
    expect(() => run('TensorScatter', [past, update, i64([1, 3])], { axis: 1 }, 24)).toThrow(LlmccError);
  });

  it('Constant attributes, Shape start/end, Size, Flatten, Concat', () => {
    expect(run('Constant', [], { value_ints: [1, 2] })[0].dtype).toBe('i64');
    expect(run('Constant', [], { value_float: { float: 1.5 } })[0].toArray()).toEqual([1.5]);
    const x = f32(range(24), [2, 3, 4]);
    expect(run('Shape', [x], { start: -2 }, 15)[0].toArray()).toEqual([3, 4]);
    expect(run('Shape', [x], { start: 2, end: 1 }, 15)[0].toArray()).toEqual([]);
    expect(run('Size', [x])[0].toArray()).toEqual([24]);
    expect(run('Flatten', [x], { axis: -1 })[0].shape).toEqual([6, 4]);
    expect(run('Flatten', [x], { axis: 0 })[0].shape).toEqual([1, 24]);
    expect(run('Concat', [f32([1], [1, 1]), f32([2, 3], [1, 2])], { axis: -1 })[0].toArray()).toEqual([1, 2, 3]);
    expect(() => run('Concat', [f32([1], [1, 1]), f32([2, 3], [2, 1])], { axis: 1 })).toThrow(LlmccError);
  });
});

describe('shape group: symbolic inference', () => {
  it('Shape → Gather → Unsqueeze → Concat → Reshape keeps symbolic dims', () => {
    const x: InferInput = { type: { dtype: 'f32', shape: ['batch', 'seq', 64] } };
    const [shape] = infer('Shape', [x]);
    expect(shape.shapeValue).toEqual(['batch', 'seq', 64]);
    const [seq] = infer('Gather', [{ type: shape.type, shapeValue: shape.shapeValue }, { constant: i64([1], []) }]);
    expect(seq.type.shape).toEqual([]);
    expect(seq.shapeValue).toEqual(['seq']);
    const [seq1] = infer('Unsqueeze', [{ type: seq.type, shapeValue: seq.shapeValue }, { constant: i64([0]) }], {}, 13);
    expect(seq1.shapeValue).toEqual(['seq']);
    const [target] = infer('Concat', [{ constant: i64([0]) }, { type: seq1.type, shapeValue: seq1.shapeValue }, { constant: i64([4, -1]) }], { axis: 0 });
    expect(target.shapeValue).toEqual([0, 'seq', 4, -1]);
    const [out] = infer('Reshape', [x, { type: target.type, shapeValue: target.shapeValue }]);
    expect(out.type.shape).toEqual(['batch', 'seq', 4, 16]);
  });

  it('Reshape cancels symbolic factors for -1', () => {
    const [flat] = infer('Reshape', [{ type: { dtype: 'f32', shape: ['b', 's', 8] } }, shapeVector([-1, 8])]);
    const merged = flat.type.shape?.[0];
    const [back] = infer('Reshape', [{ type: { dtype: 'f32', shape: [merged as Dim, 8] } }, shapeVector(['b', -1, 2, 4])]);
    expect(back.type.shape).toEqual(['b', 's', 2, 4]);
  });

  it('Expand, ConstantOfShape, Range and Slice consume symbolic shape values', () => {
    const [expanded] = infer('Expand', [{ type: { dtype: 'f32', shape: [1, 1, 'seq'] } }, shapeVector(['batch', 4, 1])]);
    expect(expanded.type.shape).toEqual(['batch', 4, 'seq']);
    const [filled] = infer('ConstantOfShape', [shapeVector(['batch', 'seq'])]);
    expect(filled.type).toEqual({ dtype: 'f32', shape: ['batch', 'seq'] });
    const scalar = (v: Dim): InferInput => ({ type: { dtype: 'i64', shape: [] }, shapeValue: [v] });
    const [positions] = infer('Range', [scalar(0), scalar('seq'), scalar(1)]);
    expect(positions.type.shape).toEqual(['seq']);
    const [offsets] = infer('Range', [scalar('past'), scalar('past+seq'), scalar(1)]);
    expect(offsets.type.shape).toEqual(['seq']);
    const sliceOf = (starts: Dim[], ends: Dim[]): Dim[] | undefined =>
      infer('Slice', [{ type: { dtype: 'f32', shape: ['seq', 64] } }, shapeVector(starts), shapeVector(ends), { constant: i64([0]) }], {}, 13)[0].type.shape;
    expect(sliceOf([0], [2 ** 63])).toEqual(['seq', 64]);
    expect(sliceOf([-1], [2 ** 63])).toEqual([1, 64]);
    expect(sliceOf([1], [-1])).toEqual(['seq-2', 64]);
    expect(sliceOf([0], ['len'])).toEqual(['len', 64]);
    expect(sliceOf(['past'], ['past+seq'])).toEqual(['seq', 64]);
    const [cut] = infer('Slice', [shapeVector(['b', 's', 'h']), { constant: i64([1]) }, { constant: i64([2 ** 63]) }], {}, 13);
    expect(cut.shapeValue).toEqual(['s', 'h']);
  });

  it('Concat adds symbolic lengths; Where selects tracked shape vectors', () => {
    const [kv] = infer('Concat', [{ type: { dtype: 'f32', shape: ['b', 2, 'past', 8] } }, { type: { dtype: 'f32', shape: ['b', 2, 'seq', 8] } }], { axis: 2 });
    expect(kv.type.shape).toEqual(['b', 2, 'past+seq', 8]);
    const [picked] = infer('Where', [
      { type: { dtype: 'bool', shape: [3] }, shapeValue: [0, 1, 0] },
      shapeVector([1, 1, 1]),
      shapeVector(['b', -1, 'seq']),
    ]);
    expect(picked.shapeValue).toEqual(['b', 1, 'seq']);
  });

  it('unknown values give fresh dims with the rank kept', () => {
    const [r] = infer('Reshape', [{ type: { dtype: 'f32', shape: ['b', 4] } }, { type: { dtype: 'i64', shape: [3] } }]);
    expect(r.type.shape).toHaveLength(3);
    expect(r.type.shape?.every((d) => typeof d === 'string')).toBe(true);
    const [s] = infer('Shape', [{ type: { dtype: 'f32', shape: undefined } }]);
    expect(s.type.shape).toHaveLength(1);
  });

  it('Split and Squeeze keep shape vectors', () => {
    const parts = infer('Split', [shapeVector(['b', 's', 8, 16])], { num_outputs: 2 }, 18, 2);
    expect(parts.map((p) => p.shapeValue)).toEqual([['b', 's'], [8, 16]]);
    const [sq] = infer('Squeeze', [{ type: { dtype: 'i64', shape: [1] }, shapeValue: ['seq'] }, { constant: i64([0]) }], {}, 13);
    expect(sq.type.shape).toEqual([]);
    expect(sq.shapeValue).toEqual(['seq']);
  });
});

describe('Loop', () => {
  /** A body that accumulates `acc + delta` and emits each old acc as a scan output. */
  function accumulateBody(): Graph {
    return {
      name: 'body',
      inputs: [
        { name: 'i', type: { dtype: 'i64', shape: [] } },
        { name: 'cond_in', type: { dtype: 'bool', shape: [] } },
        { name: 'acc', type: { dtype: 'f32', shape: [] } },
      ],
      outputs: [
        { name: 'cond_out', type: { dtype: 'bool', shape: [] } },
        { name: 'next', type: { dtype: 'f32', shape: [] } },
        { name: 'seen', type: { dtype: 'f32', shape: [] } },
      ],
      nodes: [
        { name: 'c', domain: '', op: 'Identity', inputs: ['cond_in'], outputs: ['cond_out'], attributes: new Map() },
        { name: 'n', domain: '', op: 'Identity', inputs: ['acc'], outputs: ['seen'], attributes: new Map() },
        { name: 'u1', domain: '', op: 'Unsqueeze', inputs: ['acc', 'zero'], outputs: ['acc_vec'], attributes: new Map() },
        // `delta` belongs to the outer graph: subgraphs may read enclosing values.
        { name: 'u2', domain: '', op: 'Unsqueeze', inputs: ['delta', 'zero'], outputs: ['delta_vec'], attributes: new Map() },
        { name: 'cat', domain: '', op: 'Concat', inputs: ['acc_vec', 'delta_vec'], outputs: ['pair'], attributes: new Map([['axis', { kind: 'int', value: 0 }]]) },
        // acc + delta, spelled with shape-group ops only.
        { name: 'sum', domain: '', op: 'Einsum', inputs: ['pair'], outputs: ['next'], attributes: new Map([['equation', { kind: 'string', value: 'i->' }]]) },
      ],
      initializers: new Map([['zero', { name: 'zero', dtype: 'i64', shape: [1], byteLength: 8, location: { kind: 'inline' }, load: () => i64([0]) }]]),
      valueInfo: new Map(),
    };
  }

  function loopGraph(body: Graph, withTrip: boolean): Graph {
    return {
      name: 'main',
      inputs: [
        { name: 'M', type: { dtype: 'i64', shape: [] } },
        { name: 'cond', type: { dtype: 'bool', shape: [] } },
        { name: 'start', type: { dtype: 'f32', shape: [] } },
        { name: 'delta', type: { dtype: 'f32', shape: [] } },
      ],
      outputs: [{ name: 'final', type: { dtype: 'f32', shape: [] } }, { name: 'all', type: { dtype: 'f32', shape: undefined } }],
      nodes: [{
        name: 'loop', domain: '', op: 'Loop', inputs: [withTrip ? 'M' : '', 'cond', 'start'], outputs: ['final', 'all'],
        attributes: new Map([['body', { kind: 'graph', value: body }]]),
      }],
      initializers: new Map(),
      valueInfo: new Map(),
    };
  }

  it('runs M iterations, carries values and stacks scan outputs', () => {
    const feeds = new Map([
      ['M', Tensor.scalar('i64', 3)], ['cond', Tensor.scalar('bool', 1)],
      ['start', Tensor.scalar('f32', 1)], ['delta', Tensor.scalar('f32', 2)],
    ]);
    const out = interpret(loopGraph(accumulateBody(), true), feeds, { opsets: new Map([['', 13]]) });
    expect(out.get('final')?.toArray()).toEqual([7]);
    expect(out.get('all')?.shape).toEqual([3]);
    expect(out.get('all')?.toArray()).toEqual([1, 3, 5]);
  });

  it('stops at once when cond is false, with an empty scan output', () => {
    const feeds = new Map([
      ['M', Tensor.scalar('i64', 3)], ['cond', Tensor.scalar('bool', 0)],
      ['start', Tensor.scalar('f32', 1)], ['delta', Tensor.scalar('f32', 2)],
    ]);
    const out = interpret(loopGraph(accumulateBody(), true), feeds, { opsets: new Map([['', 13]]) });
    expect(out.get('final')?.toArray()).toEqual([1]);
    expect(out.get('all')?.shape).toEqual([0]);
  });

  it('infers carried types and a leading iteration dim for scan outputs', () => {
    const body = accumulateBody();
    const def = lookupOp('', 'Loop');
    const node = loopGraph(body, true).nodes[0];
    const infos = def?.infer({
      node, opset: 13, attrs: new Attrs(node),
      inputs: [{ dtype: 'i64', shape: [] }, { dtype: 'bool', shape: [] }, { dtype: 'f32', shape: [] }],
      constant: (i) => (i === 0 ? Tensor.scalar('i64', 5) : undefined),
      shapeValue: () => undefined,
      symbols: new SymbolSource('u'),
      inferSubgraph: () => [{ dtype: 'bool', shape: [] }, { dtype: 'f32', shape: [] }, { dtype: 'f32', shape: [] }],
    });
    expect(infos?.[0].type).toEqual({ dtype: 'f32', shape: [] });
    expect(infos?.[1].type.dtype).toBe('f32');
    expect(infos?.[1].type.shape).toHaveLength(1);
  });
});
