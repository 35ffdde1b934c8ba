import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Attribute, Graph, Model, Node, Weight } from '../ir/graph.js';
import { LlmccError } from '../ir/errors.js';
import { Tensor } from '../ir/tensor.js';
import { encodeTensorBytes, decodeTensorBytes } from '../ir/text/bytes.js';
import { parseModel } from '../ir/text/parse.js';
import { printFloat, printModel } from '../ir/text/print.js';
import { verifyModel } from '../ir/verify.js';
import { loadModel } from '../src/onnx/load.js';
import { CONFORMANCE_DIR, MODELS_DIR, modelDirs } from './helpers/paths.js';

function inlineWeight(name: string, tensor: Tensor): Weight {
  return { name, dtype: tensor.dtype, shape: [...tensor.shape], byteLength: 0, location: { kind: 'inline' }, load: () => tensor };
}

function node(op: string, inputs: string[], outputs: string[], attributes: Record<string, Attribute> = {}, name = op, domain = ''): Node {
  return { name, domain, op, inputs, outputs, attributes: new Map(Object.entries(attributes)) };
}

function roundTrip(model: Model, baseDir?: string): { text: string; parsed: Model } {
  const text = printModel(model);
  const parsed = parseModel(text, { baseDir });
  expect(printModel(parsed)).toBe(text);
  return { text, parsed };
}

function parseError(text: string): LlmccError {
  try {
    parseModel(text);
  } catch (error) {
    if (error instanceof LlmccError) return error;
    throw error;
  }
  throw new Error('expected a parse error');
}

/** A graph using every attribute kind, odd names, symbolic dims and omitted values. */
function everythingModel(): Model {
  const body: Graph = {
    name: 'body',
    inputs: [{ name: 'i', type: { dtype: 'i64', shape: [] } }],
    outputs: [{ name: 'o', type: { dtype: 'i64', shape: [] } }],
    nodes: [node('Identity', ['i'], ['o'], {}, 'inner')],
    initializers: new Map(),
    valueInfo: new Map([['o', { dtype: 'i64', shape: [] }]]),
  };
  const attributes: Record<string, Attribute> = {
    int: { kind: 'int', value: -7 },
    big: { kind: 'int', value: 2 ** 60 },
    float: { kind: 'float', value: Math.fround(0.1) },
    whole: { kind: 'float', value: 1 },
    tiny: { kind: 'float', value: Math.fround(1e-5) },
    negzero: { kind: 'float', value: -0 },
    string: { kind: 'string', value: 'quote " backslash \\ newline \n tab \t unicode é \u0001' },
    tensor: { kind: 'tensor', value: Tensor.fromNumbers('f16', [2, 2], [0.1, -2, Infinity, NaN]) },
    big_tensor: { kind: 'tensor', value: Tensor.fromNumbers('i4', [100], Array.from({ length: 100 }, (_, i) => (i % 16) - 8)) },
    strings_tensor: { kind: 'tensor', value: Tensor.strings([2], ['a', 'b"c']) },
    graph: { kind: 'graph', value: body },
    ints: { kind: 'ints', value: [1, -2, 3] },
    floats: { kind: 'floats', value: [1, 2.5, -Infinity].map(Math.fround) },
    strings: { kind: 'strings', value: ['x', ''] },
    tensors: { kind: 'tensors', value: [Tensor.scalar('i64', 5), Tensor.fromNumbers('bool', [3], [1, 0, 1])] },
    graphs: { kind: 'graphs', value: [body, body] },
    empty_ints: { kind: 'ints', value: [] },
    empty_floats: { kind: 'floats', value: [] },
    empty_strings: { kind: 'strings', value: [] },
    empty_graphs: { kind: 'graphs', value: [] },
    'odd name': { kind: 'int', value: 0 },
  };
  const graph: Graph = {
    name: 'main "graph"',
    inputs: [
      { name: 'x', type: { dtype: 'f32', shape: ['batch', 'past_sequence_length+sequence_length', 16] } },
      { name: 'onnx::Weird name', type: { dtype: 'f16', shape: undefined } },
      { name: 'scalar', type: { dtype: 'i64', shape: [] } },
      { name: 'quoted dims', type: { dtype: 'u8', shape: ['16', 'a b', '*', '', -1] } },
    ],
    outputs: [{ name: 'y', type: { dtype: 'f32', shape: ['(a+b)*c', 'unk_3', 4] } }],
    nodes: [
      node('Custom', ['x', '', 'onnx::Weird name', ''], ['y', '', 'z'], attributes, 'custom/node "1"', 'com.example'),
      node('Op-with-dash', [''], [''], {}, 'lone', 'weird domain!'),
      node('Sink', [], [], {}, 'nothing'),
    ],
    initializers: new Map([
      ['w', inlineWeight('w', Tensor.fromNumbers('bf16', [2, 3], [1, 2, 3, -4.5, 0, 1e-3]))],
      ['big', inlineWeight('big', Tensor.fromNumbers('f32', [10, 10], Array.from({ length: 100 }, (_, i) => i / 7)))],
      ['s', inlineWeight('s', Tensor.strings([1], ['hello']))],
      ['nibbles', inlineWeight('nibbles', Tensor.fromNumbers('u4', [3], [1, 15, 7]))],
    ]),
    valueInfo: new Map([
      ['y', { dtype: 'f32', shape: ['(a+b)*c', 'unk_3', 4] }],
      ['z', { dtype: 'f32', shape: undefined }],
      ['stale', { dtype: 'i8', shape: [1] }],
      ['big', { dtype: 'f32', shape: [10, 10], quant: { bits: 2, ternary: true, groupSize: 64, symmetric: true, scaleDtype: 'f16', layout: { kind: 'bitplanes', g: 4, rowsPerTile: 8 } } }],
    ]),
  };
  return { irVersion: 9, producer: 'test "producer"', opsets: new Map([['', 21], ['com.example', 3]]), graph };
}

