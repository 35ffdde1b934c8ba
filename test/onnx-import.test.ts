import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type DType, dtypeToOnnx } from '../ir/dtype.js';
import { LlmccError } from '../ir/errors.js';
import type { Graph } from '../ir/graph.js';
import { Tensor } from '../ir/tensor.js';
import { loadModel, loadModelFromBytes } from '../src/onnx/load.js';
import { type GraphProto, type ModelProto, type NodeProto, type TensorProto, type ValueInfoProto, onnx } from '../src/onnx/proto.js';
import { decodeTensorProto, encodeTensorProto, readTensorFile, writeTensorFile } from '../src/onnx/tensor-proto.js';

const SHARED = path.resolve(__dirname, '../../shared');
const CONFORMANCE = path.join(SHARED, 'conformance/onnx-node');
const MODELS = path.join(SHARED, 'models');

let tmp: string;
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'llmcc-onnx-import-'));
});
afterAll(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});

// ---------------------------------------------------------------------------------------
// Builders

function valueInfo(name: string, dtype: DType, dims: (number | string | null)[] | undefined): ValueInfoProto {
  const tensorType: onnx.TypeProto.ITensor = { elemType: dtypeToOnnx(dtype) };
  if (dims) {
    tensorType.shape = {
      dim: dims.map((d) => (d === null ? {} : typeof d === 'number' ? { dimValue: d } : { dimParam: d })),
    };
  }
  return { name, type: { tensorType } };
}

function node(op: string, inputs: string[], outputs: string[], extra: Partial<NodeProto> = {}): NodeProto {
  return { opType: op, input: inputs, output: outputs, ...extra };
}

function modelBytes(graph: GraphProto, extra: Partial<ModelProto> = {}): Uint8Array {
  return onnx.ModelProto.encode({
    irVersion: 10,
    producerName: 'test',
    opsetImport: [{ domain: '', version: 21 }],
    graph,
    ...extra,
  }).finish();
}

/** A small valid model: Y = X + W, W an initializer. */
function addModel(weight: TensorProto = rawTensor('W', 'f32', [2], new Uint8Array(new Float32Array([1, 2]).buffer))): Uint8Array {
  return modelBytes({
    name: 'g',
    input: [valueInfo('X', 'f32', [2])],
    output: [valueInfo('Y', 'f32', [2])],
    initializer: [weight],
    node: [node('Add', ['X', 'W'], ['Y'], { name: 'add' })],
  });
}

function rawTensor(name: string, dtype: DType, dims: number[], raw: Uint8Array): TensorProto {
  return { name, dataType: dtypeToOnnx(dtype), dims, rawData: raw };
}

function externalTensor(name: string, dtype: DType, dims: number[], entries: Record<string, string>): TensorProto {
  return {
    name,
    dataType: dtypeToOnnx(dtype),
    dims,
    dataLocation: onnx.TensorProto.DataLocation.EXTERNAL,
    externalData: Object.entries(entries).map(([key, value]) => ({ key, value })),
  };
}

function writeModel(dir: string, bytes: Uint8Array, name = 'model.onnx'): string {
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, name);
  fs.writeFileSync(file, bytes);
  return file;
}

/** Runs `f` and returns the LlmccError it throws (failing on any other outcome). */
function llmccError(f: () => unknown): LlmccError {
  try {
    f();
  } catch (e) {
    if (e instanceof LlmccError) return e;
    throw new Error(`expected LlmccError, got ${String(e)}`);
  }
  throw new Error('expected LlmccError, nothing was thrown');
}

async function llmccErrorAsync(f: () => Promise<unknown>): Promise<LlmccError> {
  try {
    await f();
  } catch (e) {
    if (e instanceof LlmccError) return e;
    throw new Error(`expected LlmccError, got ${String(e)}`);
  }
  throw new Error('expected LlmccError, nothing was thrown');
}

function decode(proto: TensorProto): Tensor {
  return decodeTensorProto(onnx.TensorProto.decode(onnx.TensorProto.encode(proto).finish()));
}

// ---------------------------------------------------------------------------------------
// TensorProto storage forms

