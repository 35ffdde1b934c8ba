/**
 * Builds small ONNX models in memory (serialized ModelProto bytes), for tests that compare
 * llmcc with onnxruntime or exercise the importer without files on disk.
 *
 *   const bytes = singleNodeModel({
 *     op: 'FastGelu', domain: 'com.microsoft',
 *     inputs: [{ name: 'x', dtype: 'f32', shape: [2, 8] }],
 *     outputs: [{ name: 'y', dtype: 'f32', shape: [2, 8] }],
 *     attributes: { epsilon: floatAttr(1e-5), num_heads: 4 },
 *     opsets: { '': 21, 'com.microsoft': 1 },
 *   });
 */
import onnxProto from 'onnx-proto';
import type { DType } from '../../ir/dtype.js';
import { dtypeToOnnx } from '../../ir/dtype.js';
import type { Dim } from '../../ir/graph.js';
import { Tensor } from '../../ir/tensor.js';
import { numberToBf16Bits, numberToF16Bits } from '../../ir/float.js';

const { onnx } = onnxProto;

/** A graph input/output (or value_info): dtype and shape; shape undefined = rank unknown. */
export interface ValueSpec {
  name: string;
  dtype: DType;
  shape?: Dim[];
}

/** An explicitly typed attribute value (plain values are typed by `attributeOf`). */
export type TypedAttr =
  | { kind: 'int'; value: number }
  | { kind: 'float'; value: number }
  | { kind: 'string'; value: string }
  | { kind: 'ints'; value: number[] }
  | { kind: 'floats'; value: number[] }
  | { kind: 'strings'; value: string[] }
  | { kind: 'tensor'; value: Tensor }
  | { kind: 'graph'; value: GraphSpec };

/**
 * An attribute: plain integers become INT, other numbers FLOAT, strings STRING, integer
 * arrays INTS, other number arrays FLOATS, string arrays STRINGS, Tensors TENSOR. Use
 * floatAttr / floatsAttr when a float attribute holds an integral value (e.g. 1.0).
 */
export type AttrValue = number | string | number[] | string[] | Tensor | TypedAttr;

export const floatAttr = (value: number): TypedAttr => ({ kind: 'float', value });
export const floatsAttr = (value: number[]): TypedAttr => ({ kind: 'floats', value });
export const intAttr = (value: number): TypedAttr => ({ kind: 'int', value });

export interface NodeSpec {
  op: string;
  /** '' (default) for ai.onnx. */
  domain?: string;
  name?: string;
  /** '' marks an omitted optional input/output. */
  inputs: string[];
  outputs: string[];
  attributes?: Record<string, AttrValue>;
}

export interface GraphSpec {
  name?: string;
  nodes: NodeSpec[];
  inputs: ValueSpec[];
  outputs: ValueSpec[];
  /** Constant tensors by name (not listed as graph inputs unless also in `inputs`). */
  initializers?: Record<string, Tensor>;
  valueInfo?: ValueSpec[];
}

export interface ModelSpec extends GraphSpec {
  /** Opset version per domain ('' = ai.onnx); default { '': 21 }. */
  opsets?: Record<string, number>;
  irVersion?: number;
  producer?: string;
}

export interface SingleNodeSpec {
  op: string;
  domain?: string;
  /** Inputs in op order; '' (or undefined) omits an optional input. */
  inputs: (ValueSpec | '' | undefined)[];
  outputs: (ValueSpec | '' | undefined)[];
  attributes?: Record<string, AttrValue>;
  /** Inputs whose names appear here are initializers (constants) instead of graph inputs. */
  initializers?: Record<string, Tensor>;
  opsets?: Record<string, number>;
}

/** A model with one node; graph inputs are the node's inputs that are not initializers. */
export function singleNodeModel(spec: SingleNodeSpec): Uint8Array {
  const initializers = spec.initializers ?? {};
  const present = (v: ValueSpec | '' | undefined): v is ValueSpec => v !== '' && v !== undefined;
  const graphInputs = spec.inputs.filter(present).filter((v) => !(v.name in initializers));
  return buildModel({
    nodes: [{
      op: spec.op,
      domain: spec.domain,
      name: `${spec.op}_0`,
      inputs: spec.inputs.map((v) => (present(v) ? v.name : '')),
      outputs: spec.outputs.map((v) => (present(v) ? v.name : '')),
      attributes: spec.attributes,
    }],
    inputs: graphInputs,
    outputs: spec.outputs.filter(present),
    initializers,
    opsets: spec.opsets ?? defaultOpsets(spec.domain),
  });
}

