/**
 * Writes a DecoderGraph as model.onnx, making each weight from its seeded recipe in chunks.
 * With external data the chunks go straight to model.onnx.data, so peak memory is one
 * chunk, not one model (a 1B-parameter f32 model is 4.4 GB on disk).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { LlmccError } from '../../ir/errors.js';
import { onnx, type TensorProto } from '../../src/onnx/proto.js';
import type { LlamaConfig } from './config.js';
import { onnxFloatType, type DecoderGraph, type ModelDType, type WeightSpec } from './graph.js';
import { NBitsPacker, nbitsParameters } from './nbits.js';

/** Elements made and written at a time. */
const CHUNK = 1 << 20;
/** protobuf's hard limit on one message: larger models need external data. */
const PROTOBUF_LIMIT = 2 ** 31 - 1;

/** mulberry32: a fast, well-mixed 32-bit generator, uniform in (0, 1). */
function uniform(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((((t ^ (t >>> 14)) >>> 0) + 0.5) / 4294967296);
  };
}

function count(dims: number[]): number {
  return dims.reduce((a, b) => a * b, 1);
}

/** The weight's values in row-major order, CHUNK at a time (as f32; the writer narrows). */
export function* weightChunks(spec: WeightSpec, chunk = CHUNK): Generator<Float32Array> {
  const total = count(spec.dims);
  const init = spec.init;
  let nextNormal: () => number;
  if (init.kind === 'normal') {
    // Box-Muller, both outputs used.
    const u = uniform(init.seed);
    let spare: number | undefined;
    nextNormal = () => {
      if (spare !== undefined) { const s = spare; spare = undefined; return s; }
      const r = Math.sqrt(-2 * Math.log(u()));
      const theta = 2 * Math.PI * u();
      spare = r * Math.sin(theta) * init.std;
      return r * Math.cos(theta) * init.std;
    };
  } else if (init.kind === 'ones') {
    nextNormal = () => 1;
  } else if (init.kind === 'nbits') {
    throw new LlmccError(`'${spec.name}' is made whole by NBitsPacker, not in chunks`);
  } else {
    // HF LlamaRotaryEmbedding in f32: inv_freq[j] = theta^(-2j/d); angle = p·inv_freq[j].
    const half = init.headDim / 2;
    const width = init.full ? init.headDim : half;
    const invFreq = Array.from({ length: half }, (_, j) => Math.fround(1 / Math.fround(init.theta ** ((2 * j) / init.headDim))));
    const f = init.fn === 'cos' ? Math.cos : Math.sin;
    let index = 0;
    nextNormal = () => {
      const p = Math.floor(index / width);
      const j = (index % width) % half;
      index++;
      return f(Math.fround(p * invFreq[j]));
    };
  }
  for (let start = 0; start < total; start += chunk) {
    const out = new Float32Array(Math.min(chunk, total - start));
    for (let i = 0; i < out.length; i++) out[i] = nextNormal();
    yield out;
  }
}

/**
 * f32 bits → f16 bits, round to nearest even: the same result as ir/float's
 * numberToF16Bits for f32 inputs, by integer ops only (it runs once per weight element).
 */
export function f32BitsToF16Bits(x: number): number {
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    // Subnormal half (or zero): shift the full significand down, rounding the dropped bits.
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    const half = 1 << (shift - 1);
    let r = mant >>> shift;
    const rest = mant & ((1 << shift) - 1);
    if (rest > half || (rest === half && (r & 1) === 1)) r++;
    return sign | r;
  }
  // A carry out of the mantissa correctly bumps the exponent (up to infinity).
  let r = (e << 10) | (mant >>> 13);
  const rest = mant & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && (r & 1) === 1)) r++;
  return sign | r;
}

function encodeChunk(values: Float32Array, dtype: ModelDType): Uint8Array {
  if (dtype === 'f32') return new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
  const words = new Uint32Array(values.buffer, values.byteOffset, values.length);
  const bits = new Uint16Array(values.length);
  for (let i = 0; i < values.length; i++) bits[i] = f32BitsToF16Bits(words[i]);
  return new Uint8Array(bits.buffer);
}

export interface WriteOptions {
  dtype: ModelDType;
  externalData: boolean;
  /** Recorded in the model's metadata_props (and config.json) for the record. */
  config: LlamaConfig;
  flavour: string;
  seed: number;
}

