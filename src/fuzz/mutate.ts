/**
 * Model mutations for the fuzzer: field-level edits of a decoded ModelProto (dims, dtypes,
 * attributes, node wiring, opsets, external-data records, initializer data) and byte-level
 * damage of the encoded file (truncation, bit flips, chunk edits). Every mutation is drawn
 * from a seeded Rng and described in one short line, so a case replays from its seed and
 * its description says what was done. Some cases also (or only) change values of the
 * seed's test inputs, so hostile values reach the ops.
 */
import {
  type AttributeProto, type GraphProto, type ModelProto, type NodeProto, type TensorProto, type ValueInfoProto, onnx,
} from '../onnx/proto.js';
import type { Rng } from './rng.js';

type Dimension = NonNullable<NonNullable<NonNullable<NonNullable<ValueInfoProto['type']>['tensorType']>['shape']>['dim']>[number];

/** Files the harness places around each model folder, so hostile locations point at something real. */
export const HOSTILE_LOCATIONS = [
  '../outside.bin', // exists, one level up
  'sub/../../outside.bin',
  './../outside.bin',
  '/etc/hostname',
  '/dev/zero',
  'escape-link.bin', // symlink to ../outside.bin
  'escape-abs-link.bin', // symlink to /etc/hostname
  'inner-link.bin', // symlink to a file inside the folder (allowed)
  'sub', // a directory
  'missing.bin',
  '',
  '.',
  'model.onnx',
  'a\0b',
  'C:\\Windows\\win.ini',
  '\\\\server\\share\\x.bin',
] as const;

const EDGE_INTS = [0, 1, -1, 2, 3, 7, 64, 255, 65536, 2 ** 31 - 1, 2 ** 31, -(2 ** 31), 2 ** 32, 2 ** 40, 2 ** 53, -(2 ** 53), 2 ** 62, -(2 ** 62)];
const EDGE_FLOATS = [0, -0, 1, -1, 0.5, 1e-30, 1e30, 3.4e38, NaN, Infinity, -Infinity];
const DIM_VALUES = [0, 1, 2, 3, 5, 17, 1024, 2 ** 20, 2 ** 31, 2 ** 40, 2 ** 53, -1, -(2 ** 40)];
const OPSET_VERSIONS = [0, -1, 1, 6, 7, 9, 11, 13, 14, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 99, 2 ** 31, 2 ** 40];
const OP_NAMES = [
  'Add', 'MatMul', 'Reshape', 'Transpose', 'Gather', 'Concat', 'Slice', 'Softmax', 'Cast', 'Expand', 'Range',
  'ConstantOfShape', 'Tile', 'Pad', 'Resize', 'Loop', 'If', 'Scan', 'Identity', 'Split', 'Squeeze', 'Unsqueeze',
  'Attention', 'MatMulNBits', 'GroupQueryAttention', 'Where', 'TopK', 'NonZero', 'Conv', 'NoSuchOp', '',
];
const DOMAINS = ['', 'ai.onnx', 'com.microsoft', 'ai.onnx.ml', 'bogus.domain', 'llmcc'];
const ATTRIBUTE_NAMES = ['axis', 'axes', 'perm', 'to', 'num_heads', 'bits', 'block_size', 'K', 'N', 'epsilon', 'mode', 'value', 'body', 'then_branch'];

/** Everything in a model the mutators may touch, gathered once per case. */
interface Parts {
  model: ModelProto;
  graphs: GraphProto[];
  nodes: NodeProto[];
  valueInfos: ValueInfoProto[];
  initializers: TensorProto[];
  /** Tensors anywhere (initializers, tensor attributes). */
  tensors: TensorProto[];
  attributes: { node: NodeProto; attr: AttributeProto }[];
}

