import {
  KernelBuilder, add, and, cast, constant, f32, lt, mul, neg, select, shl, shr, sub,
} from '../../../../codegen/builder.js';
import type { Kernel } from '../../../../codegen/kernel.js';
import type { Node } from '../../../../ir/graph.js';
import type { KernelBuildContext, LaunchShapes, WasmKernelDef } from '../../kernel-def.js';
import { TILE_ROWS, leadingDims, lutMatMulParams, type LutMatMulParams, type RowSplitKernel } from './common.js';
import { DEFAULT_K_BLOCK, buildFastLutMatMul, type LutAccumulate, declareLutBuffers, fastSubtiles, kBlockQuantBlocks, planeChunks } from './matmul-fast.js';

/**
 * llmcc.LutMatMul on wasm (semantics: ir/ops/llmcc/LutMatMul.ts, passes/lut/matmul.ts).
 *
 * Fast path (int8 tables, g = 4, rows_per_tile = 16, K/g even, group_size/g ≤ 257 and even
 * with two indices per byte): the
 * biased-table, int16-accumulating kernel of matmul-fast.ts. Generic path (any rows_per_tile,
 * f32 tables, odd shapes): a scalar loop in the reference's order; the integer part is still
 * exact for int8 tables.
 *
 * `blockSums: true` (tests only) makes the kernel write the int32 block sums I [M, N, blocks]
 * to the output instead of Y, to compare with lutBlockSums bit for bit.
 */

export interface LutMatMulBuildOptions {
  blockSums?: boolean;
  /** Force the generic kernel (tests). */
  generic?: boolean;
  /** Groups per unrolled inner step of the fast path (default 1). */
  unroll?: number;
  /** 16-row tiles per step of the fast path, sharing each table load (default 1). */
  subtiles?: number;
  /** Fast path int16 accumulation: 'shift' (default), 'widen' or 'pairwise' (matmul-fast.ts). */
  accumulate?: LutAccumulate;
  /** Fast path only: scalar params tile_begin/tile_end after M, for threads (matmul-fast.ts). */
  rowRange?: boolean;
  /** Fast path: activations per K block (0: none; default DEFAULT_K_BLOCK, matmul-fast.ts). */
  kBlock?: number;
}

/** The `accumulate` tuning knob's values: 0 'shift' (the default; fewest ops in V8), 1 'widen'. */
export const ACCUMULATE_KNOB: readonly LutAccumulate[] = ['shift', 'widen'];

/** Why the fast path cannot run this node (undefined: it can). */
export function fastPathBlocker(p: LutMatMulParams, tableDtype: string): string | undefined {
  if (tableDtype !== 'i8') return 'f32 tables';
  if (p.g !== 4) return `g = ${p.g} (needs 4)`;
  if (p.rowsPerTile !== TILE_ROWS) return `rows_per_tile = ${p.rowsPerTile} (needs ${TILE_ROWS})`;
  if (p.groups % 2 !== 0) return 'K/g is odd';
  if (!planeChunks(p.bits, p.lookups)) return `group_size/g = ${p.lookups} lookups overflow int16`;
  if (p.indicesPerByte === 2 && p.lookups % 2 !== 0) return `group_size/g = ${p.lookups} is odd with two indices per byte`;
  return undefined;
}

