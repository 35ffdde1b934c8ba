/**
 * `llmcc bench neon-gemv`: dynamic aarch64 instruction counts of the generated GEMVs of a
 * lowered low-bit layer, per weight, side by side: the LUT kernels (LutPrecompute + LutMatMul)
 * and the int8-activation dot kernels (QuantizeActQ8 + QuantMatMulQ8, `vdotq_s32` with
 * +dotprod), for bits 1–4, 8 (dot only) and ternary, with and without dotprod. There is no ARM
 * hardware here to time them, so the count stands in for speed; it picks the neon target's
 * `--matmul auto` widths (targets/neon/matmul-choice.ts).
 *
 * Counting (qemu-user has no instruction-count plugin in Debian): qemu logs every translated
 * block's guest instructions (`-d in_asm`) and every block executed (`-d exec,nochain`, so
 * chained blocks are logged too); the count is Σ over executed blocks of their instruction
 * counts. Setup (reading the weight files, libc start-up) is removed by running the GEMV
 * once and three times and halving the difference.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as readline from 'node:readline';
import type { Attribute, Node, TensorType } from '../../ir/graph.js';
import type { Kernel } from '../../codegen/kernel.js';
import type { KernelBuildContext } from '../../targets/wasm/kernel-def.js';
import { buildLutMatMul } from '../../targets/wasm/kernels/lut/LutMatMul.js';
import { NEON_KERNEL_KNOBS } from '../../targets/neon/matmul-choice.js';
import { buildLutPrecompute } from '../../targets/wasm/kernels/lut/LutPrecompute.js';
import { WASM_LUT_LAYOUT } from '../../targets/wasm/kernels/lut/common.js';
import { buildQuantizeActQ8 } from '../../targets/wasm/kernels/QuantizeActQ8.js';
import { buildQuantMatMulQ8 } from '../../targets/wasm/kernels/QuantMatMulQ8.js';
import { buildQuantMatMul } from '../../targets/wasm/kernels/QuantMatMul.js';
import { dotLayout } from '../../passes/dot/layout.js';
import { runCKernels, type KernelCall } from '../../targets/neon/kernel-runner.js';
import type { NeonMode } from '../../targets/neon/toolchain.js';

export interface NeonGemvOptions {
  k: number;
  n: number;
  bits: (number | 'ternary')[];
  groupSize: number;
  modes: ('qemu-max' | 'qemu-a53')[];
  /** Kernel families to count (default both). */
  kinds?: GemvKind[];
  log: (line: string) => void;
}

/** lut: LutPrecompute + LutMatMul; dot: QuantizeActQ8 + QuantMatMulQ8. */
export type GemvKind = 'lut' | 'dot';

export interface NeonGemvResult {
  kind: GemvKind;
  bits: number | 'ternary';
  mode: 'qemu-max' | 'qemu-a53';
  dotprod: boolean;
  k: number;
  n: number;
  /** Dynamic instructions of one GEMV (precompute or quantizer + matmul). */
  instructions: number;
  instructionsPerWeight: number;
}

function attrs(values: Record<string, number | string>): Map<string, Attribute> {
  return new Map(Object.entries(values).map(([k, v]) => [k, typeof v === 'number' ? { kind: 'int', value: v } : { kind: 'string', value: v }] as [string, Attribute]));
}