/** Per dtype: element values, and how the typed field encodes them. */
const CASES: { dtype: DType; values: number[]; typed: Partial<TensorProto>; raw: number[] }[] = [
  { dtype: 'f32', values: [1.5, -2, 0], typed: { floatData: [1.5, -2, 0] }, raw: [0, 0, 0xc0, 0x3f, 0, 0, 0, 0xc0, 0, 0, 0, 0] },
  { dtype: 'f64', values: [0.1, -3], typed: { doubleData: [0.1, -3] }, raw: [...new Uint8Array(new Float64Array([0.1, -3]).buffer)] },
  { dtype: 'f16', values: [1, -2, 65504], typed: { int32Data: [0x3c00, 0xc000, 0x7bff] }, raw: [0x00, 0x3c, 0x00, 0xc0, 0xff, 0x7b] },
  { dtype: 'bf16', values: [1, -2], typed: { int32Data: [0x3f80, 0xc000] }, raw: [0x80, 0x3f, 0x00, 0xc0] },
  { dtype: 'f8e4m3fn', values: [1, -448, 0.5], typed: { int32Data: [0x38, 0xfe, 0x30] }, raw: [0x38, 0xfe, 0x30] },
  { dtype: 'f8e4m3fnuz', values: [1, -0.5], typed: { int32Data: [0x40, 0xb8] }, raw: [0x40, 0xb8] },
  { dtype: 'f8e5m2', values: [1, -2, 57344], typed: { int32Data: [0x3c, 0xc0, 0x7b] }, raw: [0x3c, 0xc0, 0x7b] },
  { dtype: 'f8e5m2fnuz', values: [1, -2], typed: { int32Data: [0x40, 0xc4] }, raw: [0x40, 0xc4] },
  { dtype: 'f8e8m0', values: [1, 0.25, 8], typed: { int32Data: [127, 125, 130] }, raw: [127, 125, 130] },
  // f4e2m1 codes: 1.0 = 0b0010, -6 = 0b1111, 0.5 = 0b0001; packed two per byte, low nibble first.
  { dtype: 'f4e2m1', values: [1, -6, 0.5], typed: { int32Data: [0xf2, 0x01] }, raw: [0xf2, 0x01] },
  { dtype: 'i8', values: [-128, 127, 5], typed: { int32Data: [-128, 127, 5] }, raw: [0x80, 0x7f, 5] },
  { dtype: 'u8', values: [255, 0, 7], typed: { int32Data: [255, 0, 7] }, raw: [255, 0, 7] },
  { dtype: 'i16', values: [-2, 300], typed: { int32Data: [-2, 300] }, raw: [0xfe, 0xff, 0x2c, 0x01] },
  { dtype: 'u16', values: [65535, 1], typed: { int32Data: [65535, 1] }, raw: [0xff, 0xff, 1, 0] },
  { dtype: 'i32', values: [-1, 2 ** 31 - 1], typed: { int32Data: [-1, 2 ** 31 - 1] }, raw: [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f] },
  { dtype: 'u32', values: [2 ** 32 - 1, 3], typed: { uint64Data: [2 ** 32 - 1, 3] }, raw: [0xff, 0xff, 0xff, 0xff, 3, 0, 0, 0] },
  {
    dtype: 'i64', values: [-1, 2 ** 40, -(2 ** 50)], typed: { int64Data: [-1, 2 ** 40, -(2 ** 50)] },
    raw: [...new Uint8Array(new BigInt64Array([-1n, 2n ** 40n, -(2n ** 50n)]).buffer)],
  },
  {
    dtype: 'u64', values: [2 ** 53, 7], typed: { uint64Data: [2 ** 53, 7] },
    raw: [...new Uint8Array(new BigUint64Array([2n ** 53n, 7n]).buffer)],
  },
  { dtype: 'bool', values: [1, 0, 1], typed: { int32Data: [1, 0, 1] }, raw: [1, 0, 1] },
  // int4 -1 = 0xf, 7, -8 = 0x8: bytes 0x7f, 0x08.
  { dtype: 'i4', values: [-1, 7, -8], typed: { int32Data: [0x7f, 0x08] }, raw: [0x7f, 0x08] },
  { dtype: 'u4', values: [15, 0, 9, 1], typed: { int32Data: [0x0f, 0x19] }, raw: [0x0f, 0x19] },
  // int2: 1, -1 (0b11), -2 (0b10), 0, then 1 -> 0b00_10_11_01 = 0x2d, 0x01.
  { dtype: 'i2', values: [1, -1, -2, 0, 1], typed: { int32Data: [0x2d, 0x01] }, raw: [0x2d, 0x01] },
  { dtype: 'u2', values: [3, 2, 1, 0], typed: { int32Data: [0x1b] }, raw: [0x1b] },
];

