/**
 * Writes examples/tiny-mlp: a small transformer-style MLP block (LayerNorm → MatMul+bias →
 * Gelu → MatMul → residual Add → Softmax) with seeded random weights, and a test data set
 * whose expected output comes from ONNX Runtime. Run: npx tsx examples/tiny-mlp/make.ts
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import onnxProto from 'onnx-proto';
import ort from 'onnxruntime-node';

const { onnx } = onnxProto;
const here = path.dirname(fileURLToPath(import.meta.url));
const HIDDEN = 32;
const FFN = 64;

/** Deterministic uniform values in [-scale, scale] (mulberry32). */
function random(count: number, seed: number, scale: number): Float32Array {
  let s = seed >>> 0;
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    out[i] = ((((t ^ (t >>> 14)) >>> 0) / 4294967296) * 2 - 1) * scale;
  }
  return out;
}

function initializer(name: string, dims: number[], values: Float32Array): onnx.ITensorProto {
  return { name, dims, dataType: onnx.TensorProto.DataType.FLOAT, rawData: new Uint8Array(values.buffer) };
}

function valueInfo(name: string, dims: (number | string)[]): onnx.IValueInfoProto {
  return {
    name,
    type: {
      tensorType: {
        elemType: onnx.TensorProto.DataType.FLOAT,
        shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) },
      },
    },
  };
}

const graph: onnx.IGraphProto = {
  name: 'tiny_mlp',
  input: [valueInfo('x', ['batch', 'sequence', HIDDEN])],
  output: [valueInfo('probs', ['batch', 'sequence', HIDDEN])],
  initializer: [
    initializer('ln_scale', [HIDDEN], random(HIDDEN, 1, 1)),
    initializer('ln_bias', [HIDDEN], random(HIDDEN, 2, 0.1)),
    initializer('w_up', [HIDDEN, FFN], random(HIDDEN * FFN, 3, 0.3)),
    initializer('b_up', [FFN], random(FFN, 4, 0.1)),
    initializer('w_down', [FFN, HIDDEN], random(FFN * HIDDEN, 5, 0.3)),
  ],
  node: [
    { name: 'norm', opType: 'LayerNormalization', input: ['x', 'ln_scale', 'ln_bias'], output: ['normed'],
      attribute: [{ name: 'axis', type: onnx.AttributeProto.AttributeType.INT, i: -1 },
        { name: 'epsilon', type: onnx.AttributeProto.AttributeType.FLOAT, f: 1e-5 }] },
    { name: 'up', opType: 'MatMul', input: ['normed', 'w_up'], output: ['up_out'] },
    { name: 'up_bias', opType: 'Add', input: ['up_out', 'b_up'], output: ['up_biased'] },
    { name: 'act', opType: 'Gelu', input: ['up_biased'], output: ['activated'] },
    { name: 'down', opType: 'MatMul', input: ['activated', 'w_down'], output: ['down_out'] },
    { name: 'residual', opType: 'Add', input: ['x', 'down_out'], output: ['summed'] },
    { name: 'softmax', opType: 'Softmax', input: ['summed'], output: ['probs'],
      attribute: [{ name: 'axis', type: onnx.AttributeProto.AttributeType.INT, i: -1 }] },
  ],
};

const model = onnx.ModelProto.encode({
  irVersion: 10,
  producerName: 'llmcc examples/tiny-mlp',
  opsetImport: [{ domain: '', version: 20 }],
  graph,
}).finish();

const dir = path.join(here);
fs.writeFileSync(path.join(dir, 'model.onnx'), model);

const shape = [1, 4, HIDDEN];
const x = random(4 * HIDDEN, 6, 1);
const session = await ort.InferenceSession.create(model);
const result = await session.run({ x: new ort.Tensor('float32', x, shape) });
const probs = result.probs.data as Float32Array;

const dataDir = path.join(dir, 'test_data_set_0');
fs.mkdirSync(dataDir, { recursive: true });
const tensorFile = (name: string, values: Float32Array): Uint8Array =>
  onnx.TensorProto.encode({ name, dims: shape, dataType: onnx.TensorProto.DataType.FLOAT, rawData: new Uint8Array(values.buffer, values.byteOffset, values.byteLength) }).finish();
fs.writeFileSync(path.join(dataDir, 'input_0.pb'), tensorFile('x', x));
fs.writeFileSync(path.join(dataDir, 'output_0.pb'), tensorFile('probs', probs));
console.log(`wrote ${path.relative(process.cwd(), dir)} (model ${model.length} bytes)`);
