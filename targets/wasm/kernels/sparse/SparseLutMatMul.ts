import {
  KernelBuilder, add, and, cast, constant, div, extract, f32, lookup16, mul, neg, or, rem, select, shl, shr, shuffle, widen, xor,
  type BufferRef,
} from '../../../../codegen/builder.js';
import type { Expr, Kernel } from '../../../../codegen/kernel.js';
import type { Node } from '../../../../ir/graph.js';
import { Attrs } from '../../../../ir/ops/attrs.js';
import { sparseLutMatMulAttrs, type SparseLutMatMulAttrs } from '../../../../ir/ops/llmcc/SparseLutMatMul.js';
import { sparseBlockBound, sparseTableLayout } from '../../../../passes/sparsity/lut.js';
import type { KernelBuildContext, LaunchShapes, WasmKernelDef } from '../../kernel-def.js';
import { INT16_LOOKUPS, TILE_ROWS, leadingDims } from '../lut/common.js';

/**
 * llmcc.SparseLutMatMul on wasm (semantics: ir/ops/llmcc/SparseLutMatMul.ts,
 * passes/sparsity/lut.ts).
 *
 * Fast path for 2:4 (int8 tables, rows_per_tile = 16, int16-safe blocks): a group's table is 16
 * bytes (12 entries + 4 zero slots), so one load gives the table T and one `neg` gives −T for
 * every plane of all 16 rows. A plane byte e | 16·sign selects T[e] through
 * `lookup16(T, idx)` (0 when the sign bit puts idx ≥ 16) plus `lookup16(−T, idx ^ 16)` (0 when
 * it does not): two lookups and an xor against the dense kernel's one lookup, so per group the
 * sparse kernel does more work than the dense one over the same 4 positions; see the bench.
 * The offset term J (when the node has offsets) is −T[e & ~1]: `lookup16(−T, idx & 14)`.
 * Fast path for 1:4 (group_size a multiple of 16): one load holds 4 groups' 4-entry tables; one
 * shuffle per group makes the signed table [T, −T], which a plane byte e | 4·sign indexes
 * directly (one lookup, as dense); J is `lookup16([T, −T], idx | 4)`.
 * Lookups accumulate in int16 (both halves) per block; I = Σ_p 2^p·acc_p is exact.
 * Generic path: a scalar loop in the reference's order (exact integers for int8 tables).
 *
 * `blockSums: true` (tests) writes the int32 (I, J) pairs [M, N, blocks, 2] instead of Y.
 */

export interface SparseLutMatMulBuildOptions {
  blockSums?: boolean;
  generic?: boolean;
  /** Groups per unrolled inner step of the fast path (default 2). */
  unroll?: number;
}

export function sparseFastPathBlocker(p: SparseLutMatMulAttrs, tableDtype: string): string | undefined {
  if (tableDtype !== 'i8') return 'f32 tables';
  const twoOfFour = p.pattern.n === 2 && p.pattern.m === 4;
  const oneOfFour = p.pattern.n === 1 && p.pattern.m === 4;
  if (!twoOfFour && !oneOfFour) return `sparsity ${p.pattern.n}:${p.pattern.m} (needs 2:4 or 1:4)`;
  if (oneOfFour && (p.groupSize / 4) % 4 !== 0) return 'group_size not a multiple of 16 (1:4 reads 4 groups\' tables per load)';
  if (p.rowsPerTile !== TILE_ROWS) return `rows_per_tile = ${p.rowsPerTile} (needs ${TILE_ROWS})`;
  if (p.groupSize / p.pattern.m > INT16_LOOKUPS) return `group_size/m = ${p.groupSize / p.pattern.m} lookups overflow int16`;
  return undefined;
}

interface Buffers {
  tables: BufferRef;
  tableScales: BufferRef;
  planes: BufferRef;
  scales: BufferRef;
  offsets?: BufferRef;
  bias?: BufferRef;
  y: BufferRef;
}

