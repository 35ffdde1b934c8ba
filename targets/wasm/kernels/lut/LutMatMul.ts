import {
  KernelBuilder, add, cast, constant, extract, f32, lookup16, lt, mul, neg, reduce, select, shl, splat, sub, widen,
  type BufferRef,
} from '../../../../codegen/builder.js';
import type { Expr, Kernel } from '../../../../codegen/kernel.js';
import type { Node } from '../../../../ir/graph.js';
import { accumulationBounds } from '../../../../passes/lut/tables.js';
import type { KernelBuildContext, LaunchShapes, WasmKernelDef } from '../../kernel-def.js';
import { INT16_LOOKUPS, TILE_ROWS, leadingDims, lutMatMulParams, type LutMatMulParams } from './common.js';

/**
 * llmcc.LutMatMul on wasm (semantics: ir/ops/llmcc/LutMatMul.ts, passes/lut/matmul.ts).
 *
 * Fast path (int8 tables, g = 4, rows_per_tile = 16, int16-safe blocks, K/g even):
 *  1. Expand every stored 8-entry half table into a signed 16-entry table in scratch
 *     (entry 15 − i = −entry i), so a lookup is one `lookup16` with no sign fix-up.
 *  2. Per 16-row tile, per activation row m, per quant block: for each group j and plane p,
 *     one 16-byte load of the 16 rows' indices, one lookup, and an int16 accumulate of both
 *     halves. The block's exact integer I = Σ_p 2^p·acc_p (the reference's I bit for bit).
 *  3. Epilogue: Y += scales[n,blk]·(table_scale·I) per row, plus Σ_blk offsets·act_sums as a
 *     vector dot over blocks per row, plus bias.
 * Generic path (any rows_per_tile, f32 tables, odd shapes): a scalar loop in the reference's
 * order; the integer part is still exact for int8 tables.
 *
 * `blockSums: true` (tests only) makes the kernel write the int32 block sums I [M, N, blocks]
 * to the output instead of Y, to compare with lutBlockSums bit for bit.
 */

export interface LutMatMulBuildOptions {
  blockSums?: boolean;
  /** Force the generic kernel (tests). */
  generic?: boolean;
  /** Groups per unrolled inner step of the fast path (default 2). */
  unroll?: number;
}

/** Why the fast path cannot run this node (undefined: it can). */
export function fastPathBlocker(p: LutMatMulParams, tableDtype: string): string | undefined {
  if (tableDtype !== 'i8') return 'f32 tables';
  if (p.g !== 4) return `g = ${p.g} (needs 4)`;
  if (p.rowsPerTile !== TILE_ROWS) return `rows_per_tile = ${p.rowsPerTile} (needs ${TILE_ROWS})`;
  if (p.groups % 2 !== 0) return 'K/g is odd';
  if (p.lookups > INT16_LOOKUPS) return `group_size/g = ${p.lookups} lookups overflow int16`;
  return undefined;
}

interface Buffers {
  tables: BufferRef;
  tableScales: BufferRef;
  actSums: BufferRef;
  planes: BufferRef;
  scales: BufferRef;
  offsets: BufferRef;
  bias?: BufferRef;
  y: BufferRef;
  scratch: BufferRef;
}

function declareBuffers(k: KernelBuilder, tableElem: 'i8' | 'f32', hasBias: boolean, blockSums: boolean): Buffers {
  // Calling convention: present inputs in order, the output, then the scratch buffer.
  const tables = k.buffer('tables', tableElem, 'read');
  const tableScales = k.buffer('table_scales', 'f32', 'read');
  const actSums = k.buffer('act_sums', 'f32', 'read');
  const planes = k.buffer('planes', 'u8', 'read');
  const scales = k.buffer('scales', 'f32', 'read');
  const offsets = k.buffer('offsets', 'f32', 'read');
  const bias = hasBias ? k.buffer('bias', 'f32', 'read') : undefined;
  const y = k.buffer('y', blockSums ? 'i32' : 'f32', 'write');
  const scratch = k.buffer('scratch', 'i8', 'readwrite');
  return { tables, tableScales, actSums, planes, scales, offsets, bias, y, scratch };
}

