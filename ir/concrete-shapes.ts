/**
 * Output shapes of one node on concrete input shapes, from its op's `infer`: what a runtime or
 * a shape-specialising compiler needs to size buffers. Every output must come out fully
 * numeric; a data-dependent one is refused with the caller's message.
 */
import { SymbolSource } from './dims.js';
import { LlmccError, describeNode } from './errors.js';
import type { Dim, Node, TensorType } from './graph.js';
import { Attrs } from './ops/attrs.js';
import type { OpDef } from './ops/types.js';
import type { Tensor } from './tensor.js';

export interface ConcreteShapeQuery {
  node: Node;
  op: OpDef;
  opset: number;
  /** Types of the node's inputs on concrete shapes (undefined for omitted optional inputs). */
  inputs: (TensorType | undefined)[];
  /** Input values known to the caller (constants, host results), by input position. */
  constant(index: number): Tensor | undefined;
  /** Who asks, for symbol names and messages (e.g. 'wasm', 'neon'). */
  target: string;
  /** The message when an output's shape depends on values the caller does not have. */
  dataDependent(output: string, shape: string): string;
}

export function inferConcreteShapes(query: ConcreteShapeQuery): number[][] {
  const { node, constant } = query;
  const infos = query.op.infer({
    node, opset: query.opset, attrs: new Attrs(node), inputs: query.inputs,
    constant,
    shapeValue: (i) => {
      const t = constant(i);
      return t && t.rank <= 1 ? (t.toArray() as Dim[]) : undefined;
    },
    symbols: new SymbolSource(query.target),
    inferSubgraph: () => { throw new LlmccError(`subgraphs are not supported on ${query.target}`, describeNode(node)); },
  });
  return node.outputs.map((name, k) => {
    const shape = infos[k]?.type.shape;
    if (!name) return [];
    if (!shape || !shape.every((d): d is number => typeof d === 'number')) {
      throw new LlmccError(query.dataDependent(name, `[${shape?.join(',') ?? '*'}]`), describeNode(node));
    }
    return shape;
  });
}
