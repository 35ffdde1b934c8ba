import { onnx } from '../onnx/proto.js';
import { randomFill, type GemvShape, type Timed } from './common.js';

/**
 * ONNX Runtime sides of the benchmark: single-node models (f32 MatMul, or com.microsoft
 * MatMulNBits with block_size = the group size and no zero points) built in memory with
 * distinct random weights per layer (ORT would merge identical initializers), run with one
 * intra-op thread on onnxruntime-node (CPU EP) or onnxruntime-web (wasm EP, in Node).
 */

export type OrtKind = { op: 'matmul' } | { op: 'nbits'; bits: 2 | 4; accuracyLevel: number };

const FLOAT = 1;
const UINT8 = 2;

function valueInfo(name: string, dims: number[]) {
  return { name, type: { tensorType: { elemType: FLOAT, shape: { dim: dims.map((d) => ({ dimValue: d })) } } } };
}

function initializer(name: string, dataType: number, dims: number[], data: ArrayBufferView) {
  return { name, dataType, dims, rawData: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) };
}

/** Serialized model bytes of one layer with weights from `seed`. */
export function ortModel(shape: GemvShape, kind: OrtKind, seed: number): Uint8Array {
  const { M, K, N, groupSize } = shape;
  const inputs = [valueInfo('A', [M, K])];
  const outputs = [valueInfo('Y', [M, N])];
  let node;
  let inits;
  if (kind.op === 'matmul') {
    const w = randomFill(new Float32Array(K * N), seed, (u) => (u - 0.5) * 0.05);
    inits = [initializer('B', FLOAT, [K, N], w)];
    node = { opType: 'MatMul', input: ['A', 'B'], output: ['Y'], name: 'mm' };
  } else {
    const blocks = K / groupSize;
    const blobBytes = (groupSize * kind.bits) / 8;
    const packed = randomFill(new Uint8Array(N * blocks * blobBytes), seed, (u) => Math.floor(u * 256));
    const scales = randomFill(new Float32Array(N * blocks), seed + 1, (u) => 0.01 + u * 0.02);
    inits = [initializer('B', UINT8, [N, blocks, blobBytes], packed), initializer('scales', FLOAT, [N, blocks], scales)];
    const int = (name: string, i: number) => ({ name, type: onnx.AttributeProto.AttributeType.INT, i });
    node = {
      opType: 'MatMulNBits', domain: 'com.microsoft', input: ['A', 'B', 'scales'], output: ['Y'], name: 'mm',
      attribute: [int('K', K), int('N', N), int('bits', kind.bits), int('block_size', groupSize), int('accuracy_level', kind.accuracyLevel)],
    };
  }
  const model = {
    irVersion: 9,
    opsetImport: [{ domain: '', version: 21 }, { domain: 'com.microsoft', version: 1 }],
    producerName: 'llmcc-bench',
    graph: { name: 'layer', node: [node], input: inputs, output: outputs, initializer: inits },
  };
  return onnx.ModelProto.encode(onnx.ModelProto.fromObject(model)).finish();
}

interface OrtModule {
  InferenceSession: { create(bytes: Uint8Array, options: Record<string, unknown>): Promise<OrtSession> };
  Tensor: new (type: string, data: Float32Array, dims: number[]) => unknown;
  env: { wasm: { numThreads?: number; simd?: boolean }; logLevel?: string };
}

interface OrtSession {
  run(feeds: Record<string, unknown>): Promise<Record<string, unknown>>;
  release(): Promise<void>;
}

export type OrtRuntime = 'node' | 'web';

const loaded = new Map<OrtRuntime, Promise<OrtModule | undefined>>();

/** The ORT package, or undefined when it is not installed (its rows are then skipped). */
export function loadOrt(runtime: OrtRuntime): Promise<OrtModule | undefined> {
  let p = loaded.get(runtime);
  if (!p) {
    const name = runtime === 'node' ? 'onnxruntime-node' : 'onnxruntime-web';
    p = import(name).then((m: { default?: OrtModule } & OrtModule) => {
      const ort = (m.default ?? m) as OrtModule;
      if (runtime === 'web') {
        ort.env.wasm.numThreads = 1;
      }
      return ort;
    }, () => undefined);
    loaded.set(runtime, p);
  }
  return p;
}

export async function prepareOrt(runtime: OrtRuntime, shape: GemvShape, kind: OrtKind, layers: number): Promise<Timed | undefined> {
  const ort = await loadOrt(runtime);
  if (!ort) return undefined;
  const options: Record<string, unknown> = runtime === 'node'
    ? { intraOpNumThreads: 1, interOpNumThreads: 1, executionMode: 'sequential', graphOptimizationLevel: 'all' }
    : { executionProviders: ['wasm'], graphOptimizationLevel: 'all' };
  const sessions: OrtSession[] = [];
  for (let l = 0; l < layers; l++) sessions.push(await ort.InferenceSession.create(ortModel(shape, kind, 1000 + 7 * l), options));
  const a = randomFill(new Float32Array(shape.M * shape.K), 1, (u) => u * 2 - 1);
  const feeds = { A: new ort.Tensor('float32', a, [shape.M, shape.K]) };
  let next = 0;
  return {
    run() {
      const s = sessions[next];
      next = (next + 1) % sessions.length;
      return s.run(feeds);
    },
    async dispose() {
      for (const s of sessions) await s.release();
    },
  };
}