function gather(model: ModelProto): Parts {
  const parts: Parts = { model, graphs: [], nodes: [], valueInfos: [], initializers: [], tensors: [], attributes: [] };
  const visitNodes = (nodes: NodeProto[]): void => {
    for (const node of nodes) {
      parts.nodes.push(node);
      for (const attr of node.attribute ?? []) {
        parts.attributes.push({ node, attr });
        if (attr.t) parts.tensors.push(attr.t);
        for (const t of attr.tensors ?? []) parts.tensors.push(t);
        if (attr.g) visitGraph(attr.g);
        for (const g of attr.graphs ?? []) visitGraph(g);
      }
    }
  };
  const visitGraph = (graph: GraphProto): void => {
    parts.graphs.push(graph);
    parts.valueInfos.push(...(graph.input ?? []), ...(graph.output ?? []), ...(graph.valueInfo ?? []));
    parts.initializers.push(...(graph.initializer ?? []));
    parts.tensors.push(...(graph.initializer ?? []));
    visitNodes(graph.node ?? []);
  };
  if (model.graph) visitGraph(model.graph);
  for (const fn of model.functions ?? []) visitNodes(fn.node ?? []);
  return parts;
}

/** A field-level mutator: edits the model in place and describes the edit, or returns undefined when it does not apply. */
type Mutator = (parts: Parts, rng: Rng) => string | undefined;

const label = (node: NodeProto): string => `node "${node.name || node.opType}"`;

function randomName(rng: Rng): string {
  return rng.pick(['x', 'missing_value', '', ' ', 'a/b', '\u00e9\u0000', 'input', 'output', `v${rng.int(1000)}`]);
}

/** All value names defined in a graph: inputs, initializers, node outputs. */
function definedNames(graph: GraphProto): string[] {
  return [
    ...(graph.input ?? []).map((v) => v.name ?? ''),
    ...(graph.initializer ?? []).map((t) => t.name ?? ''),
    ...(graph.node ?? []).flatMap((n) => n.output ?? []),
  ].filter(Boolean);
}

function setDimValue(dim: Dimension, value: number): void {
  // The oneof is decided by own properties (protobufjs): drop the other member.
  delete (dim as { dimParam?: string | null }).dimParam;
  dim.dimValue = value;
}

function setDimParam(dim: Dimension, param: string): void {
  delete (dim as { dimValue?: unknown }).dimValue;
  dim.dimParam = param;
}

const mutateDim: Mutator = (parts, rng) => {
  const shaped = parts.valueInfos.filter((v) => v.type?.tensorType?.shape);
  if (!shaped.length) return undefined;
  const vi = rng.pick(shaped);
  const shape = vi.type!.tensorType!.shape!;
  const dims = shape.dim ?? (shape.dim = []);
  const what = rng.int(6);
  if (what === 0 || dims.length === 0) {
    const dim = onnx.TensorShapeProto.Dimension.create();
    setDimValue(dim, rng.pick(DIM_VALUES));
    dims.splice(rng.int(dims.length + 1), 0, dim);
    return `value "${vi.name}": insert dim ${dim.dimValue}`;
  }
  const axis = rng.int(dims.length);
  if (what === 1) {
    dims.splice(axis, 1);
    return `value "${vi.name}": remove dim ${axis}`;
  }
  if (what === 2) {
    delete vi.type!.tensorType!.shape;
    return `value "${vi.name}": drop shape`;
  }
  if (what === 3) {
    const param = rng.pick(['N', 'batch', '', 'x y', 'unk_0', '\u2603']);
    setDimParam(dims[axis], param);
    return `value "${vi.name}": dim ${axis} = "${param}"`;
  }
  const value = rng.pick(DIM_VALUES);
  setDimValue(dims[axis], value);
  return `value "${vi.name}": dim ${axis} = ${value}`;
};

const mutateElemType: Mutator = (parts, rng) => {
  const typed = parts.valueInfos.filter((v) => v.type?.tensorType);
  if (!typed.length) return undefined;
  const vi = rng.pick(typed);
  const code = rng.chance(0.8) ? rng.int(27) : rng.pick([-1, 99, 2 ** 31 - 1]);
  vi.type!.tensorType!.elemType = code;
  return `value "${vi.name}": elem_type = ${code}`;
};

