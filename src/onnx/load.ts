/**
 * ONNX ModelProto -> IR Model. Weights stay lazy (`Weight.load()`), external data is
 * validated at import (path inside the model's folder, file long enough) but read only on
 * load, and model-local functions are inlined at their call sites.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { dtypeFromOnnx } from '../../ir/dtype.js';
import { LlmccError } from '../../ir/errors.js';
import {
  type Attribute, type Dim, type Graph, type Model, type Node, type TensorType, type ValueInfo, type Weight,
  normalizeDomain,
} from '../../ir/graph.js';
import type { Tensor } from '../../ir/tensor.js';
import { type ExternalFileCache, readExternalData } from './external-data.js';
import {
  type AttributeProto, type FunctionProto, type GraphProto, type Int64Like, type ModelProto, type NodeProto,
  type TensorProto, type TypeProto, type ValueInfoProto, decodeUtf8, int64ToNumber, onnx,
} from './proto.js';
import { decodeRawData, decodeTensorProto, inspectTensorProto } from './tensor-proto.js';
import { fieldPayloads, validateWireFormat } from './wire.js';

/** AttributeProto.AttributeType numbers (ONNX 1.10+). */
const A = {
  UNDEFINED: 0, FLOAT: 1, INT: 2, STRING: 3, TENSOR: 4, GRAPH: 5, FLOATS: 6, INTS: 7, STRINGS: 8, TENSORS: 9,
  GRAPHS: 10, SPARSE_TENSOR: 11, SPARSE_TENSORS: 12, TYPE_PROTO: 13, TYPE_PROTOS: 14,
} as const;
const ATTRIBUTE_TYPE_NAMES = Object.fromEntries(Object.entries(A).map(([k, v]) => [v, k])) as Record<number, string>;

/** Reads and imports an ONNX model file. */
export async function loadModel(file: string): Promise<Model> {
  let bytes: Uint8Array;
  try {
    bytes = await fs.promises.readFile(file);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new LlmccError('model file not found', file);
    if (code === 'EISDIR') throw new LlmccError('expected an ONNX model file, got a directory', file);
    if (code === 'ERR_FS_FILE_TOO_LARGE') {
      throw new LlmccError('not a valid ONNX model: larger than 2 GiB, which protobuf cannot hold (weights belong in external data)', file);
    }
    throw new LlmccError(`cannot read model file: ${(e as Error).message}`, file);
  }
  return loadModelFromBytes(bytes, { path: file });
}

/**
 * Imports a serialized ModelProto. `options.path` names the file in messages and locates
 * the folder external data is relative to.
 */
export function loadModelFromBytes(bytes: Uint8Array, options: { path: string }): Model {
  const file = options.path;
  const invalid = (reason: string): LlmccError => new LlmccError(`not a valid ONNX model: ${reason}`, file);
  if (bytes.length === 0) throw invalid('the file is empty');
  let proto: ModelProto;
  try {
    validateWireFormat(bytes, 'ModelProto');
    proto = onnx.ModelProto.decode(bytes);
  } catch (e) {
    throw invalid(e instanceof Error ? e.message : String(e));
  }
  if (!proto.graph) throw invalid('it has no graph');

  const opsets = new Map<string, number>();
  for (const entry of proto.opsetImport ?? []) {
    addOpset(opsets, normalizeDomain(entry.domain), int64ToNumber(entry.version as Int64Like), 'the model', file);
  }
  if (opsets.size === 0) throw invalid('it has no opset_import');

  const functionDefaults = fieldPayloads(bytes, 25).map((fn) =>
    fieldPayloads(fn, 11).map((attr) => onnx.AttributeProto.decode(attr)));
  const functions = new Map<string, LocalFunction>();
  (proto.functions ?? []).forEach((fn, index) => {
    const local = registerFunction(fn, functionDefaults[index] ?? [], opsets, file);
    if (functions.has(local.key)) throw new LlmccError(`model-local function ${local.key} is defined twice`, file);
    functions.set(local.key, local);
  });

  const symbols = new Set<string>();
  collectDimParams(proto.graph, symbols);
  const importer = new Importer(file, path.dirname(path.resolve(file)), functions, symbols);
  let graph: Graph;
  try {
    graph = importer.graph(proto.graph, 'main', file);
  } catch (e) {
    // Only a pathological file nests deep enough to exhaust the stack.
    if (e instanceof RangeError && /call stack/.test(e.message)) throw invalid('subgraphs nest too deeply');
    throw e;
  }
  return {
    irVersion: int64ToNumber(proto.irVersion as Int64Like),
    producer: [proto.producerName, proto.producerVersion].filter(Boolean).join(' '),
    opsets,
    graph,
    path: file,
  };
}

