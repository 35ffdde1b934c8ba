/**
 * A compiled wasm program: what `compile.ts` produces, what a bundle stores (as its JSON
 * manifest plus the `kernels.wasm` and `weights.bin` parts) and what the runtime executes.
 * Browser-safe: plain data and (de)serialization, no `node:` imports.
 */
import type { DType } from '../../ir/dtype.js';
import { isDType } from '../../ir/dtype.js';
import { LlmccError } from '../../ir/errors.js';
import type { Attribute, Dim, Node } from '../../ir/graph.js';
import { Tensor } from '../../ir/tensor.js';
import type { ArenaDtype } from './kernel-def.js';

export const WASM_TARGET = 'wasm';

/** JSON numbers cannot hold NaN or ±Infinity: those travel as strings. */
export type JsonNumber = number | 'NaN' | 'Infinity' | '-Infinity';

export interface SerializedTensor {
  dtype: DType;
  shape: number[];
  /** Elements (numbers; strings for string tensors). */
  data: (JsonNumber | string)[];
}

export type SerializedAttribute =
  | { kind: 'int' | 'float'; value: JsonNumber }
  | { kind: 'string'; value: string }
  | { kind: 'ints' | 'floats'; value: JsonNumber[] }
  | { kind: 'strings'; value: string[] }
  | { kind: 'tensor'; value: SerializedTensor }
  | { kind: 'tensors'; value: SerializedTensor[] };

export interface SerializedNode {
  name: string;
  domain: string;
  op: string;
  inputs: string[];
  outputs: string[];
  attributes: Record<string, SerializedAttribute>;
}

/** How a value's bytes are laid out in weights.bin. */
export type WeightEncoding = 'f32' | 'f64' | 'f16' | 'bf16' | 'i8' | 'u8' | 'i16' | 'u16' | 'i32' | 'u32' | 'i64' | 'u64';

export interface WeightEntry {
  name: string;
  dtype: DType;
  shape: number[];
  encoding: WeightEncoding;
  /** Byte range in weights.bin (16-byte aligned). */
  offset: number;
  byteLength: number;
  /** Byte offset in the arena's weight region when a kernel reads it; absent when only the host does. */
  arenaOffset?: number;
}

/** Where a value lives while the program runs. */
export interface ValueEntry {
  dtype: DType;
  /** Symbolic shape from compile-time inference (undefined: rank unknown). */
  shape?: Dim[];
  arena?: ArenaDtype;
  /** A JS tensor is available: initializers, host-op outputs, integer graph inputs. */
  host: boolean;
  /** Lives in the arena (kernel outputs, kernel/view inputs). */
  inArena: boolean;
}

/**
 * One schedule step, in execution order. `kernel`: a wasm export; `view`: the output aliases
 * the input's buffer with a new shape; `host`: evaluated in JS with the reference op.
 */
export type Step =
  | { kind: 'kernel'; node: number; kernel: string; scratch: boolean; tuning?: Record<string, number> }
  | { kind: 'view'; node: number }
  | { kind: 'host'; node: number };

export interface WasmProgram {
  target: typeof WASM_TARGET;
  producer: string;
  opsets: [string, number][];
  inputs: { name: string; dtype: DType; shape?: Dim[] }[];
  outputs: { name: string; dtype: DType; shape?: Dim[] }[];
  nodes: SerializedNode[];
  steps: Step[];
  values: Record<string, ValueEntry>;
  weights: WeightEntry[];
  /** Exported kernel names, deduplicated. */
  kernels: string[];
  memory: {
    /** Bytes of the arena's weight region (placed once at load). */
    weightBytes: number;
    align: number;
    /** Graph inputs whose values (not just shapes) host steps read: part of the plan key. */
    hostReadInputs: string[];
  };
}

/** A compiled program with its binary parts. */
export interface CompiledWasm {
  program: WasmProgram;
  kernels: Uint8Array;
  weights: Uint8Array;
}

// ---------------------------------------------------------------------------------------
// JSON forms

export function toJsonNumber(x: number): JsonNumber {
  if (Number.isFinite(x)) return x;
  return Number.isNaN(x) ? 'NaN' : x > 0 ? 'Infinity' : '-Infinity';
}

export function fromJsonNumber(x: JsonNumber | string): number {
  return typeof x === 'number' ? x : Number(x);
}

export function serializeTensor(tensor: Tensor): SerializedTensor {
  const data = tensor.dtype === 'string' ? [...(tensor.data as string[])] : Array.from(tensor.numbers(), toJsonNumber);
  return { dtype: tensor.dtype, shape: [...tensor.shape], data };
}

export function deserializeTensor(t: SerializedTensor): Tensor {
  if (!isDType(t.dtype)) throw new LlmccError(`bundle manifest names unknown dtype '${String(t.dtype)}'`);
  if (t.dtype === 'string') return Tensor.strings(t.shape, t.data.map(String));
  return Tensor.fromNumbers(t.dtype, t.shape, t.data.map(fromJsonNumber));
}

export function serializeNode(node: Node): SerializedNode {
  const attributes: Record<string, SerializedAttribute> = {};
  for (const [name, attr] of node.attributes) {
    switch (attr.kind) {
      case 'int': case 'float': attributes[name] = { kind: attr.kind, value: toJsonNumber(attr.value) }; break;
      case 'ints': case 'floats': attributes[name] = { kind: attr.kind, value: attr.value.map(toJsonNumber) }; break;
      case 'string': attributes[name] = { kind: 'string', value: attr.value }; break;
      case 'strings': attributes[name] = { kind: 'strings', value: [...attr.value] }; break;
      case 'tensor': attributes[name] = { kind: 'tensor', value: serializeTensor(attr.value) }; break;
      case 'tensors': attributes[name] = { kind: 'tensors', value: attr.value.map(serializeTensor) }; break;
      default: throw new LlmccError(`subgraph attribute '${name}' cannot be compiled for wasm`, node.name);
    }
  }
  return { name: node.name, domain: node.domain, op: node.op, inputs: [...node.inputs], outputs: [...node.outputs], attributes };
}

export function deserializeNode(s: SerializedNode): Node {
  const attributes = new Map<string, Attribute>();
  for (const [name, attr] of Object.entries(s.attributes)) {
    switch (attr.kind) {
      case 'int': case 'float': attributes.set(name, { kind: attr.kind, value: fromJsonNumber(attr.value) }); break;
      case 'ints': case 'floats': attributes.set(name, { kind: attr.kind, value: attr.value.map(fromJsonNumber) }); break;
      case 'string': attributes.set(name, { kind: 'string', value: attr.value }); break;
      case 'strings': attributes.set(name, { kind: 'strings', value: attr.value }); break;
      case 'tensor': attributes.set(name, { kind: 'tensor', value: deserializeTensor(attr.value) }); break;
      case 'tensors': attributes.set(name, { kind: 'tensors', value: attr.value.map(deserializeTensor) }); break;
      default: throw new LlmccError(`bundle manifest has an unknown attribute kind on node '${s.name}'`);
    }
  }
  return { name: s.name, domain: s.domain, op: s.op, inputs: s.inputs, outputs: s.outputs, attributes };
}
