import { describe, expect, it } from 'vitest';
import type { Attribute, Dim, Graph, Model, Node, TensorType } from '../ir/graph.js';
import type { DType } from '../ir/dtype.js';
import { LlmccError } from '../ir/errors.js';
import { formatUnsupported, topologicalSort, unsupportedOps, verifyGraph, verifyModel } from '../ir/verify.js';

const OPSETS = new Map([['', 17]]);

function value(name: string, dtype: DType = 'f32', shape: Dim[] | undefined = [2]): { name: string; type: TensorType } {
  return { name, type: { dtype, shape } };
}

function node(op: string, inputs: string[], outputs: string[], name = outputs[0], domain = '', attributes: Record<string, Attribute> = {}): Node {
  return { name, domain, op, inputs, outputs, attributes: new Map(Object.entries(attributes)) };
}

function graph(parts: Partial<Graph> & Pick<Graph, 'nodes'>): Graph {
  return { name: 'main', inputs: [value('x')], outputs: [value('y')], initializers: new Map(), valueInfo: new Map(), ...parts };
}

function thrown(f: () => void): LlmccError {
  try {
    f();
  } catch (error) {
    if (error instanceof LlmccError) return error;
    throw error;
  }
  throw new Error('expected an LlmccError');
}

describe('verifyGraph', () => {
  it('accepts a well-formed graph and types it', () => {
    const g = graph({ nodes: [node('Relu', ['x'], ['a']), node('Neg', ['a'], ['y'])] });
    verifyGraph(g, OPSETS);
    expect(g.valueInfo.get('a')).toEqual({ dtype: 'f32', shape: [2] });
  });

  it('sorts nodes topologically, keeping the order of independent nodes', () => {
    const g = graph({
      outputs: [value('y'), value('z')],
      nodes: [
        node('Add', ['a', 'b'], ['y']),
        node('Relu', ['x'], ['a']),
        node('Neg', ['x'], ['z']),
        node('Abs', ['x'], ['b']),
      ],
    });
    verifyGraph(g, OPSETS);
    expect(g.nodes.map((n) => n.name)).toEqual(['a', 'z', 'b', 'y']);
  });

  it('leaves an ordered graph as it is', () => {
    const nodes = [node('Relu', ['x'], ['a']), node('Neg', ['x'], ['b']), node('Add', ['a', 'b'], ['y'])];
    expect(topologicalSort(graph({ nodes })).map((n) => n.name)).toEqual(['a', 'b', 'y']);
  });

  it('reports a cycle naming the nodes on it', () => {
    const g = graph({
      nodes: [
        node('Relu', ['x'], ['pre'], 'entry'),
        node('Add', ['pre', 'c'], ['a'], 'first'),
        node('Neg', ['a'], ['b'], 'second'),
        node('Abs', ['b'], ['c'], 'third'),
        node('Relu', ['a'], ['y'], 'exit'),
      ],
    });
    const message = thrown(() => verifyGraph(g, OPSETS)).message;
    expect(message).toMatch(/^graph has a cycle: /);
    for (const name of ['first', 'second', 'third']) expect(message).toContain(`node "${name}"`);
    expect(message).not.toContain('"entry"');
    expect(message).not.toContain('"exit"');
  });

  it('reports a node that reads its own output as a cycle', () => {
    const g = graph({ nodes: [node('Add', ['x', 'y'], ['y'], 'loop')] });
    expect(thrown(() => verifyGraph(g, OPSETS)).message).toContain('graph has a cycle: node "loop" (Add) -> node "loop" (Add)');
  });

  it('rejects a value defined twice', () => {
    const g = graph({ nodes: [node('Relu', ['x'], ['y'], 'one'), node('Neg', ['x'], ['y'], 'two')] });
    expect(thrown(() => verifyGraph(g, OPSETS)).message).toContain(
      `value 'y' is defined more than once: by node "one" (Relu) and by node "two" (Neg)`,
    );
  });

  it('rejects a node output that redefines a graph input', () => {
    const g = graph({ nodes: [node('Relu', ['x'], ['x'], 'again'), node('Neg', ['x'], ['y'])] });
    expect(thrown(() => verifyGraph(g, OPSETS)).message).toContain(`value 'x' is defined more than once: by a graph input`);
  });

  it('allows a graph input that is also an initializer', () => {
    const g = graph({
      inputs: [value('x'), value('w')],
      initializers: new Map([['w', {
        name: 'w', dtype: 'f32', shape: [2], byteLength: 8, location: { kind: 'inline' },
        load: () => { throw new Error('not needed'); },
      }]]),
      nodes: [node('Add', ['x', 'w'], ['y'])],
    });
    verifyGraph(g, OPSETS);
  });

  it('rejects an undefined value, naming it and its reader', () => {
    const g = graph({ nodes: [node('Add', ['x', 'ghost'], ['y'], 'adder')] });
    expect(thrown(() => verifyGraph(g, OPSETS)).message).toContain(`value used but never defined: 'ghost' (input of node "adder" (Add))`);
  });

  it('rejects a graph output nothing produces', () => {
    const g = graph({ outputs: [value('nowhere')], nodes: [node('Relu', ['x'], ['y'])] });
    expect(thrown(() => verifyGraph(g, OPSETS)).message).toContain(`graph output 'nowhere' is never produced`);
  });

  it('lists every unsupported op at once, on one line', () => {
    const g = graph({
      nodes: [
        node('Foo', ['x'], ['a'], 'a', 'com.microsoft'),
        node('Bar', ['a'], ['b'], 'c'),
        node('Foo', ['b'], ['y'], 'b', 'com.microsoft'),
      ],
    });
    const message = thrown(() => verifyGraph(g, OPSETS)).message;
    expect(message).toBe('unsupported ops: com.microsoft.Foo (2 nodes: "a", "b"); Bar (1 node: "c")');
    expect(message).not.toContain('\n');
  });

  it('finds unsupported ops inside subgraphs', () => {
    const body: Graph = {
      name: 'body', inputs: [], outputs: [value('q')], initializers: new Map(), valueInfo: new Map(),
      nodes: [node('Mystery', ['x'], ['q'], 'inner')],
    };
    const g = graph({ nodes: [node('If', ['cond'], ['y'], 'if', '', { then_branch: { kind: 'graph', value: body } })] });
    expect(unsupportedOps(g)).toEqual([{ domain: '', op: 'If', nodes: ['if'] }, { domain: '', op: 'Mystery', nodes: ['inner'] }]);
  });

  it('shortens long node lists', () => {
    const names = ['a', 'b', 'c', 'd', 'e', 'f', 'g'];
    expect(formatUnsupported([{ domain: '', op: 'X', nodes: names }])).toBe('unsupported ops: X (7 nodes: "a", "b", "c", "d", "e", …)');
  });

  it('checks shapes against declared types', () => {
    const g = graph({
      inputs: [value('x', 'f32', [2, 3])],
      outputs: [value('y', 'f32', [3, 2])],
      nodes: [node('Relu', ['x'], ['y'], 'r')],
    });
    expect(thrown(() => verifyGraph(g, OPSETS)).message).toBe(
      `shape mismatch for value 'y': inferred [2,3], declared [3,2], output of graph "main"`,
    );
  });

  it('checks dtypes against declared types', () => {
    const g = graph({
      outputs: [value('y', 'f32', [2])],
      valueInfo: new Map([['a', { dtype: 'i32', shape: [2] }]]),
      nodes: [node('Relu', ['x'], ['a'], 'r'), node('Neg', ['a'], ['y'])],
    });
    expect(thrown(() => verifyGraph(g, OPSETS)).message).toBe(
      `dtype mismatch for value 'a': inferred f32, declared i32, node "r" (Relu)`,
    );
  });

  it('lets subgraphs read values of the enclosing graph, and sorts them too', () => {
    const body: Graph = {
      name: 'body',
      inputs: [value('i', 'i64', []), value('c', 'bool', []), value('acc', 'f32', [2])],
      outputs: [value('c_out', 'bool', []), value('acc_out', 'f32', [2])],
      initializers: new Map(),
      valueInfo: new Map(),
      nodes: [node('Add', ['acc', 'outer'], ['acc_out']), node('Identity', ['c'], ['c_out'])],
    };
    const g = graph({
      inputs: [value('x'), value('n', 'i64', []), value('go', 'bool', [])],
      nodes: [
        node('Loop', ['n', 'go', 'x'], ['y'], 'loop', '', { body: { kind: 'graph', value: body } }),
        node('Relu', ['x'], ['outer']), // read by the loop body: must come first
      ],
    });
    verifyGraph(g, OPSETS);
    expect(g.nodes.map((n) => n.name)).toEqual(['outer', 'loop']);

    body.nodes.push(node('Neg', ['missing'], ['z'], 'lost'));
    expect(thrown(() => verifyGraph(g, OPSETS)).message).toContain(`'missing' (input of node "lost" (Neg))`);
  });

  it('verifyModel uses the model opsets', () => {
    const model: Model = { irVersion: 8, producer: 't', opsets: OPSETS, graph: graph({ nodes: [node('Relu', ['x'], ['y'])] }) };
    verifyModel(model);
    expect(model.graph.valueInfo.get('y')).toEqual({ dtype: 'f32', shape: [2] });
  });
});