function defaultOpsets(domain: string | undefined): Record<string, number> {
  return domain && domain !== 'ai.onnx' ? { '': 21, [domain]: 1 } : { '': 21 };
}

/** Serializes a whole model. */
export function buildModel(spec: ModelSpec): Uint8Array {
  const opsets = spec.opsets ?? { '': 21 };
  const model = onnx.ModelProto.create({
    irVersion: spec.irVersion ?? 10,
    producerName: spec.producer ?? 'llmcc-test',
    opsetImport: Object.entries(opsets).map(([domain, version]) => onnx.OperatorSetIdProto.create({ domain, version })),
    graph: graphProto(spec),
  });
  return onnx.ModelProto.encode(model).finish();
}

function graphProto(spec: GraphSpec): onnxProto.onnx.GraphProto {
  return onnx.GraphProto.create({
    name: spec.name ?? 'graph',
    node: spec.nodes.map((n, i) => onnx.NodeProto.create({
      name: n.name ?? `${n.op}_${i}`,
      opType: n.op,
      domain: n.domain ?? '',
      input: n.inputs,
      output: n.outputs,
      attribute: Object.entries(n.attributes ?? {}).map(([name, value]) => attributeOf(name, value)),
    })),
    input: spec.inputs.map(valueInfoProto),
    output: spec.outputs.map(valueInfoProto),
    valueInfo: (spec.valueInfo ?? []).map(valueInfoProto),
    initializer: Object.entries(spec.initializers ?? {}).map(([name, t]) => tensorProto(name, t)),
  });
}

function valueInfoProto(v: ValueSpec): onnxProto.onnx.ValueInfoProto {
  const shape = v.shape === undefined ? undefined : onnx.TensorShapeProto.create({
    dim: v.shape.map((d) => (typeof d === 'number'
      ? onnx.TensorShapeProto.Dimension.create({ dimValue: d })
      : onnx.TensorShapeProto.Dimension.create({ dimParam: d }))),
  });
  return onnx.ValueInfoProto.create({
    name: v.name,
    type: onnx.TypeProto.create({
      tensorType: onnx.TypeProto.Tensor.create({ elemType: dtypeToOnnx(v.dtype), ...(shape ? { shape } : {}) }),
    }),
  });
}

const AttrType = onnx.AttributeProto.AttributeType;

/** Types a plain attribute value (see AttrValue) and serializes it. */
export function attributeOf(name: string, value: AttrValue): onnxProto.onnx.AttributeProto {
  const typed = typeAttr(value);
  const base = { name };
  switch (typed.kind) {
    case 'int': return onnx.AttributeProto.create({ ...base, type: AttrType.INT, i: typed.value });
    case 'float': return onnx.AttributeProto.create({ ...base, type: AttrType.FLOAT, f: typed.value });
    case 'string': return onnx.AttributeProto.create({ ...base, type: AttrType.STRING, s: Buffer.from(typed.value) });
    case 'ints': return onnx.AttributeProto.create({ ...base, type: AttrType.INTS, ints: typed.value });
    case 'floats': return onnx.AttributeProto.create({ ...base, type: AttrType.FLOATS, floats: typed.value });
    case 'strings':
      return onnx.AttributeProto.create({ ...base, type: AttrType.STRINGS, strings: typed.value.map((s) => Buffer.from(s)) });
    case 'tensor': return onnx.AttributeProto.create({ ...base, type: AttrType.TENSOR, t: tensorProto('', typed.value) });
    case 'graph': return onnx.AttributeProto.create({ ...base, type: AttrType.GRAPH, g: graphProto(typed.value) });
  }
}