/** The two kernels of one lowered low-bit GEMV layer and their launch arguments. */
function gemvCalls(K: number, N: number, bits: number, groupSize: number): KernelCall[] {
  const { g, rowsPerTile } = WASM_LUT_LAYOUT;
  const groups = K / g;
  const blocks = K / groupSize;
  // The knobs the neon compiler sets (NEON_KERNEL_KNOBS), so the figures are the compiled kernels'.
  const ctx = (node: Node, inputs: TensorType[], outputs: TensorType[]): KernelBuildContext => ({
    node, inputs, outputs, constant: () => undefined, name: node.name, tuning: NEON_KERNEL_KNOBS[`${node.domain}::${node.op}`],
  });
  const pre: Node = { name: 'gemv_pre', domain: 'llmcc', op: 'LutPrecompute', inputs: ['a'], outputs: ['t', 'ts', 'as'], attributes: attrs({ g, group_size: groupSize, table: 'i8' }) };
  const mm: Node = {
    name: 'gemv_mm', domain: 'llmcc', op: 'LutMatMul', inputs: ['t', 'ts', 'as', 'p', 's', 'o'], outputs: ['y'],
    attributes: attrs({ bits, g, group_size: groupSize, K, N, rows_per_tile: rowsPerTile }),
  };
  const tablesType: TensorType = { dtype: 'i8', shape: [1, groups, 8] };
  const blockType: TensorType = { dtype: 'f32', shape: [1, blocks] };
  const preKernel: Kernel = buildLutPrecompute(ctx(pre, [{ dtype: 'f32', shape: [1, K] }], [tablesType, blockType, blockType]));
  const mmKernel: Kernel = buildLutMatMul(ctx(mm, [tablesType, blockType, blockType, { dtype: 'u8', shape: [bits, N, groups] }, { dtype: 'f32', shape: [N, blocks] }, { dtype: 'f32', shape: [N, blocks] }], [{ dtype: 'f32', shape: [1, N] }]));
  let seed = 7;
  const random = (): number => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed / 0x7fffffff;
  };
  const f32 = (count: number, f: () => number): Uint8Array => new Uint8Array(Float32Array.from({ length: count }, f).buffer);
  const tables = new Uint8Array(groups * 8);
  const tableScales = new Uint8Array(blocks * 4);
  const actSums = new Uint8Array(blocks * 4);
  // The pre kernel writes tables/scales/sums into these; the matmul call gets its own copies
  // (the runner passes bytes, not shared buffers), equal in size: the count does not depend on values.
  return [
    { kernel: preKernel, args: [f32(K, () => random() * 2 - 1), tables, tableScales, actSums, 1] },
    {
      kernel: mmKernel,
      args: [
        Uint8Array.from({ length: groups * 8 }, () => Math.floor(random() * 255)), f32(blocks, () => 0.01), f32(blocks, () => random()),
        Uint8Array.from({ length: bits * N * groups }, () => Math.floor(random() * 16)),
        f32(N * blocks, () => 0.01 + random() * 0.02), f32(N * blocks, () => random() * 0.01),
        new Uint8Array(N * 4), new Uint8Array(groups * 16), 1,
      ],
    },
  ];
}

/** 8-bit layers without the dot path stay QuantMatMul (f32 dequantization): its one kernel. */
function quantGemvCalls(K: number, N: number, groupSize: number): KernelCall[] {
  const groups = Math.ceil(K / groupSize);
  const mm: Node = {
    name: 'gemv_quant', domain: 'llmcc', op: 'QuantMatMul', inputs: ['a', 'c', 's'], outputs: ['y'],
    attributes: attrs({ bits: 8, group_size: groupSize, K, N }),
  };
  const kernel = buildQuantMatMul({ node: mm, inputs: [], outputs: [], constant: () => undefined, name: mm.name });
  const f32 = (count: number, v: number): Uint8Array => new Uint8Array(new Float32Array(count).fill(v).buffer);
  return [{ kernel, args: [f32(K, 0.5), Uint8Array.from({ length: N * K }, (_, i) => (i * 7) & 255), f32(N * groups, 0.01), new Uint8Array(N * 4), 1] }];
}