describe('text IR', () => {
  it('round-trips every kind of attribute, name, dim and weight', () => {
    const model = everythingModel();
    const { text, parsed } = roundTrip(model);
    expect(text.startsWith('llmcc.ir 1\nmodel ir_version=9 producer="test \\"producer\\"" opsets={"": 21, "com.example": 3}\n')).toBe(true);

    const original = model.graph.nodes[0];
    const custom = parsed.graph.nodes[0];
    expect(custom.name).toBe(original.name);
    expect(custom.domain).toBe('com.example');
    expect(custom.inputs).toEqual(original.inputs);
    expect(custom.outputs).toEqual(original.outputs);
    for (const [name, attr] of original.attributes) {
      const back = custom.attributes.get(name) as Attribute;
      expect(back.kind, name).toBe(attr.kind);
      if (attr.kind === 'tensor') {
        const t = back.value as Tensor;
        expect([t.dtype, t.shape], name).toEqual([attr.value.dtype, attr.value.shape]);
        expect(Array.from(t.data as ArrayLike<unknown>), name).toEqual(Array.from(attr.value.data as ArrayLike<unknown>));
      } else if (attr.kind !== 'graph' && attr.kind !== 'graphs' && attr.kind !== 'tensors') {
        expect(back.value, name).toEqual(attr.value);
      }
    }
    expect(Object.is((custom.attributes.get('negzero') as { value: number }).value, -0)).toBe(true);
    expect(parsed.graph.nodes[1]).toMatchObject({ domain: 'weird domain!', op: 'Op-with-dash', inputs: [''], outputs: [''] });
    expect(parsed.graph.nodes[2]).toMatchObject({ op: 'Sink', inputs: [], outputs: [] });
    expect(parsed.graph.inputs.map((i) => i.type)).toEqual(model.graph.inputs.map((i) => i.type));
    expect(parsed.graph.valueInfo.get('stale')).toEqual({ dtype: 'i8', shape: [1] });
    expect(parsed.graph.valueInfo.get('big')).toEqual(model.graph.valueInfo.get('big'));

    const w = parsed.graph.initializers.get('w') as Weight;
    expect(Array.from(w.load().numbers())).toEqual(Array.from(model.graph.initializers.get('w')!.load().numbers()));
    expect(parsed.graph.initializers.get('s')!.load().data).toEqual(['hello']);
    expect(Array.from(parsed.graph.initializers.get('nibbles')!.load().numbers())).toEqual([1, 15, 7]);
  });

  it('elides large weights with a digest, and an elided weight says so when loaded', () => {
    const { text, parsed } = roundTrip(everythingModel());
    expect(text).toMatch(/weight %big : f32\[10, 10\] = elided<"sha256:[0-9a-f]{64}">/);
    const big = parsed.graph.initializers.get('big') as Weight;
    expect(big.byteLength).toBe(400);
    expect(() => big.load()).toThrow(/was elided from the text IR/);
    expect(() => big.load()).toThrow(LlmccError);
  });

  it('inlines everything with inlineLimit: Infinity', () => {
    const model = everythingModel();
    const text = printModel(model, { inlineLimit: Infinity });
    expect(text).toContain('weight %big : f32[10, 10] = dense<"0x');
    const parsed = parseModel(text);
    expect(printModel(parsed, { inlineLimit: Infinity })).toBe(text);
    expect(Array.from(parsed.graph.initializers.get('big')!.load().numbers()))
      .toEqual(Array.from(model.graph.initializers.get('big')!.load().numbers()));
  });

  it('reads external weights lazily, relative to baseDir', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'llmcc-text-'));
    const values = Tensor.fromNumbers('f16', [8, 16], Array.from({ length: 128 }, (_, i) => i / 3));
    fs.writeFileSync(path.join(dir, 'w.bin'), Buffer.concat([Buffer.alloc(16), encodeTensorBytes(values)]));
    const text = [
      'llmcc.ir 1',
      'model ir_version=8 producer="" opsets={"": 17}',
      'graph "g" {',
      '  input %x : f16[8, 16]',
      '  weight %w : f16[8, 16] = external<"w.bin", offset=16, length=256>',
      '  %y : f16[8, 16] = Add(%x, %w) loc("add")',
      '  output %y : f16[8, 16]',
      '}',
      '',
    ].join('\n');
    const parsed = parseModel(text, { baseDir: dir });
    expect(printModel(parsed)).toBe(text);
    const w = parsed.graph.initializers.get('w') as Weight;
    expect(w.location).toEqual({ kind: 'external', file: 'w.bin', offset: 16, length: 256 });
    expect(Array.from(w.load().numbers())).toEqual(Array.from(values.numbers()));
    expect(() => parseModel(text, { baseDir: os.tmpdir() }).graph.initializers.get('w')!.load()).toThrow(LlmccError);
  });

  it('prints floats that read back to the same bits', () => {
    expect(printFloat(Math.fround(0.1), 'f32')).toBe('0.1');
    expect(printFloat(0.1, 'f64')).toBe('0.1');
    expect(printFloat(3, 'f32')).toBe('3.0');
    expect(printFloat(-0, 'f32')).toBe('-0.0');
    expect(printFloat(NaN, 'f16')).toBe('nan');
    expect(printFloat(-Infinity, 'f32')).toBe('-inf');
    for (const x of [Math.fround(1 / 3), Math.fround(1e-40), Math.fround(3.4e38), Math.fround(-123.456)]) {
      expect(Math.fround(Number(printFloat(x, 'f32')))).toBe(x);
    }
  });

  it('encodes and decodes every dtype', () => {
    const cases: [Tensor, number][] = [
      [Tensor.fromNumbers('i2', [5], [-2, -1, 0, 1, 1]), 2],
      [Tensor.fromNumbers('f4e2m1', [3], [0.5, -6, 3]), 2],
      [Tensor.fromNumbers('f8e4m3fn', [2], [448, -0.5]), 2],
      [Tensor.fromNumbers('i64', [2], [-(2 ** 40), 7]), 16],
      [Tensor.fromNumbers('i64', [2], [2 ** 63, -(2 ** 63)]), 16], // INT64_MAX/MIN as numbers: no wrap-around
      [Tensor.fromNumbers('bool', [3], [1, 0, 1]), 3],
    ];
    for (const [t, bytes] of cases) {
      const encoded = encodeTensorBytes(t);
      expect(encoded.length, t.dtype).toBe(bytes);
      expect(Array.from(decodeTensorBytes(t.dtype, t.shape, encoded).numbers()), t.dtype).toEqual(Array.from(t.numbers()));
    }
  });

  it('reports parse errors with line and column', () => {
    const header = 'llmcc.ir 1\nmodel ir_version=8 producer="" opsets={"": 17}\n';
    expect(parseError(`${header}graph "g" {\n  input %x : f99[2]\n}\n`).message).toBe("unknown dtype 'f99', line 4:14");
    expect(parseError(`${header}graph "g" {\n  %y = Relu(%x loc("r")\n}\n`).message).toMatch(/^expected '\)', found 'loc\("r"\)', line 4:16$/);
    expect(parseError(`${header}graph "g" {\n  input %x : f32[2]\n`).message).toMatch(/not closed.*line 5:1$/);
    expect(parseError('llmcc.ir 2\n').message).toMatch(/unsupported text IR version 2/);
    expect(parseError(`${header}graph "g" {\n  %y = Relu(%x) {a = []} loc("r")\n}\n`).message).toMatch(/empty list needs its kind.*line 4:22$/);
    expect(parseError(`${header}graph "g" {\n  weight %w : f32[2] = dense<[1.0]>\n}\n`).message).toMatch(/needs 2 elements, got 1, line 4:30$/);
    expect(parseError(`${header}graph "g" {}\nextra`).message).toMatch(/unexpected text after the graph, line 4:1$/);
    expect(() => parseModel(`${header}graph "g" {\n  input %x : f32["unterminated]\n}`, { file: 'm.ir' })).toThrow(/unterminated string, m.ir:4:18$/);
  });

  it('accepts hand-written IR with comments and loose spacing', () => {
    const parsed = parseModel([
      'llmcc.ir 1 // header',
      'model opsets={"": 17}',
      'graph "g" {',
      '  input %x:f32[n,2]',
      '  %y = Relu(%x)   // no loc: a name is made up',
      '  output %y:f32[n,2]',
      '}',
    ].join('\n'));
    expect(parsed.graph.nodes[0]).toMatchObject({ name: 'Relu_0', op: 'Relu', inputs: ['x'], outputs: ['y'] });
    verifyModel(parsed);
    expect(parsed.graph.valueInfo.get('y')).toEqual({ dtype: 'f32', shape: ['n', 2] });
  });

  it('round-trips two plane indices per byte on a bitplanes layout; without per_byte it is one', () => {
    const quant = (perByte?: 2) => ({
      bits: 2 as const, ternary: false, groupSize: 128, symmetric: true, scaleDtype: 'f32' as const,
      layout: { kind: 'bitplanes' as const, g: 4, rowsPerTile: 16, ...(perByte ? { indicesPerByte: perByte } : {}) },
    });
    const model = everythingModel();
    model.graph.valueInfo.set('stale', { dtype: 'u8', shape: [2, 32, 16], quant: quant(2) });
    model.graph.valueInfo.set('z', { dtype: 'u8', shape: [2, 32, 32], quant: quant() });
    const { text, parsed } = roundTrip(model);
    expect(text).toContain('layout=bitplanes(g=4, rows=16, per_byte=2)');
    expect(text).toContain('layout=bitplanes(g=4, rows=16)>');
    expect(parsed.graph.valueInfo.get('stale')?.quant?.layout).toEqual({ kind: 'bitplanes', g: 4, rowsPerTile: 16, indicesPerByte: 2 });
    expect(parsed.graph.valueInfo.get('z')?.quant?.layout).toEqual({ kind: 'bitplanes', g: 4, rowsPerTile: 16 });
    expect(() => parseModel(text.replace('per_byte=2', 'per_byte=3'))).toThrow(/per_byte must be 1 or 2/);
  });
});