export interface WrittenModel {
  modelPath: string;
  dataPath?: string;
  modelBytes: number;
  dataBytes: number;
  parameters: number;
}

/** Writes `<dir>/model.onnx` (+ `model.onnx.data`) and returns where and how big. */
export function writeModel(dir: string, graph: DecoderGraph, options: WriteOptions): WrittenModel {
  fs.mkdirSync(dir, { recursive: true });
  const dataType = onnxFloatType(options.dtype);
  const bytesPer = options.dtype === 'f16' ? 2 : 4;
  const isCodes = (w: WeightSpec): boolean => w.init.kind === 'nbits' && w.init.part === 'codes';
  const weightBytes = graph.weights.reduce((sum, w) => sum + count(w.dims) * (isCodes(w) ? 1 : bytesPer), 0);
  const packer = new NBitsPacker(options.dtype, (values) => encodeChunk(values, options.dtype));
  /** The weight's stored bytes, a chunk at a time (a MatMulNBits weight in one piece). */
  const chunksOf = function* (spec: WeightSpec): Generator<Uint8Array> {
    if (spec.init.kind === 'nbits') {
      const source = spec.init.source;
      yield packer.bytes(spec.init, () => {
        const all = new Float32Array(count(source.dims));
        let at = 0;
        for (const values of weightChunks(source)) { all.set(values, at); at += values.length; }
        return all;
      });
      return;
    }
    for (const values of weightChunks(spec)) yield encodeChunk(values, options.dtype);
  };
  if (!options.externalData && weightBytes > PROTOBUF_LIMIT - (1 << 20)) {
    throw new LlmccError(`weights take ${(weightBytes / 2 ** 30).toFixed(2)} GiB, over protobuf's 2 GiB limit: pass --external-data`, dir);
  }
  const modelPath = path.join(dir, 'model.onnx');
  const dataName = 'model.onnx.data';
  const dataPath = path.join(dir, dataName);
  const initializers: TensorProto[] = [...graph.constants];
  let offset = 0;
  const fd = options.externalData ? fs.openSync(dataPath, 'w') : undefined;
  try {
    for (const spec of graph.weights) {
      const proto: TensorProto = { name: spec.name, dims: spec.dims, dataType: isCodes(spec) ? onnx.TensorProto.DataType.UINT8 : dataType };
      if (fd !== undefined) {
        const start = offset;
        for (const bytes of chunksOf(spec)) {
          fs.writeSync(fd, bytes, 0, bytes.length, offset);
          offset += bytes.length;
        }
        proto.dataLocation = onnx.TensorProto.DataLocation.EXTERNAL;
        proto.externalData = [
          { key: 'location', value: dataName },
          { key: 'offset', value: String(start) },
          { key: 'length', value: String(offset - start) },
        ];
      } else {
        const raw = new Uint8Array(count(spec.dims) * (isCodes(spec) ? 1 : bytesPer));
        let at = 0;
        for (const bytes of chunksOf(spec)) {
          raw.set(bytes, at);
          at += bytes.length;
        }
        proto.rawData = raw;
      }
      initializers.push(proto);
    }
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
  if (fd === undefined && fs.existsSync(dataPath)) fs.rmSync(dataPath);
  const parameters = graph.weights.reduce((sum, w) => sum + (w.init.kind === 'nbits' ? nbitsParameters(w.init) : w.parameter ? count(w.dims) : 0), 0);
  const record = { ...options.config, ops: options.flavour, dtype: options.dtype, seed: options.seed, parameters };
  const bytes = onnx.ModelProto.encode({
    irVersion: 10,
    producerName: 'llmcc examples/llama-gen',
    producerVersion: '0.1.0',
    opsetImport: graph.opsets,
    metadataProps: [{ key: 'llama_gen_config', value: JSON.stringify(record) }],
    graph: {
      name: 'llama_decoder',
      node: graph.nodes,
      input: graph.inputs,
      output: graph.outputs,
      initializer: initializers,
    },
  }).finish();
  fs.writeFileSync(modelPath, bytes);
  fs.writeFileSync(path.join(dir, 'config.json'), `${JSON.stringify(record, null, 2)}\n`);
  return {
    modelPath,
    ...(fd !== undefined ? { dataPath } : {}),
    modelBytes: bytes.length,
    dataBytes: offset,
    parameters,
  };
}