function declareBuffers(k: KernelBuilder, tableElem: 'i8' | 'f32', hasOffsets: boolean, hasBias: boolean, blockSums: boolean): Buffers {
  // Calling convention: present inputs in order, then the output.
  return {
    tables: k.buffer('tables', tableElem, 'read'),
    tableScales: k.buffer('table_scales', 'f32', 'read'),
    planes: k.buffer('planes', 'u8', 'read'),
    scales: k.buffer('scales', 'f32', 'read'),
    offsets: hasOffsets ? k.buffer('offsets', 'f32', 'read') : undefined,
    bias: hasBias ? k.buffer('bias', 'f32', 'read') : undefined,
    y: k.buffer('y', blockSums ? 'i32' : 'f32', 'write'),
  };
}

function buildFast(name: string, p: SparseLutMatMulAttrs, hasOffsets: boolean, hasBias: boolean, options: SparseLutMatMulBuildOptions): Kernel {
  const k = new KernelBuilder(name);
  const buf = declareBuffers(k, 'i8', hasOffsets, hasBias, options.blockSums ?? false);
  const M = k.scalar('M');
  const { bits, groups, blocks, N } = p;
  const lookups = p.groupSize / p.pattern.m;
  const tiles = N / TILE_ROWS;
  const blockFitsInt16 = sparseBlockBound(bits, p.pattern, p.groupSize) <= 32767;
  const zero16 = constant('i16x8', 0);
  const signBit = constant('u8x16', 16);
  const pairMask = constant('u8x16', 14);
  const fourBit = constant('u8x16', 4);
  const slots = sparseTableLayout(p.pattern).slots;
  let unroll = options.unroll ?? 1;
  while (lookups % unroll !== 0) unroll--;

  k.loop('m', 0, M, (m) => {
    const tabBase = k.let('tb', mul(m, groups * slots));
    k.loop('t', 0, tiles, (t) => {
      const n0 = k.let('n0', mul(t, TILE_ROWS));
      const planeBase = Array.from({ length: bits }, (_, pl) => k.let(`pb${pl}`, mul(add(t, pl * tiles), groups * 16)));
      const rowAcc = options.blockSums ? [] : Array.from({ length: TILE_ROWS }, (_, r) => k.mut(`y${r}`, f32(0)));
      k.loop('blk', 0, blocks, (blk) => {
        const accs = Array.from({ length: bits }, (_, pl) => [k.mut(`a${pl}lo`, zero16), k.mut(`a${pl}hi`, zero16)]);
        const onesAcc = hasOffsets ? [k.mut('olo', zero16), k.mut('ohi', zero16)] : [];
        const start = k.let('js', mul(blk, lookups * 16));
        /** Accumulates one group's lookups for every plane, given its signed lookup. */
        const accumulate = (jo: Expr, u: number, lookup: (idx: Expr) => Expr, ones: (idx: Expr) => Expr): void => {
          for (let pl = 0; pl < bits; pl++) {
            const idx = k.let('idx', buf.planes.loadVec(add(add(planeBase[pl], jo), u * 16), 'u8x16'));
            const hit = k.let('hit', lookup(idx));
            k.set(accs[pl][0], add(accs[pl][0], widen('low', true, hit)));
            k.set(accs[pl][1], add(accs[pl][1], widen('high', true, hit)));
            if (pl === 0 && hasOffsets) {
              const one = k.let('one', ones(idx));
              k.set(onesAcc[0], add(onesAcc[0], widen('low', true, one)));
              k.set(onesAcc[1], add(onesAcc[1], widen('high', true, one)));
            }
          }
        };
        if (slots === 16) {
          // 2:4: one group's 12 entries (+4 zero slots) per load; the sign bit is 16.
          k.loop('jo', start, add(start, lookups * 16), (jo) => {
            for (let u = 0; u < unroll; u++) {
              const tab = k.let('tab', buf.tables.loadVec(add(add(tabBase, jo), u * 16), 'i8x16'));
              const negTab = k.let('ntab', neg(tab));
              accumulate(jo, u,
                (idx) => add(lookup16(tab, idx, 'i8x16'), lookup16(negTab, xor(idx, signBit), 'i8x16')),
                (idx) => lookup16(negTab, and(idx, pairMask), 'i8x16'));
            }
          }, { step: unroll * 16 });
        } else {
          // 1:4: 4 groups' tables (4 entries each) per load; each group's signed 8-entry table
          // [T, −T] is one shuffle, and a plane byte e | 4·sign indexes it directly.
          k.loop('jo', start, add(start, lookups * 16), (jo) => {
            const four = k.let('tab4', buf.tables.loadVec(add(tabBase, shr(jo, 2)), 'i8x16'));
            const negFour = k.let('ntab4', neg(four));
            for (let u = 0; u < 4; u++) {
              const lanes = [0, 1, 2, 3].map((e) => 4 * u + e);
              const full = k.let('full', shuffle(four, negFour, [...lanes, ...lanes.map((l) => 16 + l), ...lanes, ...lanes.map((l) => 16 + l)]));
              accumulate(jo, u, (idx) => lookup16(full, idx, 'i8x16'), (idx) => lookup16(full, or(idx, fourBit), 'i8x16'));
            }
          }, { step: 64 });
        }
        // Block sums of 16 rows as four i32x4 (rows 0–3, 4–7, 8–11, 12–15).
        const quarters: Expr[] = [];
        for (const h of [0, 1]) {
          if (blockFitsInt16) {
            let c: Expr = accs[0][h];
            for (let pl = 1; pl < bits; pl++) c = add(c, shl(accs[pl][h], pl));
            const combined = k.let(`c${h}`, c);
            quarters.push(widen('low', true, combined), widen('high', true, combined));
          } else {
            for (const half of ['low', 'high'] as const) {
              let c: Expr = widen(half, true, accs[0][h]);
              for (let pl = 1; pl < bits; pl++) c = add(c, shl(widen(half, true, accs[pl][h]), pl));
              quarters.push(c);
            }
          }
        }
        const onesQuarters = hasOffsets ? [0, 1].flatMap((h) => [widen('low', true, onesAcc[h]), widen('high', true, onesAcc[h])]) : [];
        if (options.blockSums) {
          quarters.forEach((q, i) => {
            const qv = k.let(`q${i}`, q);
            const ov = hasOffsets ? k.let(`o${i}`, onesQuarters[i]) : undefined;
            for (let lane = 0; lane < 4; lane++) {
              const at = k.let('at', mul(add(mul(add(mul(m, N), add(n0, i * 4 + lane)), blocks), blk), 2));
              buf.y.store(at, extract(qv, lane));
              buf.y.store(add(at, 1), ov ? extract(ov, lane) : constant('i32', 0));
            }
          });
          return;
        }
        const ts = k.let('ts', buf.tableScales.load(add(mul(m, blocks), blk)));
        quarters.forEach((q, i) => {
          const qf = k.let(`f${i}`, cast(q, 'f32x4'));
          const of = hasOffsets ? k.let(`g${i}`, cast(onesQuarters[i], 'f32x4')) : undefined;
          for (let lane = 0; lane < 4; lane++) {
            const r = i * 4 + lane;
            const w = k.let('w', add(mul(add(n0, r), blocks), blk));
            let term: Expr = mul(buf.scales.load(w), extract(qf, lane));
            if (of && buf.offsets) term = add(term, mul(buf.offsets.load(w), extract(of, lane)));
            k.set(rowAcc[r], add(rowAcc[r], mul(ts, term)));
          }
        });
      });
      if (options.blockSums) return;
      for (let r = 0; r < TILE_ROWS; r++) {
        let value: Expr = rowAcc[r];
        if (buf.bias) value = add(value, buf.bias.load(add(n0, r)));
        buf.y.store(add(mul(m, N), add(n0, r)), value);
      }
    }, { parallel: true });
  });
  return k.build();
}

