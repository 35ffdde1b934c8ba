import type { DType } from './dtype.js';
import type { Tensor } from './tensor.js';
import type { QuantInfo } from './quant.js';

/**
 * A dimension: a number when static, a string when symbolic. A symbolic dim is either
 * a name (`batch`, `sequence_length`) or an expression over names built by dims.ts
 * (`past_sequence_length+sequence_length`); equal strings denote equal sizes.
 */
export type Dim = number | string;

export interface TensorType {
  dtype: DType;
  /** undefined when even the rank is unknown. */
  shape: Dim[] | undefined;
  /** Set on quantized weights: how the stored codes map to real values (see quant.ts). */
  quant?: QuantInfo;
}

export type Attribute =
  | { kind: 'int'; value: number }
  | { kind: 'float'; value: number }
  | { kind: 'string'; value: string }
  | { kind: 'tensor'; value: Tensor }
  | { kind: 'graph'; value: Graph }
  | { kind: 'ints'; value: number[] }
  | { kind: 'floats'; value: number[] }
  | { kind: 'strings'; value: string[] }
  | { kind: 'tensors'; value: Tensor[] }
  | { kind: 'graphs'; value: Graph[] };

export interface Node {
  /** Unique within the graph (the importer names unnamed nodes). */
  name: string;
  /** Operator domain: '' for ai.onnx, 'com.microsoft', … */
  domain: string;
  op: string;
  /** Value names; '' marks an omitted optional input or output. */
  inputs: string[];
  outputs: string[];
  attributes: Map<string, Attribute>;
}

/**
 * A constant tensor whose bytes may live outside memory (external data). `load()` reads
 * and decodes it on demand, so importing a large model does not read its weights.
 */
export interface Weight {
  name: string;
  dtype: DType;
  shape: number[];
  /** Bytes of the serialized data (what a bundle stores). */
  byteLength: number;
  /** Where the bytes come from, for messages and the text IR: 'inline' or an external file. */
  location: { kind: 'inline' } | { kind: 'external'; file: string; offset: number; length: number };
  load(): Tensor;
  /**
   * The stored bytes, little-endian, one element after another (ONNX external data): a compiler
   * whose encoding is the weight's own dtype copies them as they are, without decoding.
   */
  raw?(): Uint8Array;
}

export interface ValueInfo {
  name: string;
  /**
   * Undefined only for subgraph inputs/outputs, which ONNX lets omit their types: the
   * enclosing op (Loop, If) supplies them when the subgraph is inferred or run.
   */
  type?: TensorType;
}

export interface Graph {
  name: string;
  inputs: ValueInfo[];
  outputs: ValueInfo[];
  /** Topologically ordered after verification. */
  nodes: Node[];
  /** Constants by value name; a name may also be a graph input (an overridable default). */
  initializers: Map<string, Weight>;
  /** Known types of intermediate values (from the file and from inference). */
  valueInfo: Map<string, TensorType>;
}

export interface Model {
  irVersion: number;
  producer: string;
  /** Opset version per domain; '' is ai.onnx. */
  opsets: Map<string, number>;
  graph: Graph;
  /** The file it came from, for messages. */
  path?: string;
}

export const ONNX_DOMAIN = '';
export const MS_DOMAIN = 'com.microsoft';

/** ai.onnx is spelled '' or 'ai.onnx' in files; the IR always uses ''. */
export function normalizeDomain(domain: string | null | undefined): string {
  return !domain || domain === 'ai.onnx' ? '' : domain;
}