/** Byte lanes of the signed 16-entry table of the half at lanes [from, from+8) of v / −v. */
function fullTableLanes(from: number): number[] {
  const lanes: number[] = [];
  for (let i = 0; i < 8; i++) lanes.push(from + i);
  for (let i = 7; i >= 0; i--) lanes.push(16 + from + i);
  return lanes;
}

function buildFast(name: string, p: LutMatMulParams, hasBias: boolean, options: LutMatMulBuildOptions): Kernel {
  const k = new KernelBuilder(name);
  const buf = declareBuffers(k, 'i8', hasBias, options.blockSums ?? false);
  const scratch = buf.scratch;
  const M = k.scalar('M');
  const { bits, groups, blocks, lookups, N } = p;
  const tiles = N / TILE_ROWS;
  const bounds = accumulationBounds(bits, p.g, p.groupSize);
  let unroll = options.unroll ?? 2;
  while (lookups % unroll !== 0) unroll--;

  // 1. Signed 16-entry tables: scratch[(m·groups + j)·16 + idx].
  k.loop('mt', 0, M, (m) => {
    const src = k.let('src', mul(m, groups * 8));
    const dst = k.let('dst', mul(m, groups * 16));
    k.loop('jp', 0, groups / 2, (jp) => {
      const v = k.let('v', buf.tables.loadVec(add(src, mul(jp, 16)), 'i8x16'));
      const nv = k.let('nv', neg(v));
      const at = k.let('at', add(dst, mul(jp, 32)));
      scratch.storeVec(at, { kind: 'shuffle', a: v, b: nv, lanes: fullTableLanes(0), type: 'i8x16' });
      scratch.storeVec(add(at, 16), { kind: 'shuffle', a: v, b: nv, lanes: fullTableLanes(8), type: 'i8x16' });
    });
  });

  const zero16 = constant('i16x8', 0);
  // Rows outer: one row's 16-entry tables (K/g·16 bytes) stay in L1 while the weights stream.
  k.loop('m', 0, M, (m) => {
    const tabBase = k.let('tb', mul(m, groups * 16));
    k.loop('t', 0, tiles, (t) => {
      const n0 = k.let('n0', mul(t, TILE_ROWS));
      // Byte offset of plane p's indices of this tile, group 0.
      const planeBase = Array.from({ length: bits }, (_, pl) => k.let(`pb${pl}`, mul(add(t, pl * tiles), groups * 16)));
      const rowAcc = options.blockSums ? [] : Array.from({ length: TILE_ROWS }, (_, r) => k.mut(`y${r}`, f32(0)));
      k.loop('blk', 0, blocks, (blk) => {
        const accs = Array.from({ length: bits }, (_, pl) => [k.mut(`a${pl}lo`, zero16), k.mut(`a${pl}hi`, zero16)]);
        const start = k.let('js', mul(blk, lookups * 16));
        k.loop('jo', start, add(start, lookups * 16), (jo) => {
          for (let u = 0; u < unroll; u++) {
            const tab = k.let('tab', scratch.loadVec(add(add(tabBase, jo), u * 16), 'i8x16'));
            for (let pl = 0; pl < bits; pl++) {
              const idx = buf.planes.loadVec(add(add(planeBase[pl], jo), u * 16), 'u8x16');
              const hit = k.let('hit', lookup16(tab, idx, 'i8x16'));
              k.set(accs[pl][0], add(accs[pl][0], widen('low', true, hit)));
              k.set(accs[pl][1], add(accs[pl][1], widen('high', true, hit)));
            }
          }
        }, { step: unroll * 16 });
        // The block's integer sums of 16 rows, as four i32x4 (rows 0–3, 4–7, 8–11, 12–15).
        const quarters: Expr[] = [];
        if (bounds.blockFitsInt16) {
          for (const h of [0, 1]) {
            let c: Expr = accs[0][h];
            for (let pl = 1; pl < bits; pl++) c = add(c, shl(accs[pl][h], pl));
            const combined = k.let(`c${h}`, c);
            quarters.push(widen('low', true, combined), widen('high', true, combined));
          }
        } else {
          for (const h of [0, 1]) {
            for (const half of ['low', 'high'] as const) {
              let c: Expr = widen(half, true, accs[0][h]);
              for (let pl = 1; pl < bits; pl++) c = add(c, shl(widen(half, true, accs[pl][h]), pl));
              quarters.push(c);
            }
          }
        }
        if (options.blockSums) {
          quarters.forEach((q, i) => {
            // y_sums[m, n, blk] for the 4 rows of quarter i.
            const qv = k.let(`q${i}`, q);
            for (let lane = 0; lane < 4; lane++) {
              const n = add(n0, i * 4 + lane);
              buf.y.store(add(mul(add(mul(m, N), n), blocks), blk), extract(qv, lane));
            }
          });
          return;
        }
        const ts = k.let('ts', splat(buf.tableScales.load(add(mul(m, blocks), blk)), 'f32x4'));
        quarters.forEach((q, i) => {
          const scaled = k.let(`f${i}`, mul(cast(q, 'f32x4'), ts));
          for (let lane = 0; lane < 4; lane++) {
            const r = i * 4 + lane;
            const s = buf.scales.load(add(mul(add(n0, r), blocks), blk));
            k.set(rowAcc[r], add(rowAcc[r], mul(s, extract(scaled, lane))));
          }
        });
      });
      if (options.blockSums) return;
      // Offsets term: Σ_blk offsets[n, blk]·act_sums[m, blk], a dot over blocks per row.
      const sumsBase = k.let('sb', mul(m, blocks));
      const vecBlocks = blocks - (blocks % 4);
      for (let r = 0; r < TILE_ROWS; r++) {
        const rowBase = k.let('ob', mul(add(n0, r), blocks));
        let off: Expr = f32(0);
        if (vecBlocks > 0) {
          const dot = k.mut('dot', constant('f32x4', 0));
          k.loop('bv', 0, vecBlocks, (bv) => {
            k.set(dot, add(dot, mul(buf.offsets.loadVec(add(rowBase, bv), 'f32x4'), buf.actSums.loadVec(add(sumsBase, bv), 'f32x4'))));
          }, { step: 4 });
          off = reduce('add', dot);
        }
        const offAcc = k.mut('off', off);
        for (let b = vecBlocks; b < blocks; b++) {
          k.set(offAcc, add(offAcc, mul(buf.offsets.load(add(rowBase, b)), buf.actSums.load(add(sumsBase, b)))));
        }
        let value: Expr = add(rowAcc[r], offAcc);
        if (buf.bias) value = add(value, buf.bias.load(add(n0, r)));
        buf.y.store(add(mul(m, N), add(n0, r)), value);
      }
    }, { parallel: true });
  });
  return k.build();
}