function buildGeneric(name: string, p: SparseLutMatMulAttrs, tableElem: 'i8' | 'f32', hasOffsets: boolean, hasBias: boolean, options: SparseLutMatMulBuildOptions): Kernel {
  const k = new KernelBuilder(name);
  const buf = declareBuffers(k, tableElem, hasOffsets, hasBias, options.blockSums ?? false);
  const M = k.scalar('M');
  const { bits, groups, blocks, N, rowsPerTile } = p;
  const layout = sparseTableLayout(p.pattern);
  const lookups = p.groupSize / p.pattern.m;
  const sumType = tableElem === 'i8' ? 'i32' : 'f32';
  const slotMask = layout.slots - 1;
  /** ±T[e] of plane byte `index` in the table at `base`. */
  const lookup = (base: Expr, index: Expr): Expr => {
    const value = k.let('v', buf.tables.load(add(base, and(index, slotMask))));
    return k.let('lv', select(and(index, layout.slots), neg(value), value));
  };
  k.loop('m', 0, M, (m) => {
    k.loop('n', 0, N, (n) => {
      const tile = k.let('tile', div(n, rowsPerTile));
      const tileRow = k.let('tr', rem(n, rowsPerTile));
      const acc = k.mut('acc', f32(0));
      k.loop('blk', 0, blocks, (blk) => {
        const total = k.mut('total', constant(sumType, 0));
        const ones = k.mut('ones', constant(sumType, 0));
        for (let pl = 0; pl < bits; pl++) {
          const planeSum = k.mut(`ps${pl}`, constant(sumType, 0));
          k.loop('j', mul(blk, lookups), mul(add(blk, 1), lookups), (j) => {
            const at = add(mul(add(mul(add(tile, pl * (N / rowsPerTile)), groups), j), rowsPerTile), tileRow);
            const index = k.let('ix', buf.planes.load(at));
            const base = k.let('tb', mul(add(mul(m, groups), j), layout.slots));
            k.set(planeSum, add(planeSum, lookup(base, index)));
            if (pl === 0 && hasOffsets) {
              // The all-ones pattern of the byte's choice: −T[e − e mod half].
              const e = k.let('e', and(index, slotMask));
              k.set(ones, add(ones, neg(buf.tables.load(add(base, mul(div(e, layout.half), layout.half))))));
            }
          });
          k.set(total, add(total, pl === 0 ? planeSum : (sumType === 'i32' ? shl(planeSum, pl) : mul(planeSum, 2 ** pl))));
        }
        if (options.blockSums) {
          const at = k.let('at', mul(add(mul(add(mul(m, N), n), blocks), blk), 2));
          buf.y.store(at, sumType === 'i32' ? total : cast(total, 'i32'));
          buf.y.store(add(at, 1), sumType === 'i32' ? ones : cast(ones, 'i32'));
          return;
        }
        const w = k.let('w', add(mul(n, blocks), blk));
        const ts = buf.tableScales.load(add(mul(m, blocks), blk));
        let term: Expr = mul(buf.scales.load(w), sumType === 'i32' ? cast(total, 'f32') : total);
        if (buf.offsets) term = add(term, mul(buf.offsets.load(w), sumType === 'i32' ? cast(ones, 'f32') : ones));
        k.set(acc, add(acc, mul(ts, term)));
      });
      if (options.blockSums) return;
      buf.y.store(add(mul(m, N), n), buf.bias ? add(acc, buf.bias.load(n)) : acc);
    });
  });
  return k.build();
}