function buildGeneric(name: string, p: LutMatMulParams, tableElem: 'i8' | 'f32', hasBias: boolean, options: LutMatMulBuildOptions): Kernel {
  const k = new KernelBuilder(name);
  const buf = declareLutBuffers(k, tableElem, hasBias, options.blockSums ?? false);
  const M = k.scalar('M');
  const { bits, groups, blocks, lookups, half, N, rowsPerTile } = p;
  const sumType = tableElem === 'i8' ? 'i32' : 'f32';
  k.loop('m', 0, M, (m) => {
    k.loop('n', 0, N, (n) => {
      // Element (plane, n, j) of the interleaved planes: ((plane·N/R + n/R)·groups + j)·R + n%R.
      const tileRow = k.let('tr', sub(n, mul({ kind: 'binary', op: 'div', a: n, b: constant('i32', rowsPerTile), type: 'i32' }, rowsPerTile)));
      const tile = k.let('tile', { kind: 'binary', op: 'div', a: n, b: constant('i32', rowsPerTile), type: 'i32' });
      const acc = k.mut('acc', f32(0));
      k.loop('blk', 0, blocks, (blk) => {
        const total = k.mut('total', constant(sumType, 0));
        for (let pl = 0; pl < bits; pl++) {
          const planeSum = k.mut(`ps${pl}`, constant(sumType, 0));
          k.loop('j', mul(blk, lookups), mul(add(blk, 1), lookups), (j) => {
            // Two indices per byte: group j is nibble j & 1 of stored group j / 2.
            const perByte = p.indicesPerByte;
            const storedJ = perByte === 1 ? j : shr(j, 1);
            const at = add(mul(add(mul(add(tile, pl * (N / rowsPerTile)), groups / perByte), storedJ), rowsPerTile), tileRow);
            const byte = buf.planes.load(at);
            const index = k.let('ix', perByte === 1 ? byte : and(shr(byte, shl(and(j, 1), 2)), 15));
            const low = k.let('low', lt(index, half));
            const entry = select(low, index, sub(2 * half - 1, index));
            const value = k.let('val', buf.tables.load(add(mul(add(mul(m, groups), j), half), entry)));
            k.set(planeSum, add(planeSum, select(low, value, neg(value))));
          });
          k.set(total, add(total, pl === 0 ? planeSum : (sumType === 'i32' ? shl(planeSum, pl) : mul(planeSum, 2 ** pl))));
        }
        if (options.blockSums) {
          buf.y.store(add(mul(add(mul(m, N), n), blocks), blk), sumType === 'i32' ? total : cast(total, 'i32'));
          return;
        }
        const w = k.let('w', p.tiledScales ? add(mul(add(mul(tile, blocks), blk), rowsPerTile), tileRow) : add(mul(n, blocks), blk));
        const a = k.let('a', add(mul(m, blocks), blk));
        const term = add(
          mul(mul(buf.scales.load(w), buf.tableScales.load(a)), sumType === 'i32' ? cast(total, 'f32') : total),
          mul(buf.offsets.load(w), buf.actSums.load(a)));
        k.set(acc, add(acc, term));
      });
      if (options.blockSums) return;
      buf.y.store(add(mul(m, N), n), buf.bias ? add(acc, buf.bias.load(n)) : acc);
    });
  });
  return k.build();
}

/** Builds the kernel for a LutMatMul node (options for tests and benchmarks). */
export function buildLutMatMul(ctx: KernelBuildContext, options: LutMatMulBuildOptions = {}): Kernel {
  const p = lutMatMulParams(ctx.node);
  const tableDtype = ctx.inputs[0]?.dtype === 'f32' ? 'f32' : 'i8';
  const hasBias = ctx.inputs[6] !== undefined;
  if (!options.generic && fastPathBlocker(p, tableDtype) === undefined) {
    return buildFastLutMatMul(ctx.name, p, hasBias, {
      blockSums: options.blockSums,
      unroll: options.unroll ?? ctx.tuning?.unroll ?? 1,
      subtiles: options.subtiles ?? ctx.tuning?.subtiles,
      accumulate: options.accumulate ?? ACCUMULATE_KNOB[ctx.tuning?.accumulate ?? 0],
      rowRange: options.rowRange,
      kBlock: options.kBlock ?? ctx.tuning?.k_block,
    });
  }
  if (options.rowRange) throw new Error(`LutMatMul ${ctx.name}: row ranges need the fast path (${fastPathBlocker(p, tableDtype)})`);
  return buildGeneric(ctx.name, p, tableDtype, hasBias, options);
}