const mutateValueType: Mutator = (parts, rng) => {
  if (!parts.valueInfos.length) return undefined;
  const vi = rng.pick(parts.valueInfos);
  const what = rng.int(3);
  if (what === 0) {
    delete vi.type;
    return `value "${vi.name}": drop type`;
  }
  if (what === 1) {
    vi.type = { sequenceType: { elemType: vi.type ?? {} } };
    return `value "${vi.name}": sequence type`;
  }
  vi.type = { mapType: { keyType: 7, valueType: vi.type ?? {} } };
  return `value "${vi.name}": map type`;
};

const mutateTensorType: Mutator = (parts, rng) => {
  if (!parts.tensors.length) return undefined;
  const t = rng.pick(parts.tensors);
  const code = rng.chance(0.85) ? rng.int(27) : rng.pick([-1, 99]);
  t.dataType = code;
  return `tensor "${t.name}": data_type = ${code}`;
};

const mutateTensorDims: Mutator = (parts, rng) => {
  if (!parts.tensors.length) return undefined;
  const t = rng.pick(parts.tensors);
  const dims = [...(t.dims ?? [])];
  const what = rng.int(4);
  if (what === 0 && dims.length) dims.splice(rng.int(dims.length), 1);
  else if (what === 1) dims.splice(rng.int(dims.length + 1), 0, rng.pick(DIM_VALUES));
  else if (dims.length) dims[rng.int(dims.length)] = rng.pick(DIM_VALUES);
  else dims.push(rng.pick(DIM_VALUES));
  t.dims = dims;
  return `tensor "${t.name}": dims = [${dims.map(String).join(',')}]`;
};

const mutateTensorData: Mutator = (parts, rng) => {
  if (!parts.tensors.length) return undefined;
  const t = rng.pick(parts.tensors);
  const raw = t.rawData;
  if (raw && raw.length) {
    const what = rng.int(4);
    if (what === 0) {
      const n = rng.int(raw.length);
      t.rawData = raw.slice(0, n);
      return `tensor "${t.name}": raw_data truncated to ${n} bytes`;
    }
    if (what === 1) {
      const grown = new Uint8Array(raw.length + 1 + rng.int(16));
      grown.set(raw);
      t.rawData = grown;
      return `tensor "${t.name}": raw_data grown to ${grown.length} bytes`;
    }
    if (what === 2) {
      const copy = raw.slice();
      for (let k = 0; k < 1 + rng.int(8); k++) copy[rng.int(copy.length)] = rng.pick([0xff, 0x7f, 0x80, 0x00]);
      t.rawData = copy;
      return `tensor "${t.name}": raw_data bytes set to extremes (NaN/Inf/huge)`;
    }
    t.rawData = new Uint8Array(0);
    t.floatData = [1, 2, 3];
    return `tensor "${t.name}": raw_data replaced by 3 float_data`;
  }
  const field = rng.pick(['floatData', 'int32Data', 'int64Data', 'doubleData', 'uint64Data', 'stringData'] as const);
  if (field === 'stringData') t.stringData = [new Uint8Array([0xff, 0xfe]), new TextEncoder().encode('x')];
  else if (field === 'floatData' || field === 'doubleData') t[field] = [NaN, Infinity, 1e300, 0].slice(0, rng.int(5));
  else t[field] = EDGE_INTS.slice(0, rng.int(6));
  return `tensor "${t.name}": ${field} replaced`;
};