function buildGeneric(name: string, p: LutMatMulParams, tableElem: 'i8' | 'f32', hasBias: boolean, options: LutMatMulBuildOptions): Kernel {
  const k = new KernelBuilder(name);
  const buf = declareBuffers(k, tableElem, hasBias, options.blockSums ?? false);
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
            const at = add(mul(add(mul(add(tile, pl * (N / rowsPerTile)), groups), j), rowsPerTile), tileRow);
            const index = k.let('ix', buf.planes.load(at));
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
        const w = k.let('w', add(mul(n, blocks), blk));
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
  if (!options.generic && fastPathBlocker(p, tableDtype) === undefined) return buildFast(ctx.name, p, hasBias, options);
  return buildGeneric(ctx.name, p, tableDtype, hasBias, options);
}

/** M: the product of the tables' leading dims ([..., K/g, 2^(g−1)]). */
function tableRows(shapes: LaunchShapes): number {
  return leadingDims(shapes.inputs[0], 2);
}

function usesFastPath(node: Node, tableDtype: string): boolean {
  return fastPathBlocker(lutMatMulParams(node), tableDtype) === undefined;
}

export const lutMatMulKernel: WasmKernelDef = {
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
  build: (ctx) => buildLutMatMul(ctx),
  args(_node: Node, shapes: LaunchShapes): number[] {
    return [tableRows(shapes)];
  },
  scratchBytes(node: Node, shapes: LaunchShapes): number {
    // Only the fast path uses scratch, but the convention passes one whenever this is defined.
    const p = lutMatMulParams(node);
    const M = tableRows(shapes);
    return usesFastPath(node, 'i8') ? M * p.groups * 16 : 16;
  },
};
