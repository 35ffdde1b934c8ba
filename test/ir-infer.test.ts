import { describe, expect, it } from 'vitest';
import type { Attribute, Dim, Graph, Node, TensorType, Weight } from '../ir/graph.js';
import type { DType } from '../ir/dtype.js';
import { LlmccError } from '../ir/errors.js';
import { inferTypes, mergeTypes } from '../ir/infer.js';
import { Tensor } from '../ir/tensor.js';

const OPSETS = new Map([['', 17]]);

function value(name: string, dtype: DType, shape: Dim[] | undefined): { name: string; type: TensorType } {
  return { name, type: { dtype, shape } };
}

function weight(name: string, tensor: Tensor): Weight {
  return { name, dtype: tensor.dtype, shape: [...tensor.shape], byteLength: 0, location: { kind: 'inline' }, load: () => tensor };
}

function node(op: string, inputs: string[], outputs: string[], attributes: Record<string, Attribute> = {}, name = outputs[0]): Node {
  return { name, domain: '', op, inputs, outputs, attributes: new Map(Object.entries(attributes)) };
}

function graph(parts: Partial<Graph> & Pick<Graph, 'nodes'>): Graph {
  return { name: 'g', inputs: [], outputs: [], initializers: new Map(), valueInfo: new Map(), ...parts };
}

const i64 = (values: number[], shape: number[] = [values.length]): Tensor => Tensor.fromNumbers('i64', shape, values);

function thrown(f: () => void): LlmccError {
  try {
    f();
  } catch (error) {
    if (error instanceof LlmccError) return error;
    throw error;
  }
  throw new Error('expected an LlmccError');
}

/** x : f32[batch, sequence_length, 16] reshaped to [batch, sequence_length, 4, 4] through a shape computation. */
function reshapeChain(): Graph {
  return graph({
    inputs: [value('x', 'f32', ['batch', 'sequence_length', 16])],
    outputs: [value('y', 'f32', undefined)],
    initializers: new Map([
      ['zero', weight('zero', i64([0], []))],
      ['one', weight('one', i64([1], []))],
      ['axes', weight('axes', i64([0]))],
      ['tail', weight('tail', i64([4, 4]))],
    ]),
    nodes: [
      node('Shape', ['x'], ['shape']),
      node('Gather', ['shape', 'zero'], ['b'], { axis: { kind: 'int', value: 0 } }),
      node('Gather', ['shape', 'one'], ['s'], { axis: { kind: 'int', value: 0 } }),
      node('Unsqueeze', ['b', 'axes'], ['b1']),
      node('Unsqueeze', ['s', 'axes'], ['s1']),
      node('Concat', ['b1', 's1', 'tail'], ['target'], { axis: { kind: 'int', value: 0 } }),
      node('Reshape', ['x', 'target'], ['y']),
    ],
  });
}