/** Sets one element of a small inline int/float tensor to an edge value (shape constants, indices, axes). */
const mutateTensorValue: Mutator = (parts, rng) => {
  const INT64 = 7;
  const INT32 = 6;
  const FLOAT = 1;
  const candidates = parts.tensors.filter((t) =>
    t.dataLocation !== 1 && (t.dataType === INT64 || t.dataType === INT32 || t.dataType === FLOAT) &&
    ((t.rawData?.length ?? 0) > 0 ? t.rawData!.length <= 4096 : (t.int64Data?.length || t.int32Data?.length || t.floatData?.length)));
  if (!candidates.length) return undefined;
  const t = rng.pick(candidates);
  const isFloat = t.dataType === FLOAT;
  const value = isFloat ? rng.pick(EDGE_FLOATS) : rng.chance(0.3) ? rng.int(9) - 4 : rng.pick(EDGE_INTS);
  const raw = t.rawData;
  let index: number;
  if (raw && raw.length > 0) {
    const width = t.dataType === INT64 ? 8 : 4;
    const count = Math.floor(raw.length / width);
    if (count === 0) return undefined;
    index = rng.int(count);
    const copy = raw.slice();
    const view = new DataView(copy.buffer, copy.byteOffset, copy.byteLength);
    if (t.dataType === INT64) view.setBigInt64(index * 8, BigInt(value), true);
    else if (t.dataType === INT32) view.setInt32(index * 4, value | 0, true);
    else view.setFloat32(index * 4, value, true);
    t.rawData = copy;
  } else {
    const field = t.dataType === INT64 ? 'int64Data' : t.dataType === INT32 ? 'int32Data' : 'floatData';
    const values = [...(t[field] ?? [])] as number[];
    if (!values.length) return undefined;
    index = rng.int(values.length);
    values[index] = t.dataType === INT32 ? value | 0 : value;
    t[field] = values;
  }
  return `tensor "${t.name}": element ${index} = ${value}`;
};

/** Tensors in external data, or inline ones turned external, get a hostile record. */
const mutateExternalData: Mutator = (parts, rng) => {
  if (!parts.tensors.length) return undefined;
  const externals = parts.tensors.filter((t) => t.dataLocation === 1);
  const t = externals.length && rng.chance(0.7) ? rng.pick(externals) : rng.pick(parts.tensors);
  const entries = t.externalData?.length ? t.externalData.map((e) => ({ key: e.key, value: e.value })) : [];
  const set = (key: string, value: string): void => {
    const entry = entries.find((e) => e.key === key);
    if (entry) entry.value = value;
    else entries.push({ key, value });
  };
  const changes: string[] = [];
  if (t.dataLocation !== 1) {
    t.dataLocation = 1;
    t.rawData = new Uint8Array(0);
    set('location', 'model.onnx.data');
    changes.push('made external');
  }
  const what = rng.int(6);
  if (what <= 1) {
    const location = rng.pick(HOSTILE_LOCATIONS);
    set('location', location);
    changes.push(`location=${JSON.stringify(location)}`);
  } else if (what === 2 || what === 3) {
    const key = what === 2 ? 'offset' : 'length';
    const value = rng.pick(['-1', '1e3', ' 5', 'abc', '', '0x10', String(2 ** 53 + 1), '18446744073709551616',
      String(2 ** 40), String(rng.int(4096)), '99999999999999999999999']);
    set(key, value);
    changes.push(`${key}=${JSON.stringify(value)}`);
  } else if (what === 4) {
    const key = rng.pick(['location', 'offset', 'length']);
    const index = entries.findIndex((e) => e.key === key);
    if (index >= 0) entries.splice(index, 1);
    changes.push(`remove ${key}`);
  } else {
    entries.push({ key: 'location', value: rng.pick(HOSTILE_LOCATIONS) });
    changes.push(`second location=${JSON.stringify(entries[entries.length - 1].value)}`);
  }
  t.externalData = entries;
  return `tensor "${t.name}": external data ${changes.join(', ')}`;
};