describe('TensorProto decoding', () => {
  for (const c of CASES) {
    it(`${c.dtype}: raw_data and typed field agree with the expected values`, () => {
      const dims = [c.values.length];
      const fromRaw = decode(rawTensor('t', c.dtype, dims, new Uint8Array(c.raw)));
      const fromTyped = decode({ name: 't', dataType: dtypeToOnnx(c.dtype), dims, ...c.typed });
      for (const t of [fromRaw, fromTyped]) {
        expect(t.dtype).toBe(c.dtype);
        expect(t.shape).toEqual(dims);
        expect(Array.from(t.numbers())).toEqual(c.values);
      }
      // encodeTensorProto writes raw_data; it must reproduce the bytes exactly.
      const encoded = onnx.TensorProto.decode(encodeTensorProto(fromTyped, 'x'));
      expect(Array.from(encoded.rawData)).toEqual(c.raw);
    });
  }

  it('decodes strings from string_data and refuses them in raw_data', () => {
    const enc = new TextEncoder();
    const t = decode({ name: 's', dataType: dtypeToOnnx('string'), dims: [2], stringData: [enc.encode('héllo'), enc.encode('')] });
    expect(t.data).toEqual(['héllo', '']);
    expect(llmccError(() => decode(rawTensor('s', 'string', [1], new Uint8Array([65])))).message).toContain('tensor "s"');
  });

  it('reports data size mismatches naming the tensor', () => {
    expect(llmccError(() => decode(rawTensor('short', 'f32', [3], new Uint8Array(8)))).message)
      .toMatch(/tensor "short".*|8 bytes.*needs 12/);
    expect(llmccError(() => decode({ name: 'few', dataType: 1, dims: [3], floatData: [1, 2] })).message).toContain('"few"');
    expect(llmccError(() => decode({ name: 'packed', dataType: dtypeToOnnx('i4'), dims: [3], int32Data: [1] })).message)
      .toContain('"packed"');
    expect(llmccError(() => decode({ name: 'empty', dataType: 1, dims: [2] })).message).toContain('no data');
    expect(decode({ name: 'zero', dataType: 1, dims: [0, 3] }).shape).toEqual([0, 3]);
  });

  it('refuses unknown, complex and negative-dim tensors', () => {
    expect(llmccError(() => decode({ name: 'c', dataType: 14, dims: [1], floatData: [1, 2] })).message).toContain('COMPLEX64');
    expect(llmccError(() => decode({ name: 'u', dataType: 99, dims: [1], floatData: [1] })).message).toContain('99');
    expect(llmccError(() => decode({ name: 'n', dataType: 1, dims: [-1], floatData: [] })).message).toContain('invalid dimension');
  });

  it('writes and reads tensor files (i64, u64, strings, f16, packed)', () => {
    const tensors: [string, Tensor][] = [
      ['a', Tensor.fromNumbers('i64', [2, 2], [-(2 ** 53) + 1, 0, 2 ** 40, -5])],
      ['b', Tensor.fromNumbers('u64', [2], [2 ** 60, 1])],
      ['c', Tensor.strings([2], ['x', 'yz'])],
      ['d', Tensor.fromNumbers('f16', [3], [0.1, 65504, -0])],
      ['e', Tensor.fromNumbers('u4', [3], [1, 15, 3])],
      ['f', Tensor.fromNumbers('bf16', [], [3.14159])],
    ];
    for (const [name, tensor] of tensors) {
      const file = path.join(tmp, `${name}.pb`);
      writeTensorFile(file, tensor, name);
      const back = readTensorFile(file);
      expect(back.name).toBe(name);
      expect(back.tensor.dtype).toBe(tensor.dtype);
      expect(back.tensor.shape).toEqual(tensor.shape);
      expect(Array.from(back.tensor.data as ArrayLike<unknown>)).toEqual(Array.from(tensor.data as ArrayLike<unknown>));
    }
  });

  it('refuses damaged tensor files with LlmccError naming the file', () => {
    const good = encodeTensorProto(Tensor.fromNumbers('f32', [4], [1, 2, 3, 4]), 'v');
    const file = path.join(tmp, 'damaged.pb');
    for (const bytes of [good.subarray(0, good.length - 3), new Uint8Array([0xff, 0xff, 0xff]), new Uint8Array([0x0f])]) {
      fs.writeFileSync(file, bytes);
      expect(llmccError(() => readTensorFile(file)).message).toContain(file);
    }
    expect(llmccError(() => readTensorFile(path.join(tmp, 'missing.pb'))).message).toContain('missing.pb');
  });
});

// ---------------------------------------------------------------------------------------
// Models