/** M: the product of the tables' leading dims ([..., K/g, 2^(g−1)]). */
function tableRows(shapes: LaunchShapes): number {
  return leadingDims(shapes.inputs[0], 2);
}

function usesFastPath(node: Node, tableDtype: string): boolean {
  return fastPathBlocker(lutMatMulParams(node), tableDtype) === undefined;
}

/** The largest `subtiles` knob value: thread shares are multiples of it, whatever was tuned. */
const MAX_SUBTILES = 2;

/**
 * The compiled fast path always takes a tile range (tile_begin, tile_end after M; the runtime
 * passes all tiles on one thread, a share per thread with threads). Like scratchBytes, the
 * launch-time hooks assume int8 tables, the only kind the lowering emits for wasm.
 */
export const lutMatMulKernel: WasmKernelDef & RowSplitKernel = {
  domain: 'llmcc',
  op: 'LutMatMul',
  check(ctx) {
    const tables = ctx.inputs[0];
    if (!tables) return 'missing tables';
    if (tables.dtype !== 'i8' && tables.dtype !== 'f32') return `tables of type ${tables.dtype}`;
    const p = lutMatMulParams(ctx.node);
    if (![1, 2, 3, 4].includes(p.bits)) return `bits = ${p.bits}`;
    return undefined;
  },
  build: (ctx) => buildLutMatMul(ctx, { rowRange: usesFastPath(ctx.node, ctx.inputs[0]?.dtype === 'f32' ? 'f32' : 'i8') }),
  tuningSpace(ctx) {
    // Only the fast path reads `unroll` (values must divide the block's lookups), `subtiles` and `k_block`.
    const p = lutMatMulParams(ctx.node);
    if (fastPathBlocker(p, ctx.inputs[0]?.dtype === 'f32' ? 'f32' : 'i8') !== undefined) return [];
    // An unrolled step is one group, or one pair of groups with two indices per byte.
    const values = [1, 2, 4, 8].filter((u) => (p.lookups / p.indicesPerByte) % u === 0);
    const tiles = p.N / TILE_ROWS;
    const subtiles = [1, MAX_SUBTILES].filter((st) => tiles % st === 0);
    // K block sizes with distinct schedules, by quant blocks per K block (0: one pass over K).
    const kBlockByQuantBlocks = new Map<number, number>();
    for (const kb of [0, 1024, 2048, 4096]) {
      const quantBlocks = kBlockQuantBlocks(p, kb) ?? 0;
      if (!kBlockByQuantBlocks.has(quantBlocks)) kBlockByQuantBlocks.set(quantBlocks, kb);
    }
    const kBlockValues = [...kBlockByQuantBlocks.values()];
    const kBlockDefault = kBlockByQuantBlocks.get(kBlockQuantBlocks(p, DEFAULT_K_BLOCK) ?? 0) ?? 0;
    return [
      { name: 'unroll', values, default: 1 },
      { name: 'subtiles', values: subtiles, default: 1 },
      { name: 'accumulate', values: [0, 1], default: 0 },
      ...(kBlockValues.length > 1 ? [{ name: 'k_block', values: kBlockValues, default: kBlockDefault }] : []),
    ];
  },
  args(node: Node, shapes: LaunchShapes): number[] {
    const M = tableRows(shapes);
    return usesFastPath(node, 'i8') ? [M, 0, lutMatMulParams(node).N / TILE_ROWS] : [M];
  },
  rowSplit(node: Node): { units: number; step: number } | undefined {
    if (!usesFastPath(node, 'i8')) return undefined;
    const p = lutMatMulParams(node);
    return { units: p.N / TILE_ROWS, step: fastSubtiles(p, MAX_SUBTILES) };
  },
  scratchBytes(node: Node, shapes: LaunchShapes): number {
    // Only the fast path uses scratch, but the convention passes one whenever this is defined.
    const p = lutMatMulParams(node);
    const M = tableRows(shapes);
    return usesFastPath(node, 'i8') ? M * p.groups * 16 : 16;
  },
};