const mutateAttribute: Mutator = (parts, rng) => {
  if (!parts.attributes.length) return undefined;
  const { node, attr } = rng.pick(parts.attributes);
  const where = `${label(node)} attribute "${attr.name}"`;
  const what = rng.int(10);
  switch (what) {
    case 0: {
      const value = rng.pick(EDGE_INTS);
      attr.i = value;
      return `${where}: i = ${value}`;
    }
    case 1: {
      const value = rng.pick(EDGE_FLOATS);
      attr.f = value;
      return `${where}: f = ${value}`;
    }
    case 2: {
      const ints = [...(attr.ints ?? [])];
      const how = rng.int(4);
      if (how === 0) ints.length = 0;
      else if (how === 1) ints.push(rng.pick(EDGE_INTS));
      else if (ints.length) ints[rng.int(ints.length)] = rng.pick(EDGE_INTS);
      else ints.push(rng.pick(EDGE_INTS), rng.pick(EDGE_INTS));
      attr.ints = ints;
      return `${where}: ints = [${ints.map(String).join(',')}]`;
    }
    case 3: {
      const s = rng.pick(['', 'bogus', 'NOTSET', '\u00ff\u00fe', 'constant', 'linear']);
      attr.s = rng.chance(0.2) ? new Uint8Array([0xc3, 0x28]) : new TextEncoder().encode(s);
      return `${where}: s = ${JSON.stringify(s)}`;
    }
    case 4: {
      const type = rng.int(16);
      attr.type = type;
      return `${where}: type = ${type}`;
    }
    case 5: {
      node.attribute = (node.attribute ?? []).filter((a) => a !== attr);
      return `${where}: removed`;
    }
    case 6: {
      node.attribute = [...(node.attribute ?? []), { ...attr, name: attr.name, type: attr.type, i: attr.i, f: attr.f, s: attr.s }];
      return `${where}: duplicated`;
    }
    case 7: {
      const name = rng.pick(ATTRIBUTE_NAMES);
      attr.name = name;
      return `${where}: renamed to "${name}"`;
    }
    case 8: {
      attr.floats = EDGE_FLOATS.slice(0, rng.int(EDGE_FLOATS.length));
      attr.type = rng.chance(0.5) ? 6 : attr.type;
      return `${where}: floats = [${attr.floats.map(String).join(',')}]`;
    }
    default: {
      if (attr.t) {
        attr.t = { ...attr.t, dims: [...(attr.t.dims ?? []), 0] };
        return `${where}: tensor gets a 0 dim`;
      }
      if (attr.g) {
        attr.g = { ...attr.g, node: [], output: attr.g.output };
        return `${where}: subgraph emptied`;
      }
      delete attr.refAttrName;
      attr.refAttrName = 'outer_attr';
      return `${where}: ref_attr_name = "outer_attr"`;
    }
  }
};

const addAttribute: Mutator = (parts, rng) => {
  if (!parts.nodes.length) return undefined;
  const node = rng.pick(parts.nodes);
  const name = rng.pick(ATTRIBUTE_NAMES);
  const attr: AttributeProto = rng.chance(0.5)
    ? { name, type: 2, i: rng.pick(EDGE_INTS) }
    : { name, type: 7, ints: [rng.pick(EDGE_INTS), rng.pick(EDGE_INTS)] };
  node.attribute = [...(node.attribute ?? []), attr];
  return `${label(node)}: add attribute "${name}"`;
};

const mutateNodeInputs: Mutator = (parts, rng) => {
  const graphs = parts.graphs.filter((g) => g.node?.length);
  if (!graphs.length) return undefined;
  const graph = rng.pick(graphs);
  const nodes = graph.node!;
  const index = rng.int(nodes.length);
  const node = nodes[index];
  const inputs = [...(node.input ?? [])];
  const slot = rng.int(inputs.length + 1);
  const what = rng.int(7);
  let change: string;
  if (what === 0) {
    const name = randomName(rng);
    inputs[slot] = name;
    change = `input ${slot} = "${name}" (dangling)`;
  } else if (what === 1) {
    // A value produced later (or by the node itself): a cycle.
    const later = nodes.slice(index).flatMap((n) => n.output ?? []).filter(Boolean);
    if (!later.length) return undefined;
    const name = rng.pick(later);
    inputs[slot] = name;
    change = `input ${slot} = "${name}" (from a later node: cycle)`;
  } else if (what === 2) {
    const defined = definedNames(graph);
    if (!defined.length) return undefined;
    const name = rng.pick(defined);
    inputs[slot] = name;
    change = `input ${slot} = "${name}"`;
  } else if (what === 3 && inputs.length) {
    inputs.splice(rng.int(inputs.length), 1);
    change = 'drop an input';
  } else if (what === 4) {
    inputs.push(...inputs);
    change = 'inputs doubled';
  } else if (what === 5 && inputs.length) {
    inputs[rng.int(inputs.length)] = '';
    change = 'an input made optional-empty';
  } else {
    inputs.reverse();
    change = 'inputs reversed';
  }
  node.input = inputs;
  return `${label(node)}: ${change}`;
};