export function buildSparseLutMatMul(ctx: KernelBuildContext, options: SparseLutMatMulBuildOptions = {}): Kernel {
  const p = sparseLutMatMulAttrs(new Attrs(ctx.node));
  const tableDtype = ctx.inputs[0]?.dtype === 'f32' ? 'f32' : 'i8';
  const hasOffsets = !!ctx.node.inputs[4];
  const hasBias = !!ctx.node.inputs[5];
  if (!options.generic && sparseFastPathBlocker(p, tableDtype) === undefined) return buildFast(ctx.name, p, hasOffsets, hasBias, options);
  return buildGeneric(ctx.name, p, tableDtype, hasOffsets, hasBias, options);
}

export const sparseLutMatMulKernel: WasmKernelDef = {
  domain: 'llmcc',
  op: 'SparseLutMatMul',
  check(ctx) {
    const tables = ctx.inputs[0];
    if (!tables) return 'missing tables';
    if (tables.dtype !== 'i8' && tables.dtype !== 'f32') return `tables of type ${tables.dtype}`;
    sparseLutMatMulAttrs(new Attrs(ctx.node));
    return undefined;
  },
  build: (ctx) => buildSparseLutMatMul(ctx),
  args(_node: Node, shapes: LaunchShapes): number[] {
    return [leadingDims(shapes.inputs[0], 2)];
  },
};
