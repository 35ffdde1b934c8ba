import type { Attribute, Node, TensorType } from '../../ir/graph.js';
import type { KernelBuildContext } from '../../targets/wasm/kernel-def.js';
import { buildQuantizeActQ8 } from '../../targets/wasm/kernels/QuantizeActQ8.js';
import { buildQuantMatMulQ8 } from '../../targets/wasm/kernels/QuantMatMulQ8.js';
import { DOT_TILE_ROWS, dotLayout } from '../../passes/dot/layout.js';
import { KernelRunner } from './kernel-runner.js';
import { randomFill, type GemvShape, type Timed } from './common.js';

/**
 * llmcc-wasm-dot rows of the GEMV/GEMM benchmark: the int8-activation dot kernels
 * (`--matmul dot`: QuantizeActQ8 + QuantMatMulQ8, passes/dot-lower.ts) on one wasm memory,
 * single-threaded. Weights are random bytes in the dot layout; every layer of the cold set
 * gets its own data.
 */

function attrs(values: Record<string, number>): Map<string, Attribute> {
  return new Map(Object.entries(values).map(([k, v]) => [k, { kind: 'int', value: v }] as [string, Attribute]));
}

function ctx(node: Node, inputs: TensorType[]): KernelBuildContext {
  return { node, inputs, outputs: [], constant: () => undefined, name: node.name };
}

interface DotLayer { packed: number; scales: number; offsets: number }

export async function prepareLlmccWasmDot(shape: GemvShape, layers: number): Promise<Timed> {
  const { M, K, N, groupSize, bits, ternary } = shape;
  const l = dotLayout({ bits, ternary, groupSize, K, N });
  const padded = l.groups * groupSize;
  const quant: Node = { name: 'quant', domain: 'llmcc', op: 'QuantizeActQ8', inputs: ['a'], outputs: ['q', 'qs', 'qz'], attributes: attrs({ group_size: groupSize }) };
  const mm: Node = {
    name: 'mm', domain: 'llmcc', op: 'QuantMatMulQ8', inputs: ['q', 'qs', 'qz', 'p', 's', 'o'], outputs: ['y'],
    attributes: attrs({ bits, ternary: ternary ? 1 : 0, group_size: groupSize, K, N }),
  };
  const tiled = [l.tiles, l.groups, DOT_TILE_ROWS];
  const kernels = [
    buildQuantizeActQ8(ctx(quant, [{ dtype: 'f32', shape: [M, K] }])),
    buildQuantMatMulQ8(ctx(mm, [
      { dtype: 'i8', shape: [M, padded] }, { dtype: 'f32', shape: [M, l.groups] }, { dtype: 'i32', shape: [M, l.groups] },
      { dtype: 'u8', shape: [l.tiles, l.groups, l.groupBytes] }, { dtype: 'f32', shape: tiled }, { dtype: 'i32', shape: tiled },
    ])),
  ];
  const packedBytes = l.tiles * l.groups * l.groupBytes;
  const tileEntries = l.tiles * l.groups * DOT_TILE_ROWS;
  const memoryBytes = layers * (packedBytes + 8 * tileEntries + 4096) + 2 * (M * K * 4 + M * padded + M * l.groups * 8 + M * N * 4) + (1 << 20);
  const runner = await KernelRunner.create(kernels, memoryBytes);
  const a = runner.put(randomFill(new Float32Array(M * K), 1, (x) => x * 2 - 1));
  const q = runner.alloc(M * padded);
  const qs = runner.alloc(M * l.groups * 4);
  const qz = runner.alloc(M * l.groups * 4);
  const y = runner.alloc(M * N * 4);
  const weightLayers: DotLayer[] = [];
  for (let i = 0; i < layers; i++) {
    const packed = runner.alloc(packedBytes);
    randomFill(new Uint8Array(runner.memory.buffer, packed, packedBytes), 100 + i, (x) => Math.floor(x * 256));
    const scales = runner.alloc(tileEntries * 4);
    randomFill(new Float32Array(runner.memory.buffer, scales, tileEntries), 200 + i, (x) => 0.005 + x * 0.01);
    const offsets = runner.alloc(tileEntries * 4);
    new Int32Array(runner.memory.buffer, offsets, tileEntries).fill(2 * (ternary ? 1 : 2 ** (bits - 1)));
    weightLayers.push({ packed, scales, offsets });
  }
  const quantize = runner.fn('quant');
  const matmul = runner.fn('mm');
  let next = 0;
  return {
    run() {
      const w = weightLayers[next];
      next = (next + 1) % weightLayers.length;
      quantize(a, q, qs, qz, M);
      matmul(q, qs, qz, w.packed, w.scales, w.offsets, y, M);
    },
    dispose() { /* the memory goes with the runner */ },
  };
}