/** The two kernels of one dot-lowered GEMV layer (symmetric weights, group `groupSize`). */
function dotGemvCalls(K: number, N: number, bits: number, ternary: boolean, groupSize: number): KernelCall[] {
  const l = dotLayout({ bits, ternary, groupSize, K, N });
  const ctx = (node: Node, inputs: TensorType[]): KernelBuildContext => ({ node, inputs, outputs: [], constant: () => undefined, name: node.name });
  const quant: Node = { name: 'gemv_q8', domain: 'llmcc', op: 'QuantizeActQ8', inputs: ['a'], outputs: ['q', 'qs', 'qz'], attributes: attrs({ group_size: groupSize }) };
  const mm: Node = {
    name: 'gemv_dot', domain: 'llmcc', op: 'QuantMatMulQ8', inputs: ['q', 'qs', 'qz', 'p', 's', 'o'], outputs: ['y'],
    attributes: attrs({ bits, ternary: ternary ? 1 : 0, group_size: groupSize, K, N }),
  };
  const padded = l.groups * groupSize;
  const quantKernel = buildQuantizeActQ8(ctx(quant, [{ dtype: 'f32', shape: [1, K] }]));
  const tiled = [l.tiles, l.groups, 4];
  const mmKernel = buildQuantMatMulQ8(ctx(mm, [
    { dtype: 'i8', shape: [1, padded] }, { dtype: 'f32', shape: [1, l.groups] }, { dtype: 'i32', shape: [1, l.groups] },
    { dtype: 'u8', shape: [l.tiles, l.groups, l.groupBytes] }, { dtype: 'f32', shape: tiled }, { dtype: 'i32', shape: tiled },
  ]));
  let seed = 11;
  const random = (): number => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed / 0x7fffffff;
  };
  const f32 = (count: number, f: () => number): Uint8Array => new Uint8Array(Float32Array.from({ length: count }, f).buffer);
  const tileCount = l.tiles * l.groups * 4;
  return [
    { kernel: quantKernel, args: [f32(K, () => random() * 2 - 1), new Uint8Array(padded), new Uint8Array(l.groups * 4), new Uint8Array(l.groups * 4), 1] },
    {
      kernel: mmKernel,
      args: [
        Uint8Array.from({ length: padded }, () => Math.floor(random() * 255)), f32(l.groups, () => 0.01), new Uint8Array(l.groups * 4),
        Uint8Array.from({ length: l.tiles * l.groups * l.groupBytes }, () => Math.floor(random() * 256)),
        f32(tileCount, () => 0.01 + random() * 0.02), new Uint8Array(tileCount * 4), new Uint8Array(N * 4), 1,
      ],
    },
  ];
}

