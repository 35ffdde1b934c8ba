/**
 * `llmcc bench neon-gemv`: dynamic aarch64 instruction counts of the generated LUT GEMV
 * (LutPrecompute + LutMatMul, the kernels `--target neon` prints for a lowered low-bit layer),
 * per weight, for bits 1–4 and ternary, with and without dotprod. There is no ARM hardware
 * here to time it, so the count stands in for speed.
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
import { buildLutPrecompute } from '../../targets/wasm/kernels/lut/LutPrecompute.js';
import { WASM_LUT_LAYOUT } from '../../targets/wasm/kernels/lut/common.js';
import { runCKernels, type KernelCall } from '../../targets/neon/kernel-runner.js';
import type { NeonMode } from '../../targets/neon/toolchain.js';

export interface NeonGemvOptions {
  k: number;
  n: number;
  bits: (number | 'ternary')[];
  groupSize: number;
  modes: ('qemu-max' | 'qemu-a53')[];
  log: (line: string) => void;
}

export interface NeonGemvResult {
  bits: number | 'ternary';
  mode: 'qemu-max' | 'qemu-a53';
  dotprod: boolean;
  k: number;
  n: number;
  /** Dynamic instructions of one GEMV (precompute + matmul). */
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
  const ctx = (node: Node, inputs: TensorType[], outputs: TensorType[]): KernelBuildContext => ({ node, inputs, outputs, constant: () => undefined, name: node.name });
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
  for (const bitsSpec of options.bits) {
    const bits = bitsSpec === 'ternary' ? 2 : bitsSpec;
    const calls = gemvCalls(options.k, options.n, bits, options.groupSize);
    for (const mode of options.modes) {
      const once = await countRun(calls, mode, 1);
      const thrice = await countRun(calls, mode, 3);
      const instructions = (thrice - once) / 2;
      const r: NeonGemvResult = {
        bits: bitsSpec, mode, dotprod: mode === 'qemu-max', k: options.k, n: options.n,
        instructions, instructionsPerWeight: instructions / (options.k * options.n),
      };
      results.push(r);
      options.log(`${String(bitsSpec).padEnd(8)} ${mode.padEnd(9)} ${String(instructions).padStart(11)} instructions  ${r.instructionsPerWeight.toFixed(4)} per weight`);
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
  const bits = (opts.bits ?? '1,2,3,4,ternary').split(',').map((b) => (b.trim() === 'ternary' ? 'ternary' as const : Number(b)));
  if (bits.some((b) => b !== 'ternary' && ![1, 2, 3, 4].includes(b))) throw new Error(`--bits takes 1, 2, 3, 4 or ternary, got '${opts.bits}'`);
  const log = (line: string): void => console.log(line);
  log(`LUT GEMV K=${k} N=${opts.n ?? k}: dynamic aarch64 instructions under qemu (-cpu max: +dotprod build; cortex-a53: armv8-a build)`);
  log('bits     mode       instructions / GEMV  per weight');
  const results = await runNeonGemvBench({ k, n: opts.n ?? k, bits, groupSize: opts.groupSize ?? 128, modes: ['qemu-max', 'qemu-a53'], log });
  if (opts.json) fs.writeFileSync(opts.json, `${JSON.stringify({ bench: 'neon-gemv', counting: 'qemu -d in_asm,exec,nochain; (3 runs - 1 run) / 2', results }, null, 2)}\n`);
  return 0;
}