const mutateNodeOutputs: Mutator = (parts, rng) => {
  const graphs = parts.graphs.filter((g) => g.node?.length);
  if (!graphs.length) return undefined;
  const graph = rng.pick(graphs);
  const node = rng.pick(graph.node!);
  const outputs = [...(node.output ?? [])];
  const what = rng.int(5);
  let change: string;
  if (what === 0) {
    const defined = definedNames(graph);
    const name = rng.pick(defined.length ? defined : ['x']);
    outputs[rng.int(outputs.length + 1)] = name;
    change = `output redefines "${name}"`;
  } else if (what === 1 && outputs.length) {
    outputs.pop();
    change = 'drop last output';
  } else if (what === 2) {
    outputs.push(`extra_${rng.int(100)}`);
    change = 'extra output';
  } else if (what === 3 && outputs.length) {
    outputs[0] = randomName(rng);
    change = `output 0 renamed to "${outputs[0]}"`;
  } else {
    outputs.push(...outputs);
    change = 'outputs doubled';
  }
  node.output = outputs;
  return `${label(node)}: ${change}`;
};

const mutateNode: Mutator = (parts, rng) => {
  const graphs = parts.graphs.filter((g) => g.node?.length);
  if (!graphs.length) return undefined;
  const graph = rng.pick(graphs);
  const nodes = graph.node!;
  const index = rng.int(nodes.length);
  const node = nodes[index];
  const what = rng.int(6);
  if (what === 0) {
    nodes.splice(index, 1);
    return `${label(node)}: removed`;
  }
  if (what === 1) {
    nodes.splice(index, 0, onnx.NodeProto.decode(onnx.NodeProto.encode(node).finish()));
    return `${label(node)}: duplicated`;
  }
  if (what === 2) {
    const moved = nodes.splice(index, 1)[0];
    nodes.splice(rng.int(nodes.length + 1), 0, moved);
    return `${label(node)}: moved`;
  }
  if (what === 3) {
    const domain = rng.pick(DOMAINS);
    node.domain = domain;
    return `${label(node)}: domain = "${domain}"`;
  }
  const op = rng.chance(0.5) ? rng.pick(OP_NAMES) : rng.pick(parts.nodes).opType ?? '';
  const old = label(node);
  node.opType = op;
  return `${old}: op_type = "${op}"`;
};

const mutateOpsets: Mutator = (parts, rng) => {
  const model = parts.model;
  const imports = [...(model.opsetImport ?? [])].map((o) => ({ domain: o.domain, version: o.version }));
  const what = rng.int(4);
  let change: string;
  if ((what === 0 || what === 1) && imports.length) {
    const entry = rng.pick(imports);
    entry.version = rng.pick(OPSET_VERSIONS);
    change = `opset "${entry.domain}" = ${entry.version}`;
  } else if (what === 2 && imports.length) {
    const index = rng.int(imports.length);
    change = `opset "${imports[index].domain}" removed`;
    imports.splice(index, 1);
  } else {
    const domain = rng.pick(DOMAINS);
    const version = rng.pick(OPSET_VERSIONS);
    imports.push({ domain, version });
    change = `opset "${domain}" ${version} added`;
  }
  model.opsetImport = imports;
  return change;
};