describe('model import', () => {
  it('converts graph, types, nodes and attributes', () => {
    const thenBranch: GraphProto = {
      name: 'then',
      output: [valueInfo('t_out', 'f32', [2])],
      node: [node('Identity', ['X'], ['t_out'])],
    };
    const elseBranch: GraphProto = {
      name: 'else',
      output: [valueInfo('e_out', 'f32', [2])],
      node: [node('Neg', ['X'], ['e_out'])],
    };
    const bytes = modelBytes({
      name: 'main',
      input: [valueInfo('X', 'f32', ['batch', 2]), valueInfo('C', 'bool', []), valueInfo('U', 'f16', [null, null]),
        valueInfo('W', 'f32', [2]), valueInfo('R', 'i64', undefined)],
      output: [valueInfo('Y', 'f32', ['batch', 2]), valueInfo('Z', 'f32', undefined)],
      valueInfo: [valueInfo('mid', 'f32', ['batch', 2])],
      initializer: [rawTensor('W', 'f32', [2], new Uint8Array(new Float32Array([1, 2]).buffer))],
      node: [
        node('Add', ['X', 'W'], ['mid']),
        node('Mul', ['mid', 'W'], ['Y'], { name: 'dup' }),
        node('If', ['C'], ['Z'], {
          name: 'dup',
          attribute: [
            { name: 'then_branch', type: onnx.AttributeProto.AttributeType.GRAPH, g: thenBranch },
            { name: 'else_branch', type: onnx.AttributeProto.AttributeType.GRAPH, g: elseBranch },
          ],
        }),
        node('Custom', ['X'], ['q'], {
          domain: 'ai.onnx',
          attribute: [
            { name: 'f', type: 1, f: 0.5 }, { name: 'i', type: 2, i: -3 }, { name: 's', type: 3, s: new TextEncoder().encode('abc') },
            { name: 't', type: 4, t: { dataType: 7, dims: [2], int64Data: [4, -5] } },
            { name: 'fs', type: 6, floats: [1, 2.5] }, { name: 'is', type: 7, ints: [1, -2, 2 ** 40] },
            { name: 'ss', type: 8, strings: [new TextEncoder().encode('a'), new TextEncoder().encode('b')] },
            { name: 'ts', type: 9, tensors: [{ dataType: 1, dims: [], floatData: [7] }] },
            { name: 'gs', type: 10, graphs: [thenBranch] },
          ],
        }),
      ],
    }, { opsetImport: [{ domain: 'ai.onnx', version: 21 }, { domain: 'com.microsoft', version: 1 }], producerVersion: '1.2' });
    const model = loadModelFromBytes(bytes, { path: path.join(tmp, 'in-memory.onnx') });
    expect(model.irVersion).toBe(10);
    expect(model.producer).toBe('test 1.2');
    expect([...model.opsets]).toEqual([['', 21], ['com.microsoft', 1]]);
    const g = model.graph;
    expect(g.name).toBe('main');
    expect(g.inputs.map((i) => i.type)).toEqual([
      { dtype: 'f32', shape: ['batch', 2] }, { dtype: 'bool', shape: [] }, { dtype: 'f16', shape: ['unk_0', 'unk_1'] },
      { dtype: 'f32', shape: [2] }, { dtype: 'i64', shape: undefined },
    ]);
    expect(g.outputs.map((o) => o.name)).toEqual(['Y', 'Z']);
    expect(g.valueInfo.get('mid')).toEqual({ dtype: 'f32', shape: ['batch', 2] });
    // Initializer that is also an input stays in both.
    expect(g.initializers.get('W')?.load().toArray()).toEqual([1, 2]);
    expect(g.inputs.some((i) => i.name === 'W')).toBe(true);
    expect(g.nodes.map((n) => n.name)).toEqual(['Add_0', 'dup', 'dup_1', 'Custom_3']);
    expect(g.nodes.every((n) => n.domain === '')).toBe(true);
    const iff = g.nodes[2].attributes.get('then_branch');
    expect(iff?.kind).toBe('graph');
    const thenGraph = (iff as { value: Graph }).value;
    expect(thenGraph.nodes[0]).toMatchObject({ op: 'Identity', inputs: ['X'], outputs: ['t_out'], name: 'Identity_0' });
    const attrs = g.nodes[3].attributes;
    expect(attrs.get('f')).toEqual({ kind: 'float', value: 0.5 });
    expect(attrs.get('i')).toEqual({ kind: 'int', value: -3 });
    expect(attrs.get('s')).toEqual({ kind: 'string', value: 'abc' });
    const t = attrs.get('t');
    expect(t?.kind === 'tensor' && t.value.toArray()).toEqual([4, -5]);
    expect(attrs.get('fs')).toEqual({ kind: 'floats', value: [1, 2.5] });
    expect(attrs.get('is')).toEqual({ kind: 'ints', value: [1, -2, 2 ** 40] });
    expect(attrs.get('ss')).toEqual({ kind: 'strings', value: ['a', 'b'] });
    const ts = attrs.get('ts');
    expect(ts?.kind === 'tensors' && ts.value[0].toArray()).toEqual([7]);
    expect(attrs.get('gs')?.kind).toBe('graphs');
  });

  it('keeps unknown-dim symbols clear of the model\'s own dim_params', () => {
    const bytes = modelBytes({
      input: [valueInfo('X', 'f32', ['unk_0', null])],
      output: [valueInfo('Y', 'f32', [null])],
      node: [node('Identity', ['X'], ['Y'])],
    });
    const g = loadModelFromBytes(bytes, { path: 'x.onnx' }).graph;
    expect(g.inputs[0].type.shape).toEqual(['unk_0', 'unk_1']);
    expect(g.outputs[0].type.shape).toEqual(['unk_2']);
  });

  it('refuses negative dims, non-tensor types and sparse initializers', () => {
    const neg = modelBytes({ input: [valueInfo('X', 'f32', [-2])], output: [valueInfo('X', 'f32', [2])] });
    expect(llmccError(() => loadModelFromBytes(neg, { path: 'neg.onnx' })).message).toMatch(/"X".*invalid dimension -2.*neg\.onnx/);
    const seq = modelBytes({
      input: [{ name: 'S', type: { sequenceType: { elemType: { tensorType: { elemType: 1 } } } } }],
      output: [valueInfo('Y', 'f32', [1])],
    });
    expect(llmccError(() => loadModelFromBytes(seq, { path: 'seq.onnx' })).message).toMatch(/"S" has a sequence type/);
    const sparse = modelBytes({
      sparseInitializer: [{ values: { name: 'sp', dataType: 1, dims: [1], floatData: [1] }, indices: { dataType: 7, dims: [1], int64Data: [0] }, dims: [4] }],
      output: [valueInfo('sp', 'f32', [4])],
    });
    expect(llmccError(() => loadModelFromBytes(sparse, { path: 'sp.onnx' })).message).toContain('sparse initializer "sp"');
    const badInit = addModel(rawTensor('W', 'f32', [3], new Uint8Array(8)));
    expect(llmccError(() => loadModelFromBytes(badInit, { path: 'bad.onnx' })).message).toMatch(/initializer "W".*bad\.onnx/);
    const noOpset = modelBytes({ output: [valueInfo('Y', 'f32', [1])] }, { opsetImport: [] });
    expect(llmccError(() => loadModelFromBytes(noOpset, { path: 'o.onnx' })).message).toContain('opset_import');
  });

  it('inlines model-local functions, binding attribute references and defaults', () => {
    // f(x) = Mul(Add(x, x), c) with c = Constant(value_float = alpha); alpha defaults to 3.
    const fnBytes = onnx.FunctionProto.encode({
      name: 'Twice', domain: 'custom', input: ['x'], output: ['y'], attribute: [],
      opsetImport: [{ domain: '', version: 21 }],
      node: [
        node('Add', ['x', 'x'], ['s']),
        node('Constant', [], ['c'], { attribute: [{ name: 'value_float', refAttrName: 'alpha', type: 1 }] }),
        node('Mul', ['s', 'c'], ['y']),
      ],
    }).finish();
    // FunctionProto.attribute_proto (field 11) is newer than onnx-proto's schema: append it by hand.
    const defaultAlpha = onnx.AttributeProto.encode({ name: 'alpha', type: 1, f: 3 }).finish();
    const fnWithDefault = new Uint8Array([...fnBytes, (11 << 3) | 2, defaultAlpha.length, ...defaultAlpha]);
    const graph = onnx.GraphProto.encode({
      input: [valueInfo('X', 'f32', [2])],
      output: [valueInfo('Y', 'f32', [2]), valueInfo('Z', 'f32', [2])],
      node: [
        node('Twice', ['X'], ['Y'], { domain: 'custom', name: 'call1', attribute: [{ name: 'alpha', type: 1, f: 0.5 }] }),
        node('Twice', ['Y'], ['Z'], { domain: 'custom' }),
      ],
    }).finish();
    const head = onnx.ModelProto.encode({
      irVersion: 10, opsetImport: [{ domain: '', version: 21 }, { domain: 'custom', version: 1 }],
    }).finish();
    const bytes = new Uint8Array([
      ...head, ...varint((7 << 3) | 2), ...varint(graph.length), ...graph,
      ...varint((25 << 3) | 2), ...varint(fnWithDefault.length), ...fnWithDefault,
    ]);
    const g = loadModelFromBytes(bytes, { path: 'fn.onnx' }).graph;
    expect(g.nodes.map((n) => [n.name, n.op, n.inputs.join(','), n.outputs.join(',')])).toEqual([
      ['call1/Add_0', 'Add', 'X,X', 'call1/s'],
      ['call1/Constant_1', 'Constant', '', 'call1/c'],
      ['call1/Mul_2', 'Mul', 'call1/s,call1/c', 'Y'],
      ['Twice_1/Add_0', 'Add', 'Y,Y', 'Twice_1/s'],
      ['Twice_1/Constant_1', 'Constant', '', 'Twice_1/c'],
      ['Twice_1/Mul_2', 'Mul', 'Twice_1/s,Twice_1/c', 'Z'],
    ]);
    expect(g.nodes[1].attributes.get('value_float')).toEqual({ kind: 'float', value: 0.5 });
    expect(g.nodes[4].attributes.get('value_float')).toEqual({ kind: 'float', value: 3 });
  });

  it('refuses recursive functions by name', () => {
    const bytes = modelBytes(
      { input: [valueInfo('X', 'f32', [1])], output: [valueInfo('Y', 'f32', [1])], node: [node('Loopy', ['X'], ['Y'], { domain: 'd' })] },
      {
        opsetImport: [{ domain: '', version: 21 }, { domain: 'd', version: 1 }],
        functions: [{ name: 'Loopy', domain: 'd', input: ['a'], output: ['b'], node: [node('Loopy', ['a'], ['b'], { domain: 'd' })] }],
      });
    expect(llmccError(() => loadModelFromBytes(bytes, { path: 'r.onnx' })).message).toContain('d::Loopy calls itself');
    // Recursion through a subgraph of the body.
    const viaIf = modelBytes(
      { input: [valueInfo('X', 'f32', [1])], output: [valueInfo('Y', 'f32', [1])], node: [node('Deep', ['X'], ['Y'], { domain: 'd' })] },
      {
        opsetImport: [{ domain: '', version: 21 }, { domain: 'd', version: 1 }],
        functions: [{
          name: 'Deep', domain: 'd', input: ['a'], output: ['b'], node: [node('If', ['a'], ['b'], {
            attribute: [{
              name: 'then_branch', type: 5,
              g: { output: [valueInfo('r', 'f32', [1])], node: [node('Deep', ['a'], ['r'], { domain: 'd' })] },
            }],
          })],
        }],
      });
    expect(llmccError(() => loadModelFromBytes(viaIf, { path: 'r.onnx' })).message).toContain('d::Deep calls itself');
  });
});