describe('inferTypes', () => {
  it('keeps batch and sequence_length symbolic through Shape -> Gather -> Concat -> Reshape', () => {
    const g = reshapeChain();
    inferTypes(g, OPSETS);
    expect(g.valueInfo.get('shape')).toEqual({ dtype: 'i64', shape: [3] });
    expect(g.valueInfo.get('b')).toEqual({ dtype: 'i64', shape: [] });
    expect(g.valueInfo.get('target')).toEqual({ dtype: 'i64', shape: [4] });
    expect(g.valueInfo.get('y')).toEqual({ dtype: 'f32', shape: ['batch', 'sequence_length', 4, 4] });
    // The graph output picks up the inferred type; every value is typed.
    expect(g.outputs[0].type).toEqual({ dtype: 'f32', shape: ['batch', 'sequence_length', 4, 4] });
    for (const name of ['x', 'zero', 'one', 'axes', 'tail', 'shape', 's', 'b1', 's1']) expect(g.valueInfo.has(name)).toBe(true);
  });

  it('is idempotent: a second run gives the same types', () => {
    const g = reshapeChain();
    inferTypes(g, OPSETS);
    const first = new Map(g.valueInfo);
    inferTypes(g, OPSETS);
    expect(g.valueInfo).toEqual(first);
  });

  it('folds constants: a fully static shape computation gives a static shape', () => {
    const g = graph({
      inputs: [value('x', 'f32', [2, 3, 4])],
      outputs: [value('y', 'f32', undefined)],
      nodes: [
        node('Constant', [], ['c'], { value: { kind: 'tensor', value: i64([10]) } }),
        node('Constant', [], ['d'], { value: { kind: 'tensor', value: i64([2]) } }),
        node('Add', ['c', 'd'], ['target']), // [12]
        node('Shape', ['x'], ['xs']),
        node('Slice', ['xs', 'zero', 'one'], ['first']), // [2] from a static shape: a constant too
        node('Concat', ['first', 'target'], ['full'], { axis: { kind: 'int', value: 0 } }),
        node('Reshape', ['x', 'full'], ['y']),
      ],
      initializers: new Map([['zero', weight('zero', i64([0]))], ['one', weight('one', i64([1]))]]),
    });
    inferTypes(g, OPSETS);
    expect(g.valueInfo.get('y')).toEqual({ dtype: 'f32', shape: [2, 12] });
  });

  it('refines an inferred symbolic dim with a declared static one', () => {
    const g = graph({
      inputs: [value('x', 'f32', ['n', 4])],
      outputs: [value('y', 'f32', ['n', 4])],
      nodes: [node('Relu', ['x'], ['r']), node('Neg', ['r'], ['y'])],
      valueInfo: new Map([['r', { dtype: 'f32', shape: [3, 4] }]]),
    });
    inferTypes(g, OPSETS);
    expect(g.valueInfo.get('r')?.shape).toEqual([3, 4]);
    expect(g.valueInfo.get('y')?.shape).toEqual([3, 4]);
  });

  it('reports a static shape conflict with the value, both shapes and the node', () => {
    const g = graph({
      inputs: [value('a', 'f32', [2, 3]), value('b', 'f32', [2, 3])],
      outputs: [value('y', 'f32', [2, 4])],
      nodes: [node('Add', ['a', 'b'], ['y'], {}, 'x')],
      valueInfo: new Map([['y', { dtype: 'f32', shape: [2, 4] }]]),
    });
    const error = thrown(() => inferTypes(g, OPSETS));
    expect(error.message).toContain("shape mismatch for value 'y': inferred [2,3], declared [2,4]");
    expect(error.message).toContain('node "x" (Add)');
  });

  it('leaves the declared types in place when inference fails', () => {
    const g = graph({
      inputs: [value('x', 'f32', [2, 3]), value('b', 'f32', [4, 5])],
      outputs: [value('y', 'f32', undefined)],
      nodes: [node('Relu', ['x'], ['r']), node('MatMul', ['x', 'b'], ['y'])],
      valueInfo: new Map([['r', { dtype: 'f32', shape: ['n', 3] }]]),
    });
    expect(() => inferTypes(g, OPSETS)).toThrow(LlmccError);
    expect(g.valueInfo).toEqual(new Map([['r', { dtype: 'f32', shape: ['n', 3] }]]));
  });

  it('reports a dtype conflict', () => {
    const g = graph({
      inputs: [value('a', 'f32', [2])],
      outputs: [value('y', 'f16', [2])],
      nodes: [node('Relu', ['a'], ['y'])],
    });
    expect(thrown(() => inferTypes(g, OPSETS)).message).toMatch(/dtype mismatch for value 'y': inferred f32, declared f16/);
  });

  it('names the node when an op rejects its inputs', () => {
    const g = graph({
      inputs: [value('a', 'f32', [2, 3]), value('b', 'f32', [4, 5])],
      outputs: [value('y', 'f32', undefined)],
      nodes: [node('MatMul', ['a', 'b'], ['y'], {}, 'mm')],
    });
    expect(thrown(() => inferTypes(g, OPSETS)).message).toContain('node "mm" (MatMul)');
  });

  it('does not treat an initializer that is also a graph input as a constant', () => {
    const g = graph({
      inputs: [value('x', 'f32', [2, 3, 4]), value('target', 'i64', [2])],
      outputs: [value('y', 'f32', undefined)],
      initializers: new Map([['target', weight('target', i64([6, 4]))]]),
      nodes: [node('Reshape', ['x', 'target'], ['y'])],
    });
    inferTypes(g, OPSETS);
    const shape = g.valueInfo.get('y')?.shape;
    expect(shape).toHaveLength(2);
    expect(shape).not.toEqual([6, 4]);
  });

  it('makes fresh symbols that do not collide with names the model uses', () => {
    const g = graph({
      inputs: [value('x', 'f32', ['unk_0', 'unk_1']), value('target', 'i64', [2])],
      outputs: [value('y', 'f32', undefined)],
      nodes: [node('Reshape', ['x', 'target'], ['y'])],
    });
    inferTypes(g, OPSETS);
    const shape = g.valueInfo.get('y')?.shape ?? [];
    expect(shape).toHaveLength(2);
    for (const d of shape) expect(['unk_0', 'unk_1']).not.toContain(d);
  });

  it('prefers a declared dim name over a made-up symbol', () => {
    const g = graph({
      inputs: [value('x', 'f32', [2, 6]), value('target', 'i64', [2])],
      outputs: [value('y', 'f32', ['rows', 'cols'])],
      nodes: [node('Reshape', ['x', 'target'], ['y'])],
    });
    inferTypes(g, OPSETS);
    expect(g.outputs[0].type.shape).toEqual(['rows', 'cols']);
  });

  it('rejects an unsupported op naming the node', () => {
    const g = graph({
      inputs: [value('a', 'f32', [2])],
      outputs: [value('y', 'f32', [2])],
      nodes: [{ ...node('Frobnicate', ['a'], ['y'], {}, 'f'), domain: 'x.y' }],
    });
    expect(thrown(() => inferTypes(g, OPSETS)).message).toBe('unsupported op, node "f" (x.y.Frobnicate)');
  });

  it('infers subgraphs that read values of the enclosing graph', () => {
    const body = graph({
      name: 'body',
      inputs: [value('i', 'i64', []), value('cond_in', 'bool', []), value('acc_in', 'f32', ['n'])],
      outputs: [value('cond_out', 'bool', []), value('acc_out', 'f32', undefined)],
      nodes: [node('Identity', ['cond_in'], ['cond_out']), node('Add', ['acc_in', 'step'], ['acc_out'])],
    });
    const g = graph({
      inputs: [value('trip', 'i64', []), value('cond', 'bool', []), value('start', 'f32', ['n']), value('step', 'f32', ['n'])],
      outputs: [value('final', 'f32', undefined)],
      nodes: [node('Loop', ['trip', 'cond', 'start'], ['final'], { body: { kind: 'graph', value: body } })],
    });
    inferTypes(g, OPSETS);
    expect(body.valueInfo.get('acc_out')).toEqual({ dtype: 'f32', shape: ['n'] });
    expect(g.valueInfo.get('final')?.dtype).toBe('f32');
  });
});

describe('mergeTypes', () => {
  it('keeps static dims and rejects rank changes', () => {
    expect(mergeTypes({ dtype: 'f32', shape: ['a', 3] }, { dtype: 'f32', shape: [2, 'b'] }, 'v', 'here'))
      .toEqual({ dtype: 'f32', shape: [2, 3] });
    expect(mergeTypes({ dtype: 'f32', shape: undefined }, { dtype: 'f32', shape: [2] }, 'v', 'here').shape).toEqual([2]);
    expect(() => mergeTypes({ dtype: 'f32', shape: [2] }, { dtype: 'f32', shape: [2, 1] }, 'v', 'here')).toThrow(LlmccError);
  });
});