function addOpset(opsets: Map<string, number>, domain: string, version: number, who: string, file: string): void {
  const known = opsets.get(domain);
  if (known !== undefined && known !== version) {
    throw new LlmccError(`${who} imports domain "${domain || 'ai.onnx'}" at version ${version}, but the model uses version ${known}`, file);
  }
  opsets.set(domain, version);
}

// ---------------------------------------------------------------------------------------
// Model-local functions

interface LocalFunction {
  /** `domain::name`, as a call site spells it (domain normalized). */
  key: string;
  proto: FunctionProto;
  /** Default values of the function's attributes (FunctionProto.attribute_proto). */
  defaults: Map<string, AttributeProto>;
}

function functionKey(domain: string, name: string): string {
  return `${domain || 'ai.onnx'}::${name}`;
}

function registerFunction(fn: FunctionProto, defaults: AttributeProto[], opsets: Map<string, number>, file: string): LocalFunction {
  const key = functionKey(normalizeDomain(fn.domain), fn.name ?? '');
  // Inlined nodes join the main graph, so they must agree with the model's opsets.
  for (const entry of fn.opsetImport ?? []) {
    addOpset(opsets, normalizeDomain(entry.domain), int64ToNumber(entry.version as Int64Like), `function ${key}`, file);
  }
  return { key, proto: fn, defaults: new Map(defaults.map((a) => [a.name ?? '', a])) };
}

/** Renames the outer-scope references of a subgraph (its own values stay as they are). */
function renameGraph(graph: GraphProto, outer: (v: string) => string, bind: AttributeBinder): GraphProto {
  const local = new Set<string>();
  for (const vi of graph.input ?? []) local.add(vi.name ?? '');
  for (const t of graph.initializer ?? []) local.add(t.name ?? '');
  for (const n of graph.node ?? []) for (const o of n.output ?? []) local.add(o);
  const rename = (v: string): string => (v === '' || local.has(v) ? v : outer(v));
  return {
    ...graph,
    node: (graph.node ?? []).map((n) => ({
      ...n,
      input: (n.input ?? []).map(rename),
      attribute: bind(n.attribute ?? [], rename),
    })),
    output: (graph.output ?? []).map((o) => ({ ...o, name: rename(o.name ?? '') })),
  };
}

type AttributeBinder = (attrs: AttributeProto[], rename: (v: string) => string) => AttributeProto[];

// ---------------------------------------------------------------------------------------
// Graphs

function collectDimParams(graph: GraphProto, into: Set<string>): void {
  const visitType = (t: TypeProto | null | undefined): void => {
    for (const d of t?.tensorType?.shape?.dim ?? []) if (d.dimParam) into.add(d.dimParam);
  };
  for (const vi of [...(graph.input ?? []), ...(graph.output ?? []), ...(graph.valueInfo ?? [])]) visitType(vi.type);
  for (const n of graph.node ?? []) {
    for (const a of n.attribute ?? []) {
      if (a.g) collectDimParams(a.g, into);
      for (const g of a.graphs ?? []) collectDimParams(g, into);
    }
  }
}

class Importer {
  private readonly cache: ExternalFileCache = new Map();
  private nextSymbol = 0;
  /** Functions being inlined, outermost first: a call already on it would recurse forever. */
  private readonly calls: string[] = [];

  constructor(
    private readonly file: string,
    private readonly baseDir: string,
    private readonly functions: Map<string, LocalFunction>,
    /** dim_param names in the model, which fresh symbols must not reuse. */
    private readonly usedSymbols: Set<string>,
  ) {}

  /** A name for a dim the file leaves unnamed, unique within the model. */
  private freshSymbol(): string {
    let name: string;
    do name = `unk_${this.nextSymbol++}`; while (this.usedSymbols.has(name));
    this.usedSymbols.add(name);
    return name;
  }