describe('text IR on real models', () => {
  for (const dir of modelDirs(MODELS_DIR)) {
    it(`round-trips ${path.relative(MODELS_DIR, dir)}, before and after verification`, async () => {
      const model = await loadModel(path.join(dir, 'model.onnx'));
      roundTrip(model, dir);
      verifyModel(model);
      const { parsed } = roundTrip(model, dir);
      // The parsed model verifies to the same text: types and symbolic dims survive.
      const again = printModel(parsed);
      verifyModel(parsed);
      expect(printModel(parsed)).toBe(again);
    });
  }

  it('round-trips every conformance model', async () => {
    const dirs = fs.readdirSync(CONFORMANCE_DIR).filter((d) => fs.existsSync(path.join(CONFORMANCE_DIR, d, 'model.onnx')));
    expect(dirs.length).toBeGreaterThan(900);
    let loaded = 0;
    for (const d of dirs) {
      let model: Model;
      try {
        model = await loadModel(path.join(CONFORMANCE_DIR, d, 'model.onnx'));
      } catch (error) {
        if (error instanceof LlmccError) continue; // models the importer refuses are its tests' business
        throw error;
      }
      loaded++;
      const text = printModel(model);
      expect(printModel(parseModel(text)), d).toBe(text);
    }
    expect(loaded).toBeGreaterThan(900);
  });
});