function varint(n: number): number[] {
  const out: number[] = [];
  while (n >= 0x80) {
    out.push((n & 0x7f) | 0x80);
    n >>>= 7;
  }
  out.push(n);
  return out;
}

// ---------------------------------------------------------------------------------------
// Bad files

describe('bad model files', () => {
  const good = addModel();

  it('gives one LlmccError for empty, truncated, garbage and mistyped files', async () => {
    const cases: [string, Uint8Array][] = [['empty', new Uint8Array()]];
    for (let cut = 1; cut < good.length; cut++) cases.push([`truncated at ${cut}`, good.subarray(0, cut)]);
    // A deterministic pseudo-random generator: the same garbage every run.
    let seed = 12345;
    const random = (): number => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    for (let k = 0; k < 200; k++) {
      cases.push([`garbage ${k}`, Uint8Array.from({ length: 1 + Math.floor(random() * 300) }, () => Math.floor(random() * 256))]);
    }
    // Wire-type errors: graph (field 7) as a varint; ir_version (1) as length-delimited; a group.
    cases.push(['graph as varint', new Uint8Array([(7 << 3) | 0, 5])]);
    cases.push(['ir_version as bytes', new Uint8Array([(1 << 3) | 2, 1, 0])]);
    cases.push(['group wire type', new Uint8Array([(7 << 3) | 3, 0])]);
    cases.push(['no graph', onnx.ModelProto.encode({ irVersion: 8, opsetImport: [{ version: 13 }] }).finish()]);
    cases.push(['a tensor file', encodeTensorProto(Tensor.fromNumbers('f32', [2], [1, 2]), 'x')]);
    let accepted = 0;
    for (const [label, bytes] of cases) {
      try {
        loadModelFromBytes(bytes, { path: 'bad.onnx' });
        accepted++;
      } catch (e) {
        if (!(e instanceof LlmccError)) throw new Error(`${label}: ${String(e)}`);
        expect(e.message, label).toContain('bad.onnx');
      }
    }
    // Garbage that happens to be a well-formed model is possible, but must be rare.
    expect(accepted).toBeLessThan(3);
    for (const [label, bytes] of cases.slice(0, 1).concat(cases.slice(-5))) {
      expect(llmccError(() => loadModelFromBytes(bytes, { path: 'bad.onnx' })).message, label).toMatch(/^not a valid ONNX model: /);
    }
    const file = writeModel(path.join(tmp, 'bad'), good.subarray(0, 10));
    expect((await llmccErrorAsync(() => loadModel(file))).message).toContain(file);
    expect((await llmccErrorAsync(() => loadModel(path.join(tmp, 'nope.onnx')))).message).toContain('not found');
  });
});