/** Guest instructions executed, from a qemu `-d in_asm,exec,nochain` log. */
export async function countLoggedInstructions(logFile: string): Promise<number> {
  const blockSize = new Map<number, number>();
  const executed = new Map<number, number>();
  let current: number | undefined;
  const lines = readline.createInterface({ input: fs.createReadStream(logFile), crlfDelay: Infinity });
  for await (const line of lines) {
    if (line.startsWith('Trace ')) {
      current = undefined;
      const pc = /\[[0-9a-f]+\/([0-9a-f]+)\//.exec(line);
      if (pc) {
        const at = Number.parseInt(pc[1], 16);
        executed.set(at, (executed.get(at) ?? 0) + 1);
      }
      continue;
    }
    if (line.startsWith('IN:')) {
      current = -1;
      continue;
    }
    const insn = /^0x([0-9a-f]+):\s/.exec(line);
    if (insn && current !== undefined) {
      if (current === -1) {
        current = Number.parseInt(insn[1], 16);
        blockSize.set(current, 0);
      }
      blockSize.set(current, blockSize.get(current)! + 1);
      continue;
    }
    if (line.trim() === '') current = undefined;
  }
  let total = 0;
  for (const [pc, times] of executed) total += times * (blockSize.get(pc) ?? 0);
  return total;
}

async function countRun(calls: KernelCall[], mode: NeonMode, repeat: number): Promise<number> {
  let count = 0;
  await runCKernels(calls, mode, {
    repeat,
    qemuArgs: ['-d', 'in_asm,exec,nochain', '-D', 'qemu.log'],
    inspect: async (dir) => {
      count = await countLoggedInstructions(path.join(dir, 'qemu.log'));
    },
  });
  return count;
}

export async function runNeonGemvBench(options: NeonGemvOptions): Promise<NeonGemvResult[]> {
  const results: NeonGemvResult[] = [];
  const kinds = options.kinds ?? ['lut', 'dot'];
  for (const bitsSpec of options.bits) {
    const bits = bitsSpec === 'ternary' ? 2 : bitsSpec;
    const families: [GemvKind, KernelCall[]][] = [];
    // 8-bit weights have no LUT kernel: lut-lower keeps them QuantMatMul, counted in the lut column.
    if (kinds.includes('lut')) families.push(['lut', bits <= 4 ? gemvCalls(options.k, options.n, bits, options.groupSize) : quantGemvCalls(options.k, options.n, options.groupSize)]);
    if (kinds.includes('dot')) families.push(['dot', dotGemvCalls(options.k, options.n, bits, bitsSpec === 'ternary', options.groupSize)]);
    for (const mode of options.modes) {
      const perWeight = new Map<GemvKind, number>();
      for (const [kind, calls] of families) {
        const once = await countRun(calls, mode, 1);
        const thrice = await countRun(calls, mode, 3);
        const instructions = (thrice - once) / 2;
        const r: NeonGemvResult = {
          kind, bits: bitsSpec, mode, dotprod: mode === 'qemu-max', k: options.k, n: options.n,
          instructions, instructionsPerWeight: instructions / (options.k * options.n),
        };
        results.push(r);
        perWeight.set(kind, r.instructionsPerWeight);
      }
      const cell = (kind: GemvKind): string => (perWeight.has(kind) ? perWeight.get(kind)!.toFixed(4) : '-').padStart(10);
      const lut = perWeight.get('lut');
      const dot = perWeight.get('dot');
      const ratio = lut !== undefined && dot !== undefined ? (dot / lut).toFixed(2) : '-';
      options.log(`${String(bitsSpec).padEnd(8)} ${mode.padEnd(9)} ${cell('lut')} ${cell('dot')} ${ratio.padStart(8)}`);
    }
  }
  return results;
}

export interface NeonGemvCliOptions {
  k?: number;
  n?: number;
  bits?: string;
  groupSize?: number;
  json?: string;
}

/** `llmcc bench neon-gemv`: the table, and the results as JSON with --json. */
export async function neonGemvCommand(opts: NeonGemvCliOptions): Promise<number> {
  const k = opts.k ?? 4096;
  const bits = (opts.bits ?? '1,2,3,4,8,ternary').split(',').map((b) => (b.trim() === 'ternary' ? 'ternary' as const : Number(b)));
  if (bits.some((b) => b !== 'ternary' && ![1, 2, 3, 4, 8].includes(b))) throw new Error(`--bits takes 1, 2, 3, 4, 8 or ternary, got '${opts.bits}'`);
  const log = (line: string): void => console.log(line);
  log(`GEMV K=${k} N=${opts.n ?? k} group ${opts.groupSize ?? 128}: dynamic aarch64 instructions per weight under qemu (-cpu max: +dotprod build; cortex-a53: armv8-a build)`);
  log('lut: LutPrecompute + LutMatMul (T-MAC tables; 8-bit: QuantMatMul, f32 dequantization); dot: QuantizeActQ8 + QuantMatMulQ8 (int8 activations, vdotq_s32 with +dotprod)');
  log('bits     mode             lut        dot  dot/lut');
  const results = await runNeonGemvBench({ k, n: opts.n ?? k, bits, groupSize: opts.groupSize ?? 128, modes: ['qemu-max', 'qemu-a53'], log });
  if (opts.json) fs.writeFileSync(opts.json, `${JSON.stringify({ bench: 'neon-gemv', counting: 'qemu -d in_asm,exec,nochain; (3 runs - 1 run) / 2', results }, null, 2)}\n`);
  return 0;
}
