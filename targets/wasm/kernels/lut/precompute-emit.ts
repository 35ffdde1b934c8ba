import {
  KernelBuilder, abs, add, cast, constant, div, eq, f32, max, min, mul, nearest, select, sub, type BufferRef,
} from '../../../../codegen/builder.js';
import type { Expr } from '../../../../codegen/kernel.js';
import { TABLE_CODE_MAX, signOf, storedEntries, type TableKind } from '../../../../passes/lut/tables.js';

/**
 * Emits the table precompute of one activation row, shared by LutPrecompute and
 * NormLutPrecompute (math: passes/lut/tables.ts). Entries are summed in f32 in t order (the
 * reference's exact rounding), int8 scales and codes use IEEE f32 division and ties-to-even,
 * so tables and table scales match the reference bit for bit. Activation sums, which the
 * reference adds in f64, are added in double-f32 (TwoSum) and rounded once: equal to the f64
 * result except in rare double-rounding cases.
 */
export interface PrecomputeRow {
  K: number;
  g: number;
  groupSize: number;
  table: TableKind;
  /** Activation k of the row (already scaled). */
  activation: (k: Expr) => Expr;
  tables: BufferRef;
  tableScales: BufferRef;
  actSums: BufferRef;
  /** Row index m. */
  row: Expr;
}

export function emitPrecomputeRow(k: KernelBuilder, p: PrecomputeRow): void {
  const { K, g, groupSize } = p;
  const half = storedEntries(g);
  const groups = K / g;
  const blocks = K / groupSize;
  const perBlock = groupSize / g;
  const rowGroups = k.let('rg', mul(p.row, groups));

  /** The half entries of group j, from g activations loaded once. */
  const entriesOf = (j: Expr): Expr[] => {
    const acts = Array.from({ length: g }, (_, t) => k.let(`x${t}`, p.activation(add(mul(j, g), t))));
    return Array.from({ length: half }, (_, e) => {
      let acc: Expr = f32(0);
      for (let t = 0; t < g; t++) acc = signOf(e, t) > 0 ? add(acc, acts[t]) : sub(acc, acts[t]);
      return k.let(`e${e}`, acc);
    });
  };

  k.loop('blk', 0, blocks, (blk) => {
    const first = k.let('j0', mul(blk, perBlock));
    // Σ a over the block in double-f32: hi + lo carries the exact running sum's error.
    const hi = k.mut('hi', f32(0));
    const lo = k.mut('lo', f32(0));
    k.loop('ka', mul(blk, groupSize), mul(add(blk, 1), groupSize), (ka) => {
      const x = k.let('xa', p.activation(ka));
      const s = k.let('s', add(hi, x));
      const bv = k.let('bv', sub(s, hi));
      k.set(lo, add(lo, add(sub(hi, sub(s, bv)), sub(x, bv))));
      k.set(hi, s);
    });
    p.actSums.store(add(mul(p.row, blocks), blk), add(hi, lo));

    if (p.table === 'f32') {
      k.loop('j', first, add(first, perBlock), (j) => {
        const entries = entriesOf(j);
        const base = k.let('tbase', mul(add(rowGroups, j), half));
        entries.forEach((e, i) => p.tables.store(add(base, i), e));
      });
      p.tableScales.store(add(mul(p.row, blocks), blk), f32(1));
      return;
    }
    const maxAbs = k.mut('mx', f32(0));
    k.loop('j', first, add(first, perBlock), (j) => {
      for (const e of entriesOf(j)) k.set(maxAbs, max(maxAbs, abs(e)));
    });
    const scale = k.let('scale', div(maxAbs, f32(TABLE_CODE_MAX)));
    p.tableScales.store(add(mul(p.row, blocks), blk), scale);
    const zero = k.let('zs', eq(scale, f32(0)));
    k.loop('j', first, add(first, perBlock), (j) => {
      const entries = entriesOf(j);
      const base = k.let('tbase', mul(add(rowGroups, j), half));
      entries.forEach((e, i) => {
        const code = min(max(nearest(div(e, scale)), f32(-TABLE_CODE_MAX)), f32(TABLE_CODE_MAX));
        p.tables.store(add(base, i), select(zero, constant('i32', 0), cast(code, 'i32')));
      });
    });
  });
}