// ---------------------------------------------------------------------------------------
// External data

describe('external data', () => {
  const values = new Float32Array([10, 20]);

  function setup(dir: string, entries: Record<string, string>, dataFile = 'w.bin', data: Uint8Array = new Uint8Array(values.buffer)): string {
    fs.mkdirSync(dir, { recursive: true });
    if (dataFile) fs.writeFileSync(path.join(dir, dataFile), data);
    return writeModel(dir, addModel(externalTensor('W', 'f32', [2], entries)));
  }

  it('loads weights lazily from an offset inside the model folder', async () => {
    const dir = path.join(tmp, 'ext-good');
    const padded = new Uint8Array(16 + 8);
    padded.set(new Uint8Array(values.buffer), 16);
    fs.mkdirSync(path.join(dir, 'sub'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'sub/w.bin'), padded);
    const file = writeModel(dir, addModel(externalTensor('W', 'f32', [2], { location: 'sub/w.bin', offset: '16', length: '8' })));
    const model = await loadModel(file);
    const w = model.graph.initializers.get('W');
    expect(w?.location).toEqual({ kind: 'external', file: 'sub/w.bin', offset: 16, length: 8 });
    expect(w?.byteLength).toBe(8);
    expect(w?.load().toArray()).toEqual([10, 20]);
  });

  it('refuses locations that leave the model folder, each by name', async () => {
    const root = path.join(tmp, 'ext-escape');
    fs.mkdirSync(root, { recursive: true });
    fs.writeFileSync(path.join(root, 'outside.bin'), new Uint8Array(values.buffer));
    const dotdot = setup(path.join(root, 'm1'), { location: '../outside.bin' }, '');
    expect((await llmccErrorAsync(() => loadModel(dotdot))).message).toMatch(/"\.\.\/outside\.bin" leaves the model's folder.*initializer "W"/);
    const absolute = setup(path.join(root, 'm2'), { location: path.join(root, 'outside.bin') }, '');
    expect((await llmccErrorAsync(() => loadModel(absolute))).message).toMatch(/is an absolute path.*"W"/);
    const dir3 = path.join(root, 'm3');
    const linked = setup(dir3, { location: 'link.bin' }, '');
    fs.symlinkSync(path.join(root, 'outside.bin'), path.join(dir3, 'link.bin'));
    expect((await llmccErrorAsync(() => loadModel(linked))).message).toMatch(/"link\.bin" resolves \(through a symlink\) outside/);
    // A symlink that stays inside the folder is fine.
    const dir4 = path.join(root, 'm4');
    const inside = setup(dir4, { location: 'link.bin' });
    fs.symlinkSync(path.join(dir4, 'w.bin'), path.join(dir4, 'link.bin'));
    expect((await loadModel(inside)).graph.initializers.get('W')?.load().toArray()).toEqual([10, 20]);
  });

  it('refuses missing, short and inconsistent data files at import', async () => {
    const root = path.join(tmp, 'ext-bad');
    const missing = setup(path.join(root, 'a'), { location: 'gone.bin' }, '');
    expect((await llmccErrorAsync(() => loadModel(missing))).message).toMatch(/"gone\.bin" not found.*"W"/);
    const short = setup(path.join(root, 'b'), { location: 'w.bin' }, 'w.bin', new Uint8Array(5));
    expect((await llmccErrorAsync(() => loadModel(short))).message).toMatch(/"w\.bin" has 5 bytes but the tensor needs bytes 0\.\.8.*"W"/);
    const offset = setup(path.join(root, 'c'), { location: 'w.bin', offset: '4' });
    expect((await llmccErrorAsync(() => loadModel(offset))).message).toMatch(/has 8 bytes but the tensor needs bytes 4\.\.12/);
    const length = setup(path.join(root, 'd'), { location: 'w.bin', length: '4' });
    expect((await llmccErrorAsync(() => loadModel(length))).message).toMatch(/declares length 4 but the tensor needs 8/);
    const badOffset = setup(path.join(root, 'e'), { location: 'w.bin', offset: '-1' });
    expect((await llmccErrorAsync(() => loadModel(badOffset))).message).toMatch(/offset "-1"/);
    // In memory without a folder that exists: the location cannot resolve.
    const bytes = addModel(externalTensor('W', 'f32', [2], { location: 'w.bin' }));
    expect(llmccError(() => loadModelFromBytes(bytes, { path: path.join(tmp, 'no-such-dir/m.onnx') })).message).toContain('"W"');
  });

  it('imports a model whose 3 GiB data file is never read, loading one small tensor', async () => {
    const dir = path.join(tmp, 'ext-big');
    fs.mkdirSync(dir, { recursive: true });
    const dataFile = path.join(dir, 'big.bin');
    const size = 3 * 2 ** 30;
    const smallOffset = size - 4096;
    fs.closeSync(fs.openSync(dataFile, 'w'));
    fs.truncateSync(dataFile, size); // sparse: no disk blocks, reads would return zeros
    const fd = fs.openSync(dataFile, 'r+');
    fs.writeSync(fd, new Uint8Array(values.buffer), 0, 8, smallOffset);
    fs.closeSync(fd);
    const hugeCount = (smallOffset / 4); // f32 elements filling everything before the small tensor
    const file = writeModel(dir, modelBytes({
      input: [valueInfo('X', 'f32', [2])],
      output: [valueInfo('Y', 'f32', [2])],
      initializer: [
        externalTensor('Huge', 'f32', [hugeCount], { location: 'big.bin', offset: '0', length: String(smallOffset) }),
        externalTensor('W', 'f32', [2], { location: 'big.bin', offset: String(smallOffset), length: '8' }),
      ],
      node: [node('Add', ['X', 'W'], ['Y'])],
    }));
    const before = process.memoryUsage().rss;
    const model = await loadModel(file);
    expect(model.graph.initializers.get('Huge')?.byteLength).toBe(smallOffset);
    expect(model.graph.initializers.get('W')?.load().toArray()).toEqual([10, 20]);
    const growth = process.memoryUsage().rss - before;
    expect(growth).toBeLessThan(64 * 2 ** 20);
    fs.rmSync(dataFile);
  });
});

// ---------------------------------------------------------------------------------------
// Real files, checked against ONNX Runtime

function findModels(dir: string): string[] {
  const found: string[] = [];
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    if (entry.isDirectory()) found.push(...findModels(p));
    else if (entry.name.endsWith('.onnx')) found.push(p);
  }
  return found.sort();
}