  /** `scope` describes the graph for messages, e.g. the file or `subgraph "body" of node "loop" in <file>`. */
  graph(proto: GraphProto, fallbackName: string, scope: string): Graph {
    const sparse = proto.sparseInitializer ?? [];
    if (sparse.length > 0) {
      const name = sparse[0].values?.name ?? '';
      throw new LlmccError(`sparse initializer "${name}" is not supported (convert it to a dense initializer)`, scope);
    }
    const initializers = new Map<string, Weight>();
    for (const tp of proto.initializer ?? []) {
      const name = tp.name ?? '';
      if (!name) throw new LlmccError('an initializer has no name', scope);
      if (initializers.has(name)) throw new LlmccError(`initializer "${name}" is defined twice`, scope);
      initializers.set(name, this.weight(tp, `initializer "${name}" in ${scope}`));
    }
    const inputs = (proto.input ?? []).map((vi) => this.valueInfo(vi, 'graph input', scope, initializers));
    const outputs = (proto.output ?? []).map((vi) => this.valueInfo(vi, 'graph output', scope, initializers));
    const valueInfo = new Map<string, TensorType>();
    for (const vi of proto.valueInfo ?? []) {
      // value_info is only a hint: entries that are not typed tensors are left out.
      if (vi.name && vi.type?.tensorType && dtypeFromOnnx(vi.type.tensorType.elemType ?? 0)) {
        valueInfo.set(vi.name, this.tensorType(vi.type, `value_info "${vi.name}"`, scope));
      }
    }
    const nodes = nameNodes(this.nodes(proto.node ?? [], scope));
    return { name: proto.name || fallbackName, inputs, outputs, nodes, initializers, valueInfo };
  }

  private valueInfo(vi: ValueInfoProto, what: string, scope: string, initializers: Map<string, Weight>): ValueInfo {
    const name = vi.name ?? '';
    if (!name) throw new LlmccError(`a ${what} has no name`, scope);
    const weight = initializers.get(name);
    if (!vi.type && weight) return { name, type: { dtype: weight.dtype, shape: [...weight.shape] } };
    // ONNX lets subgraph inputs/outputs omit types: the enclosing op (Loop, If) supplies them.
    if (!vi.type && scope !== this.file) return { name };
    return { name, type: this.tensorType(vi.type, `${what} "${name}"`, scope) };
  }

  private tensorType(type: TypeProto | null | undefined, what: string, scope: string): TensorType {
    if (!type) throw new LlmccError(`${what} has no type`, scope);
    const tensor = type.tensorType;
    if (!tensor) {
      const kind = type.sequenceType ? 'sequence' : type.mapType ? 'map' : type.optionalType ? 'optional'
        : type.sparseTensorType ? 'sparse tensor' : 'unknown';
      throw new LlmccError(`${what} has a ${kind} type; llmcc supports tensor values only`, scope);
    }
    const code = tensor.elemType ?? 0;
    const dtype = dtypeFromOnnx(code);
    if (!dtype) {
      const names: Record<number, string> = { 0: 'UNDEFINED', 14: 'COMPLEX64', 15: 'COMPLEX128' };
      throw new LlmccError(`${what} has unsupported element type ${names[code] ?? code}`, scope);
    }
    if (!tensor.shape) return { dtype, shape: undefined };
    const shape: Dim[] = (tensor.shape.dim ?? []).map((d, axis) => {
      // `value` names the oneof member actually present in the file.
      if ((d as { value?: string }).value === 'dimValue') {
        const n = int64ToNumber(d.dimValue as Int64Like);
        if (!Number.isSafeInteger(n) || n < 0) throw new LlmccError(`${what} has invalid dimension ${n} at axis ${axis}`, scope);
        return n;
      }
      return d.dimParam ? d.dimParam : this.freshSymbol();
    });
    return { dtype, shape };
  }