const mutateGraphIo: Mutator = (parts, rng) => {
  const graph = rng.pick(parts.graphs);
  const what = rng.int(6);
  const inputs = [...(graph.input ?? [])];
  const outputs = [...(graph.output ?? [])];
  let change: string;
  if (what === 0 && outputs.length) {
    outputs.splice(rng.int(outputs.length), 1);
    change = 'an output removed';
  } else if (what === 1 && outputs.length) {
    outputs.push(rng.pick(outputs));
    change = 'an output duplicated';
  } else if (what === 2 && outputs.length) {
    const index = rng.int(outputs.length);
    outputs[index] = { ...outputs[index], name: randomName(rng) };
    change = `output ${index} renamed to "${outputs[index].name}"`;
  } else if (what === 3 && inputs.length) {
    inputs.splice(rng.int(inputs.length), 1);
    change = 'an input removed';
  } else if (what === 4 && inputs.length) {
    inputs.push(rng.pick(inputs));
    change = 'an input duplicated';
  } else {
    const names = definedNames(graph);
    const name = names.length ? rng.pick(names) : 'x';
    outputs.push({ name, type: rng.chance(0.5) ? { tensorType: { elemType: 1 } } : null });
    change = `output "${name}" added`;
  }
  graph.input = inputs;
  graph.output = outputs;
  return `graph "${graph.name}": ${change}`;
};

const mutateInitializers: Mutator = (parts, rng) => {
  const graphs = parts.graphs.filter((g) => g.initializer?.length);
  if (!graphs.length) return undefined;
  const graph = rng.pick(graphs);
  const list = [...graph.initializer!];
  const index = rng.int(list.length);
  const t = list[index];
  const what = rng.int(3);
  let change: string;
  if (what === 0) {
    list.splice(index, 1);
    change = `initializer "${t.name}" removed`;
  } else if (what === 1) {
    list.push(t);
    change = `initializer "${t.name}" duplicated`;
  } else {
    const names = definedNames(graph);
    const name = rng.chance(0.3) ? '' : rng.pick(names.length ? names : ['x']);
    list[index] = { ...t, name };
    change = `initializer "${t.name}" renamed to "${name}"`;
  }
  graph.initializer = list;
  return `graph "${graph.name}": ${change}`;
};

const MUTATORS: { name: string; weight: number; run: Mutator }[] = [
  { name: 'dim', weight: 3, run: mutateDim },
  { name: 'elem_type', weight: 2, run: mutateElemType },
  { name: 'value_type', weight: 1, run: mutateValueType },
  { name: 'tensor_type', weight: 2, run: mutateTensorType },
  { name: 'tensor_dims', weight: 2, run: mutateTensorDims },
  { name: 'tensor_data', weight: 2, run: mutateTensorData },
  { name: 'tensor_value', weight: 4, run: mutateTensorValue },
  { name: 'external_data', weight: 3, run: mutateExternalData },
  { name: 'attribute', weight: 4, run: mutateAttribute },
  { name: 'add_attribute', weight: 1, run: addAttribute },
  { name: 'node_inputs', weight: 3, run: mutateNodeInputs },
  { name: 'node_outputs', weight: 2, run: mutateNodeOutputs },
  { name: 'node', weight: 3, run: mutateNode },
  { name: 'opsets', weight: 2, run: mutateOpsets },
  { name: 'graph_io', weight: 2, run: mutateGraphIo },
  { name: 'initializers', weight: 1, run: mutateInitializers },
];
const TOTAL_WEIGHT = MUTATORS.reduce((n, m) => n + m.weight, 0);

function pickMutator(rng: Rng): Mutator {
  let r = rng.int(TOTAL_WEIGHT);
  for (const m of MUTATORS) {
    if (r < m.weight) return m.run;
    r -= m.weight;
  }
  return MUTATORS[0].run;
}