/** The explicit type of a plain attribute value (see AttrValue). */
export function typeAttr(value: AttrValue): TypedAttr {
  if (value instanceof Tensor) return { kind: 'tensor', value };
  if (typeof value === 'number') return Number.isInteger(value) ? { kind: 'int', value } : { kind: 'float', value };
  if (typeof value === 'string') return { kind: 'string', value };
  if (Array.isArray(value)) {
    if (value.every((v): v is string => typeof v === 'string')) {
      return value.length === 0 ? { kind: 'ints', value: [] } : { kind: 'strings', value };
    }
    const numbers = value as number[];
    return numbers.every(Number.isInteger) ? { kind: 'ints', value: numbers } : { kind: 'floats', value: numbers };
  }
  return value;
}

/** Serializes a tensor as a TensorProto with little-endian raw_data (strings use string_data). */
export function tensorProto(name: string, tensor: Tensor): onnxProto.onnx.TensorProto {
  const base = { name, dataType: dtypeToOnnx(tensor.dtype), dims: [...tensor.shape] };
  if (tensor.dtype === 'string') {
    return onnx.TensorProto.create({ ...base, stringData: (tensor.data as string[]).map((s) => Buffer.from(s)) });
  }
  return onnx.TensorProto.create({ ...base, rawData: rawBytes(tensor) });
}

/** The tensor's elements in ONNX's raw_data layout (sub-byte types packed low nibble first). */
export function rawBytes(tensor: Tensor): Uint8Array {
  const values = tensor.numbers();
  const n = values.length;
  const view = (bytesPer: number) => new DataView(new ArrayBuffer(n * bytesPer));
  switch (tensor.dtype) {
    case 'f32': { const v = view(4); values.forEach((x, i) => v.setFloat32(i * 4, x, true)); return new Uint8Array(v.buffer); }
    case 'f64': { const v = view(8); values.forEach((x, i) => v.setFloat64(i * 8, x, true)); return new Uint8Array(v.buffer); }
    case 'f16': { const v = view(2); values.forEach((x, i) => v.setUint16(i * 2, numberToF16Bits(x), true)); return new Uint8Array(v.buffer); }
    case 'bf16': { const v = view(2); values.forEach((x, i) => v.setUint16(i * 2, numberToBf16Bits(x), true)); return new Uint8Array(v.buffer); }
    case 'i8': { const v = view(1); values.forEach((x, i) => v.setInt8(i, x)); return new Uint8Array(v.buffer); }
    case 'u8': case 'bool': { const v = view(1); values.forEach((x, i) => v.setUint8(i, x)); return new Uint8Array(v.buffer); }
    case 'i16': { const v = view(2); values.forEach((x, i) => v.setInt16(i * 2, x, true)); return new Uint8Array(v.buffer); }
    case 'u16': { const v = view(2); values.forEach((x, i) => v.setUint16(i * 2, x, true)); return new Uint8Array(v.buffer); }
    case 'i32': { const v = view(4); values.forEach((x, i) => v.setInt32(i * 4, x, true)); return new Uint8Array(v.buffer); }
    case 'u32': { const v = view(4); values.forEach((x, i) => v.setUint32(i * 4, x, true)); return new Uint8Array(v.buffer); }
    case 'i64': { const v = view(8); values.forEach((x, i) => v.setBigInt64(i * 8, BigInt(x), true)); return new Uint8Array(v.buffer); }
    case 'u64': { const v = view(8); values.forEach((x, i) => v.setBigUint64(i * 8, BigInt(x), true)); return new Uint8Array(v.buffer); }
    case 'i4': case 'u4': return packBits(values, 4);
    case 'i2': case 'u2': return packBits(values, 2);
    default:
      throw new Error(`onnx-builder: raw serialization of ${tensor.dtype} is not supported`);
  }
}

function packBits(values: ArrayLike<number>, bits: number): Uint8Array {
  const perByte = 8 / bits;
  const out = new Uint8Array(Math.ceil(values.length / perByte));
  const mask = (1 << bits) - 1;
  for (let i = 0; i < values.length; i++) {
    out[Math.floor(i / perByte)] |= (values[i] & mask) << ((i % perByte) * bits);
  }
  return out;
}