  private weight(tp: TensorProto, where: string): Weight {
    const info = inspectTensorProto(tp, { baseDir: this.baseDir, where, cache: this.cache });
    const { dtype, shape, external } = info;
    return {
      name: tp.name ?? '',
      dtype,
      shape,
      byteLength: info.byteLength,
      location: external
        ? { kind: 'external', file: external.location, offset: external.offset, length: external.length }
        : { kind: 'inline' },
      load: (): Tensor => external
        ? decodeRawData(dtype, shape, readExternalData(external, where), where)
        : decodeTensorProto(tp, { where }),
      ...(external ? { raw: (): Uint8Array => readExternalData(external, where) } : {}),
    };
  }

  /** Converts nodes, inlining calls to model-local functions. */
  private nodes(protos: NodeProto[], scope: string): Node[] {
    const result: Node[] = [];
    protos.forEach((np, index) => {
      const op = np.opType ?? '';
      const domain = normalizeDomain(np.domain);
      const label = `node "${np.name || `#${index}`}" (${domain ? `${domain}.` : ''}${op}) in ${scope}`;
      if (!op) throw new LlmccError('node has no op_type', label);
      const fn = this.functions.get(functionKey(domain, op));
      if (fn) {
        result.push(...this.inline(np, index, fn, label));
        return;
      }
      const name = np.name ?? '';
      result.push({
        name,
        domain,
        op,
        inputs: [...(np.input ?? [])],
        outputs: [...(np.output ?? [])],
        attributes: this.attributes(np.attribute ?? [], label, name || `${op}_${index}`),
      });
    });
    return result;
  }

  private inline(np: NodeProto, index: number, fn: LocalFunction, label: string): Node[] {
    if (this.calls.includes(fn.key)) throw new LlmccError(`model-local function ${fn.key} calls itself`, label);
    const formalInputs = fn.proto.input ?? [];
    const formalOutputs = fn.proto.output ?? [];
    const actualInputs = np.input ?? [];
    const actualOutputs = np.output ?? [];
    if (actualInputs.length > formalInputs.length || actualOutputs.length > formalOutputs.length) {
      throw new LlmccError(
        `call to function ${fn.key} has ${actualInputs.length} inputs / ${actualOutputs.length} outputs, ` +
        `the function takes ${formalInputs.length} / ${formalOutputs.length}`, label);
    }
    const prefix = np.name || `${np.opType}_${index}`;
    const values = new Map<string, string>();
    formalInputs.forEach((formal, i) => values.set(formal, actualInputs[i] ?? ''));
    formalOutputs.forEach((formal, i) => values.set(formal, actualOutputs[i] || `${prefix}/${formal}`));
    const rename = (v: string): string => (v === '' ? '' : values.get(v) ?? `${prefix}/${v}`);

    const callerAttributes = new Map((np.attribute ?? []).map((a) => [a.name ?? '', a]));
    const bind: AttributeBinder = (attrs, renameInScope) => {
      const bound: AttributeProto[] = [];
      for (const a of attrs) {
        if (a.refAttrName) {
          const source = callerAttributes.get(a.refAttrName) ?? fn.defaults.get(a.refAttrName);
          // Unbound and without default: the attribute is simply absent (the op's default applies).
          if (source) bound.push({ ...copyAttribute(source), name: a.name });
          continue;
        }
        const copy = copyAttribute(a);
        if (a.g) copy.g = renameGraph(a.g, renameInScope, bind);
        if (a.graphs?.length) copy.graphs = a.graphs.map((g) => renameGraph(g, renameInScope, bind));
        bound.push(copy);
      }
      return bound;
    };
    const body: NodeProto[] = (fn.proto.node ?? []).map((bn, j) => ({
      ...bn,
      name: `${prefix}/${bn.name || `${bn.opType}_${j}`}`,
      input: (bn.input ?? []).map(rename),
      output: (bn.output ?? []).map(rename),
      attribute: bind(bn.attribute ?? [], rename),
    }));
    this.calls.push(fn.key);
    try {
      return this.nodes(body, `function ${fn.key} inlined at ${label}`);
    } finally {
      this.calls.pop();
    }
  }

  private attributes(protos: AttributeProto[], label: string, nodeName: string): Map<string, Attribute> {
    const result = new Map<string, Attribute>();
    for (const a of protos) {
      const name = a.name ?? '';
      if (!name) throw new LlmccError('an attribute has no name', label);
      if (result.has(name)) throw new LlmccError(`attribute "${name}" is given twice`, label);
      if (a.refAttrName) {
        throw new LlmccError(`attribute "${name}" refers to function attribute "${a.refAttrName}" outside a function`, label);
      }
      result.set(name, this.attribute(a, `attribute "${name}" of ${label}`, nodeName));
    }
    return result;
  }

