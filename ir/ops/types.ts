import type { Dim, Graph, Node, TensorType } from '../graph.js';
import type { SymbolSource } from '../dims.js';
import type { Tensor } from '../tensor.js';
import type { Attrs } from './attrs.js';

/** What every op callback sees about the node it runs for. */
export interface OpContextBase {
  node: Node;
  /** Opset version imported for the node's domain (behaviour changes between versions). */
  opset: number;
  attrs: Attrs;
}

/** One inferred output: its type and, for small integer tensors, its symbolic elements. */
export interface OutputInfo {
  type: TensorType;
  /**
   * Elements of a rank-0/1 integer output when known, symbolically (`[batch, 'seq', 16]`):
   * how Shape → Gather → Concat → Reshape chains keep symbolic dims symbolic.
   */
  shapeValue?: Dim[];
}

export interface InferContext extends OpContextBase {
  /** Input types; undefined for an omitted optional input. */
  inputs: (TensorType | undefined)[];
  /** The input's value when it is a constant (initializer or folded Constant). */
  constant(index: number): Tensor | undefined;
  /** Symbolic elements of a small integer input (see OutputInfo.shapeValue). */
  shapeValue(index: number): Dim[] | undefined;
  /** Fresh symbols for data-dependent dims. */
  symbols: SymbolSource;
  /** Infers a subgraph's output types given its input types (Loop/If/Scan bodies). */
  inferSubgraph(graph: Graph, inputs: TensorType[]): TensorType[];
}

export interface EvalContext extends OpContextBase {
  /** Input tensors; undefined for an omitted optional input. */
  inputs: (Tensor | undefined)[];
  /** Runs a subgraph; values of enclosing graphs are visible to it. */
  runSubgraph(graph: Graph, inputs: Tensor[]): Tensor[];
}

/**
 * One operator: type inference and its reference semantics, in one file per op and
 * registered in its group's table (ir/ops/<group>/index.ts).
 */
export interface OpDef {
  /** '' for ai.onnx. */
  domain: string;
  op: string;
  infer(ctx: InferContext): OutputInfo[];
  /** Reference semantics, exact to the ONNX spec; returns outputs in order. */
  evaluate(ctx: EvalContext): Tensor[];
}