/** ONNX Runtime warns about unused initializers in the expanded tests: errors only. */
const QUIET: ort.InferenceSession.SessionOptions = { logSeverityLevel: 3 };

/** Graph inputs ONNX Runtime reports: those without an initializer default. */
function feedable(g: Graph): string[] {
  return g.inputs.filter((i) => !g.initializers.has(i.name)).map((i) => i.name);
}

async function compareWithOrt(file: string): Promise<void> {
  const model = await loadModel(file);
  let session: ort.InferenceSession;
  try {
    session = await ort.InferenceSession.create(file, QUIET);
  } catch {
    return; // ONNX Runtime cannot load it (op or opset it lacks): nothing to compare
  }
  try {
    expect(feedable(model.graph), file).toEqual([...session.inputNames]);
    expect(model.graph.outputs.map((o) => o.name), file).toEqual([...session.outputNames]);
  } finally {
    await session.release();
  }
}

describe.skipIf(!fs.existsSync(MODELS))('shared models', () => {
  const files = fs.existsSync(MODELS) ? findModels(MODELS) : [];
  it('finds the models', () => {
    expect(files.length).toBeGreaterThanOrEqual(7);
  });
  for (const file of files) {
    it(`imports ${path.relative(MODELS, file)} and loads every weight`, async () => {
      await compareWithOrt(file);
      const model = await loadModel(file);
      for (const w of model.graph.initializers.values()) {
        const t = w.load();
        expect(t.shape).toEqual(w.shape);
        expect(t.dtype).toBe(w.dtype);
      }
      // Reference data decodes too.
      for (const set of fs.readdirSync(path.dirname(file)).filter((d) => d.startsWith('test_data_set_'))) {
        for (const pb of fs.readdirSync(path.join(path.dirname(file), set))) {
          expect(readTensorFile(path.join(path.dirname(file), set, pb)).tensor.size).toBeGreaterThanOrEqual(0);
        }
      }
    });
  }
});