  private attribute(a: AttributeProto, where: string, nodeName: string): Attribute {
    const type = a.type || inferAttributeType(a);
    const name = a.name ?? '';
    const subgraphScope = (i?: number): string => `subgraph ${name}${i === undefined ? '' : `[${i}]`} of node "${nodeName}" in ${this.file}`;
    switch (type) {
      case A.FLOAT: return { kind: 'float', value: a.f ?? 0 };
      case A.INT: return { kind: 'int', value: int64ToNumber(a.i as Int64Like) };
      case A.STRING: return { kind: 'string', value: decodeUtf8(a.s ?? new Uint8Array()) };
      case A.TENSOR:
        if (!a.t) throw new LlmccError('tensor attribute has no tensor', where);
        return { kind: 'tensor', value: this.tensor(a.t, where) };
      case A.GRAPH:
        if (!a.g) throw new LlmccError('graph attribute has no graph', where);
        return { kind: 'graph', value: this.graph(a.g, name, subgraphScope()) };
      case A.FLOATS: return { kind: 'floats', value: [...(a.floats ?? [])] };
      case A.INTS: return { kind: 'ints', value: (a.ints ?? []).map((x) => int64ToNumber(x as Int64Like)) };
      case A.STRINGS: return { kind: 'strings', value: (a.strings ?? []).map(decodeUtf8) };
      case A.TENSORS: return { kind: 'tensors', value: (a.tensors ?? []).map((t) => this.tensor(t, where)) };
      case A.GRAPHS: return { kind: 'graphs', value: (a.graphs ?? []).map((g, i) => this.graph(g, `${name}_${i}`, subgraphScope(i))) };
      default:
        throw new LlmccError(`attribute type ${ATTRIBUTE_TYPE_NAMES[type] ?? type} is not supported`, where);
    }
  }

  private tensor(tp: TensorProto, where: string): Tensor {
    return decodeTensorProto(tp, { baseDir: this.baseDir, where, cache: this.cache });
  }
}

/** Old files may leave AttributeProto.type unset; the populated field tells. */
function inferAttributeType(a: AttributeProto): number {
  if (a.floats?.length) return A.FLOATS;
  if (a.ints?.length) return A.INTS;
  if (a.strings?.length) return A.STRINGS;
  if (a.tensors?.length) return A.TENSORS;
  if (a.graphs?.length) return A.GRAPHS;
  if (a.t) return A.TENSOR;
  if (a.g) return A.GRAPH;
  if (a.sparseTensor) return A.SPARSE_TENSOR;
  if (a.tp) return A.TYPE_PROTO;
  if (a.s?.length) return A.STRING;
  if (a.f) return A.FLOAT;
  if (a.i !== undefined && a.i !== null) return A.INT;
  return A.UNDEFINED;
}

/** A plain copy of an attribute's own fields (protobufjs keeps defaults on the prototype). */
function copyAttribute(a: AttributeProto): AttributeProto {
  return { ...a, type: a.type, name: a.name, f: a.f, i: a.i, s: a.s };
}

/**
 * Gives every node a unique name: explicit names keep their first use, unnamed nodes get
 * `<op>_<index>`, and repeats get a `_<k>` suffix.
 */
function nameNodes(nodes: Node[]): Node[] {
  const taken = new Set<string>();
  const explicit = new Set(nodes.map((n) => n.name).filter(Boolean));
  const unique = (base: string): string => {
    let name = base;
    for (let k = 1; taken.has(name); k++) name = `${base}_${k}`;
    taken.add(name);
    return name;
  };
  nodes.forEach((node, index) => {
    if (node.name && !taken.has(node.name)) {
      taken.add(node.name);
      return;
    }
    let base = node.name || `${node.op}_${index}`;
    // Generated names avoid explicit names used later in the graph.
    while (!node.name && explicit.has(base)) base = `${base}_`;
    node.name = unique(base);
  });
  return nodes;
}
