import type { Attribute, Node, TensorType } from '../../ir/graph.js';
import type { KernelBuildContext } from '../../targets/wasm/kernel-def.js';
import { buildLutMatMul } from '../../targets/wasm/kernels/lut/LutMatMul.js';
import { buildLutPrecompute } from '../../targets/wasm/kernels/lut/LutPrecompute.js';
import { WASM_LUT_LAYOUT, lutMatMulParams, wasmIndicesPerByte } from '../../targets/wasm/kernels/lut/common.js';
import { fastSubtiles, type LutAccumulate } from '../../targets/wasm/kernels/lut/matmul-fast.js';
import { WasmThreadPool, splitRange } from '../runtime/threads.js';
import { KernelRunner } from './kernel-runner.js';
import { randomFill, type Layer, type GemvShape, type Timed } from './common.js';

/**
 * llmcc-wasm side of the GEMV/GEMM benchmark: the LutPrecompute + LutMatMul kernels the
 * compiler emits for a lowered low-bit layer (g = 4, rows_per_tile = 16, tiled scales, int8 tables), run on
 * one wasm memory. Weights are random bytes in the planes layout (the kernel's speed does not
 * depend on their values); every layer of the cold set gets its own data.
 */

function intAttrs(values: Record<string, number | string>): Map<string, Attribute> {
  return new Map(Object.entries(values).map(([k, v]) => [k, typeof v === 'number' ? { kind: 'int', value: v } : { kind: 'string', value: v }] as [string, Attribute]));
}

function ctx(node: Node, inputs: TensorType[], outputs: TensorType[]): KernelBuildContext {
  return { node, inputs, outputs, constant: () => undefined, name: node.name };
}

/** A kernel variant other than the compiler's default (A/B measurements of the LUT kernel). */
export interface LutKernelVariant {
  indicesPerByte?: 1 | 2;
  accumulate?: LutAccumulate;
  unroll?: number;
  subtiles?: number;
}

export async function prepareLlmccWasm(shape: GemvShape, layers: number, threads = 1, variant: LutKernelVariant = {}): Promise<Timed> {
  const { M, K, N, groupSize } = shape;
  const bits = shape.bits;
  const { g, rowsPerTile, tiledScales } = WASM_LUT_LAYOUT;
  const groups = K / g, blocks = K / groupSize;
  // What the compiler picks for a model made of these layers (one resident layer hot, the
  // rotating set cold): two indices per byte once the planes outgrow the cache.
  const indicesPerByte = variant.indicesPerByte ?? wasmIndicesPerByte(layers * bits * N * groups);
  const storedGroups = groups / indicesPerByte;
  const pre: Node = { name: 'pre', domain: 'llmcc', op: 'LutPrecompute', inputs: ['a'], outputs: ['t', 'ts', 'as'], attributes: intAttrs({ g, group_size: groupSize, table: 'i8' }) };
  const mm: Node = {
    name: 'mm', domain: 'llmcc', op: 'LutMatMul', inputs: ['t', 'ts', 'as', 'p', 's', 'o'], outputs: ['y'],
    attributes: intAttrs({ bits, g, group_size: groupSize, K, N, rows_per_tile: rowsPerTile, tiled_scales: tiledScales ? 1 : 0, indices_per_byte: indicesPerByte }),
  };
  const tablesType: TensorType = { dtype: 'i8', shape: [M, groups, 8] };
  const blockType: TensorType = { dtype: 'f32', shape: [M, blocks] };
  const kernels = [
    buildLutPrecompute(ctx(pre, [{ dtype: 'f32', shape: [M, K] }], [tablesType, blockType, blockType])),
    buildLutMatMul(ctx(mm, [tablesType, blockType, blockType, { dtype: 'u8', shape: [bits, N, storedGroups] }, { dtype: 'f32', shape: [N, blocks] }, { dtype: 'f32', shape: [N, blocks] }], [{ dtype: 'f32', shape: [M, N] }]),
      { rowRange: threads > 1, accumulate: variant.accumulate, unroll: variant.unroll, subtiles: variant.subtiles }),
  ];
  const planeBytes = bits * N * storedGroups;
  const memoryBytes = layers * (planeBytes + 8 * N * blocks + 4096) + 2 * (M * K * 4 + M * groups * 24 + M * N * 4) + (1 << 20);
  const runner = await KernelRunner.create(kernels, memoryBytes, { shared: threads > 1 });
  const a = runner.put(randomFill(new Float32Array(M * K), 1, (x) => x * 2 - 1));
  const tables = runner.alloc(M * groups * 8);
  const ts = runner.alloc(M * blocks * 4);
  const as = runner.alloc(M * blocks * 4);
  const y = runner.alloc(M * N * 4);
  const scratch = runner.alloc(M * groups * 16);
  const weightLayers: Layer[] = [];
  for (let l = 0; l < layers; l++) {
    const planes = runner.alloc(planeBytes);
    randomFill(new Uint8Array(runner.memory.buffer, planes, planeBytes), 100 + l, (x) => Math.floor(x * (indicesPerByte === 2 ? 256 : 16)));
    const scales = runner.alloc(N * blocks * 4);
    randomFill(new Float32Array(runner.memory.buffer, scales, N * blocks), 200 + l, (x) => 0.01 + x * 0.02);
    const offsets = runner.alloc(N * blocks * 4);
    randomFill(new Float32Array(runner.memory.buffer, offsets, N * blocks), 300 + l, (x) => x * 0.01);
    weightLayers.push({ planes, scales, offsets });
  }
  const precompute = runner.fn('pre');
  const matmul = runner.fn('mm');
  let next = 0;
  if (threads <= 1) {
    return {
      run() {
        const w = weightLayers[next];
        next = (next + 1) % weightLayers.length;
        precompute(a, tables, ts, as, M);
        matmul(tables, ts, as, w.planes, w.scales, w.offsets, y, scratch, M);
      },
      dispose() { /* the memory goes with the runner */ },
    };
  }
  // Threads split the output rows in whole kernel steps; each expands the (identical) tables.
  const pool = await WasmThreadPool.create(runner.module, runner.memory, runner.exports, ['mm'], threads);
  const step = fastSubtiles(lutMatMulParams(mm), variant.subtiles);
  const ranges = splitRange(N / rowsPerTile, threads, step);
  return {
    run() {
      const w = weightLayers[next];
      next = (next + 1) % weightLayers.length;
      precompute(a, tables, ts, as, M);
      pool.run('mm', ranges.map(([begin, end]) => [tables, ts, as, w.planes, w.scales, w.offsets, y, scratch, M, begin, end]));
    },
    dispose: () => pool.close(),
  };
}