/** Byte-level damage of an encoded model. */
function damageBytes(bytes: Uint8Array, rng: Rng): { bytes: Uint8Array; description: string } {
  if (bytes.length === 0) return { bytes, description: 'empty' };
  const what = rng.int(5);
  if (what === 0) {
    const n = rng.int(bytes.length);
    return { bytes: bytes.slice(0, n), description: `truncate to ${n} bytes` };
  }
  if (what === 1) {
    const copy = bytes.slice();
    const flips: string[] = [];
    for (let k = 0; k < 1 + rng.int(4); k++) {
      const at = rng.int(copy.length);
      const bit = rng.int(8);
      copy[at] ^= 1 << bit;
      flips.push(`${at}.${bit}`);
    }
    return { bytes: copy, description: `bit flips ${flips.join(' ')}` };
  }
  if (what === 2) {
    const copy = bytes.slice();
    const at = rng.int(copy.length);
    const value = rng.pick([0x00, 0xff, 0x80, 0x7f, 0x08, 0x12]);
    copy[at] = value;
    return { bytes: copy, description: `byte ${at} = 0x${value.toString(16)}` };
  }
  const start = rng.int(bytes.length);
  const length = 1 + rng.int(Math.min(64, bytes.length - start));
  if (what === 3) {
    const out = new Uint8Array(bytes.length - length);
    out.set(bytes.subarray(0, start));
    out.set(bytes.subarray(start + length), start);
    return { bytes: out, description: `delete bytes ${start}..${start + length}` };
  }
  const out = new Uint8Array(bytes.length + length);
  out.set(bytes.subarray(0, start + length));
  out.set(bytes.subarray(start), start + length);
  return { bytes: out, description: `duplicate bytes ${start}..${start + length}` };
}

/** One changed element of a test-data input: hostile values (indices out of range, NaN, huge) reach the ops. */
export interface FeedEdit {
  input: number;
  index: number;
  value: number;
}

/** What the mutator may know about the seed's test inputs: dtype and element count of each. */
export interface FeedInfo {
  dtype: string;
  size: number;
}

export interface Mutant {
  bytes: Uint8Array;
  /** One line per mutation, in the order applied. */
  mutations: string[];
  feedEdits: FeedEdit[];
}

const INTEGER_FEED = /^(i|u)\d+$|^bool$/;

function mutateFeeds(feeds: readonly FeedInfo[], rng: Rng, mutations: string[]): FeedEdit[] {
  const editable = feeds.map((f, input) => ({ ...f, input })).filter((f) => f.size > 0 && f.dtype !== 'string');
  if (!editable.length) return [];
  const edits: FeedEdit[] = [];
  for (let k = 0; k < 1 + rng.int(2); k++) {
    const feed = rng.pick(editable);
    const index = rng.int(feed.size);
    const value = INTEGER_FEED.test(feed.dtype)
      ? (rng.chance(0.4) ? rng.int(9) - 4 : rng.pick(EDGE_INTS))
      : rng.pick(EDGE_FLOATS);
    edits.push({ input: feed.input, index, value });
    mutations.push(`input_${feed.input}.pb element ${index} = ${value}`);
  }
  return edits;
}

/**
 * Mutates a serialized model: 1–3 field-level edits, then (sometimes) byte-level damage.
 * `rng` fixes every choice, so the same seed gives the same bytes.
 */
export function mutateModel(original: Uint8Array, rng: Rng, feeds: readonly FeedInfo[] = []): Mutant {
  const mutations: string[] = [];
  let bytes = original;
  const byteOnly = rng.chance(0.15);
  // Some cases keep the model and change only the test inputs' values.
  const feedOnly = !byteOnly && feeds.length > 0 && rng.chance(0.12);
  if (feedOnly) return { bytes, mutations, feedEdits: mutateFeeds(feeds, rng, mutations) };
  if (!byteOnly) {
    const model = onnx.ModelProto.decode(original);
    const count = 1 + rng.int(3);
    for (let k = 0; k < count; k++) {
      // A mutator that does not apply (nothing of its kind) gives way to another draw.
      for (let attempt = 0; attempt < 8; attempt++) {
        const description = pickMutator(rng)(gather(model), rng);
        if (description !== undefined) {
          mutations.push(description);
          break;
        }
      }
    }
    bytes = onnx.ModelProto.encode(model).finish();
  }
  if (byteOnly || rng.chance(0.1)) {
    const damaged = damageBytes(bytes, rng);
    bytes = damaged.bytes;
    mutations.push(damaged.description);
  }
  const feedEdits = !byteOnly && feeds.length > 0 && rng.chance(0.1) ? mutateFeeds(feeds, rng, mutations) : [];
  return { bytes, mutations, feedEdits };
}