describe.skipIf(!fs.existsSync(CONFORMANCE))('conformance models', () => {
  const tests = fs.existsSync(CONFORMANCE)
    ? fs.readdirSync(CONFORMANCE).filter((t) => fs.existsSync(path.join(CONFORMANCE, t, 'model.onnx'))).sort()
    : [];
  // Every 20th test (about 50), plus tests exercising unusual storage and subgraphs.
  const sample = new Set(tests.filter((_, i) => i % 20 === 0));
  for (const t of ['test_dequantizelinear_int4', 'test_dequantizelinear_uint2', 'test_dequantizelinear_float4e2m1',
    'test_dequantizelinear_e4m3fn', 'test_cast_e8m0_FLOAT8E8M0_to_FLOAT', 'test_range_bfloat16_type_positive_delta', 'test_if',
    'test_loop11', 'test_constant']) {
    if (tests.includes(t)) sample.add(t);
  }
  it('found conformance tests', () => {
    expect(sample.size).toBeGreaterThan(40);
  });
  for (const t of sample) {
    it(`imports ${t} like ONNX Runtime`, async () => {
      const file = path.join(CONFORMANCE, t, 'model.onnx');
      try {
        await compareWithOrt(file);
      } catch (e) {
        // Untyped subgraph values are the one known gap of the IR (see load.ts).
        if (e instanceof LlmccError && /has no type \(untyped subgraph/.test(e.message)) return;
        throw e;
      }
      const dir = path.join(CONFORMANCE, t, 'test_data_set_0');
      if (fs.existsSync(dir)) for (const pb of fs.readdirSync(dir)) readTensorFile(path.join(dir, pb));
    });
  }

  it('decodes values ONNX Runtime agrees with (Add/Mul float and int tests)', async () => {
    for (const t of ['test_add', 'test_add_bcast', 'test_mul', 'test_add_uint64', 'test_add_int16']) {
      const dir = path.join(CONFORMANCE, t);
      if (!fs.existsSync(dir)) continue;
      const model = await loadModel(path.join(dir, 'model.onnx'));
      const session = await ort.InferenceSession.create(path.join(dir, 'model.onnx'), QUIET);
      const feeds: Record<string, ort.Tensor> = {};
      model.graph.inputs.forEach((input, i) => {
        const { tensor } = readTensorFile(path.join(dir, 'test_data_set_0', `input_${i}.pb`));
        feeds[input.name] = toOrt(tensor);
      });
      const result = await session.run(feeds);
      const expected = readTensorFile(path.join(dir, 'test_data_set_0', 'output_0.pb')).tensor;
      const got = Array.from(result[session.outputNames[0]].data as ArrayLike<number | bigint>, Number);
      const want = Array.from(expected.numbers());
      got.forEach((v, i) => expect(Math.abs(v - want[i])).toBeLessThanOrEqual(1e-5 * Math.max(1, Math.abs(want[i]))));
      await session.release();
    }
  });
});

function toOrt(t: Tensor): ort.Tensor {
  const dims = [...t.shape];
  switch (t.dtype) {
    case 'f32': return new ort.Tensor('float32', t.data as Float32Array, dims);
    case 'i16': return new ort.Tensor('int16', t.data as Int16Array, dims);
    case 'u64': return new ort.Tensor('uint64', BigUint64Array.from(t.numbers(), (x) => BigInt(x)), dims);
    case 'i64': return new ort.Tensor('int64', BigInt64Array.from(t.numbers(), (x) => BigInt(x)), dims);
    default: throw new Error(`toOrt: ${t.dtype} not needed here`);
  }
}
