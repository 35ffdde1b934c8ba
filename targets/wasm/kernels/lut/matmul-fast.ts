import {
  KernelBuilder, add, and, bitcast, cast, constant, extract, f32, lookup16, min, mul, neg, pairwiseAdd, shl, shr, shrU, shuffle, splat, sub,
  widen, xor, type BufferRef,
} from '../../../../codegen/builder.js';
import type { Expr, Kernel } from '../../../../codegen/kernel.js';
import { TILE_ROWS, type LutMatMulParams } from './common.js';

/**
 * The fast LutMatMul kernel (int8 tables, g = 4, rows_per_tile = 16); semantics in
 * ir/ops/llmcc/LutMatMul.ts. Hot, the kernel is bound by vector ALU throughput, so what
 * counts is V8's x64 instructions per 16-lane lookup; cold, by the plane bytes it streams:
 *
 *  - Tables are expanded once per call into biased unsigned 16-entry tables in scratch:
 *    entry i = code_i + 128, entry 15 − i = −code_i + 128 (both in 1..255), so a lookup is
 *    one `lookup16` (swizzle: 2 instructions) with no sign fix-up.
 *  - A lookup h (16 rows, one biased byte each) goes into a pair of int16 accumulators,
 *    `accumulate`:
 *      'shift' (default): A += h as i16x8 (even row + 256·odd row, mod 2^16) and
 *        O += h >>u 8 (odd rows): 3 vector ops, no constant. Per block, E = A − 256·O
 *        (mod 2^16) and the even/odd rows are interleaved back (two shuffles).
 *      'widen': h zero-extended into rows 0–7 and 8–15, two adds: 5 x64 instructions (the
 *        high half needs a zeroed register). 'shift' measured 5–13% faster in one process
 *        (K = N = 4096 hot, 2-bit, group 128, Zen 5, V8 11.3, shared 2-core machine, medians
 *        of 6 round-robin rounds: 0.326 vs 0.374 ms; 8192 resident 1.37 vs 1.42–1.45 ms);
 *        separate `bench gemv` runs at 4096 vary more than that. At group 32 the per-block
 *        interleave eats the gain (0.474 vs 0.477 ms). On neon, O += h >>u 8 prints as one
 *        USRA, so both take two instructions per lookup there and the interleave makes
 *        'shift' cost more: the neon target builds 'widen' (knob accumulate = 1,
 *        targets/neon/matmul-choice.ts).
 *      'pairwise': P += pairwise_add_u(h) (even + odd) and A += h as i16x8; A − P = 255·O
 *        and 255⁻¹ ≡ −257 (mod 2^16) give O = (P − A)·257. Two constant loads per lookup in
 *        V8: the slowest (0.42 ms at 4096 hot).
 *    No sign handling: the biased sums are exact while below 2^16, and after subtracting the
 *    bias the signed sums fit int16 (both checked by `planeChunks`); all three recover the
 *    same integers.
 *  - Two indices per byte (indices_per_byte = 2, passes/lut/bitplanes.ts): one 16-byte load
 *    holds groups 2j (low nibbles) and 2j + 1 (high nibbles) of 16 rows; the low nibbles are
 *    v & 0x0F, the high ones (v as i16x8 >> 4) & 0x0F (one shift and the same mask: V8's
 *    i8x16.shr_u builds its own mask at every use). (binaryen puts the mask constant into
 *    the loop; computing it outside from a scalar measured no different.) Half the
 *    plane bytes for 3 more vector ops per pair of lookups: measured (2-bit, 'shift', one
 *    process) 3–10% faster at K = N = 8192 cold (1.51–1.56 vs 1.59–1.70 ms; packed, the
 *    kernel is bound by vector ops again, not by memory), 8% slower at 4096 hot (0.335 vs
 *    0.31 ms), so the compiler packs only planes that outgrow the cache (wasmIndicesPerByte,
 *    common.ts).
 *  - Planes are summed as Σ 2^p·acc_p in int16 (linear, so the bounds above still hold)
 *    in chunks small enough for that bound; chunks are combined in int32.
 *  - Per block, the int32 row sums of 16 rows are four i32x4 (rows 4i..4i+3); they are scaled by table_scale and the weight scales
 *    and accumulated per row in f32x4, with the scales and offsets read as vectors from the
 *    tiled layout [N/16, blocks, 16] (tiled_scales = 1, passes/lut/bitplanes.ts); row-major
 *    scales [N, blocks] cost one scalar multiply-add per row and block instead.
 *  - Loop order: tiles outer, activation rows inner, so a tile's planes are read from memory
 *    once for all M rows (GEMM), while each row's tables come from L1/L2.
 *  - K blocking (`kBlock`; off by default, see DEFAULT_K_BLOCK): K is cut into blocks of
 *    kBlock activations (whole quant blocks) and the tile loop runs inside each, so a block's
 *    tables (4·kBlock bytes per row; 32 KiB for all of K = 8192) stay in L1 while the planes
 *    stream past them. The f32 row sums then live in Y between K blocks (zeroed first, bias
 *    added last): the same f32 additions in the same order, so the output is bit-identical
 *    to the unblocked kernel.
 *
 * `blockSums: true` (tests only) writes the int32 block sums I [M, N, blocks] instead of Y.
 */

/** How the fast kernel adds a lookup's 16 bytes into int16 accumulators (see the file comment). */
export type LutAccumulate = 'widen' | 'pairwise' | 'shift';

/** Measured fastest on x64 V8 (file comment). */
export const DEFAULT_ACCUMULATE: LutAccumulate = 'shift';

export interface FastLutOptions {
  blockSums?: boolean;
  /** Table groups per unrolled inner step (default 1). */
  unroll?: number;
  /** 16-row layout tiles processed together, sharing each table load (default 1: more spill). */
  subtiles?: number;
  /**
   * Add scalar params tile_begin, tile_end after M: the call computes output rows
   * [16·tile_begin, 16·tile_end) only, so threads can split N (bounds multiples of `subtiles`).
   * Every call expands the tables; concurrent calls write identical bytes to the scratch.
   */
  rowRange?: boolean;
  /**
   * How a lookup is accumulated in int16 (see the file comment): 'shift' (default: raw i16 add
   * and a logical shift for the odd rows, measured fastest), 'widen' (zero-extend both halves)
   * or 'pairwise'. All give the same integers.
   */
  accumulate?: LutAccumulate;
  /** Loop over a chunk's planes inside the group loop (default: when 2·planes·subtiles ≤ 8). */
  planesInner?: boolean;
  /**
   * Activations per K block (rounded down to whole quant blocks, at least one); 0 or ≥ K: no
   * blocking. Default DEFAULT_K_BLOCK.
   */
  kBlock?: number;
}

/**
 * Activations per K block by default: none. Measured on x64 (Zen 5, V8 12; shared machine,
 * round-robin in one process), 2-bit: K blocks of 1024–4096 are 1.9–2.9× slower than one pass
 * at K = N = 4096 and 8192, hot and cold, and still 1.3× slower at K = 8192 with blocks of
 * 8064 + 128 activations; carrying the sums in Y alone costs nothing measurable. The likely
 * cause is the layout [bits, N/16, K/4, 16]: a tile's K block is a short segment 16·K/4 bytes
 * from the next tile's, so the plane loads stop being one sequential stream per plane, which
 * costs more than keeping the tables in L1 saves. Kept as the tuning knob k_block.
 */
export const DEFAULT_K_BLOCK = 0;

/** Quant blocks per K block for `kBlock` activations (undefined: one pass over all of K). */
export function kBlockQuantBlocks(p: LutMatMulParams, kBlock = DEFAULT_K_BLOCK): number | undefined {
  if (!(kBlock > 0) || kBlock >= p.K) return undefined;
  const perBlock = Math.max(1, Math.floor(kBlock / p.groupSize));
  return perBlock >= p.blocks ? undefined : perBlock;
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

/** Calling convention: present inputs in order, the output, then the scratch buffer. */
export function declareLutBuffers(k: KernelBuilder, tableElem: 'i8' | 'f32', hasBias: boolean, blockSums: boolean, readsY = false): Buffers {
  const tables = k.buffer('tables', tableElem, 'read');
  const tableScales = k.buffer('table_scales', 'f32', 'read');
  const actSums = k.buffer('act_sums', 'f32', 'read');
  const planes = k.buffer('planes', 'u8', 'read');
  const scales = k.buffer('scales', 'f32', 'read');
  const offsets = k.buffer('offsets', 'f32', 'read');
  const bias = hasBias ? k.buffer('bias', 'f32', 'read') : undefined;
  const y = k.buffer('y', blockSums ? 'i32' : 'f32', readsY ? 'readwrite' : 'write');
  const scratch = k.buffer('scratch', 'u8', 'readwrite');
  return { tables, tableScales, actSums, planes, scales, offsets, bias, y, scratch };
}

const U16_MAX = 65535;
const I16_MAX = 32767;
const BYTE_BIAS = 128;

/**
 * Splits the planes into chunks [first, first + count) whose int16 sums stay exact: with
 * W = 2^count − 1, the biased sums reach 255·lookups·W (< 2^16 for the recovery) and the
 * signed ones 127·lookups·W (≤ int16 max). Undefined when not even one plane fits.
 */
export function planeChunks(bits: number, lookups: number): { first: number; count: number }[] | undefined {
  const fits = (count: number) => {
    const w = 2 ** count - 1;
    return 255 * lookups * w <= U16_MAX && 127 * lookups * w <= I16_MAX;
  };
  if (!fits(1)) return undefined;
  const chunks: { first: number; count: number }[] = [];
  for (let first = 0; first < bits;) {
    let count = 1;
    while (first + count < bits && fits(count + 1)) count++;
    chunks.push({ first, count });
    first += count;
  }
  return chunks;
}

/** The 16-row tiles one step of the fast kernel covers: the request (default 1), lowered until it divides N/16. */
export function fastSubtiles(p: LutMatMulParams, requested = 1): number {
  let subtiles = Math.max(1, requested);
  while ((p.N / TILE_ROWS) % subtiles !== 0) subtiles--;
  return subtiles;
}

/** Byte lanes of the signed 16-entry table of the half at lanes [from, from+8) of v / −v. */
function fullTableLanes(from: number): number[] {
  const lanes: number[] = [];
  for (let i = 0; i < 8; i++) lanes.push(from + i);
  for (let i = 7; i >= 0; i--) lanes.push(16 + from + i);
  return lanes;
}

/** Byte lanes interleaving the i16 lanes [4h, 4h+4) of a (even rows) and b (odd rows). */
function interleaveLanes(h: number): number[] {
  const lanes: number[] = [];
  for (let i = 4 * h; i < 4 * h + 4; i++) lanes.push(2 * i, 2 * i + 1, 16 + 2 * i, 17 + 2 * i);
  return lanes;
}

/**
 * The pair of int16 terms a lookup's biased bytes h add to the two accumulators:
 * widen: rows 0–7 and 8–15 zero-extended; pairwise: even + odd rows and h as i16 (even +
 * 256·odd, mod 2^16); shift: h as i16 and h >>u 8 (odd rows).
 */
function accumulateTerms(accumulate: LutAccumulate, hit: Expr): [Expr, Expr] {
  switch (accumulate) {
    case 'widen': return [widen('low', false, hit), widen('high', false, hit)];
    case 'pairwise': return [pairwiseAdd(false, hit), bitcast(hit, 'i16x8')];
    case 'shift': return [bitcast(hit, 'i16x8'), shrU(bitcast(hit, 'i16x8'), 8)];
  }
}

/**
 * The two indices of each byte, low nibble then high nibble. The high nibbles come from one
 * i16x8 shift by 4 and the same mask: cheaper in V8 than i8x16.shr_u, which masks itself.
 */
function splitNibbles(k: KernelBuilder, bytes: Expr, mask: Expr): Expr[] {
  const v = k.let('pb', bytes);
  const high = bitcast(shr(bitcast(v, 'i16x8'), 4), 'u8x16');
  return [and(v, mask), and(high, mask)];
}

export function buildFastLutMatMul(name: string, p: LutMatMulParams, hasBias: boolean, options: FastLutOptions): Kernel {
  const k = new KernelBuilder(name);
  const blockSums = options.blockSums ?? false;
  const kBlocks = kBlockQuantBlocks(p, options.kBlock);
  // Row sums carried in Y across K blocks (block sums are written per block anyway).
  const sumsInY = kBlocks !== undefined && !blockSums;
  const buf = declareLutBuffers(k, 'i8', hasBias, blockSums, sumsInY);
  const M = k.scalar('M');
  const tileBegin = options.rowRange ? k.scalar('tile_begin') : 0;
  const tileEnd = options.rowRange ? k.scalar('tile_end') : undefined;
  const { bits, groups, blocks, lookups, N } = p;
  const tiled = p.tiledScales;
  const accumulate = options.accumulate ?? DEFAULT_ACCUMULATE;
  const tiles = N / TILE_ROWS;
  const chunks = planeChunks(bits, lookups);
  if (!chunks) throw new Error(`LutMatMul fast path: ${lookups} lookups per block overflow int16`);
  const subtiles = fastSubtiles(p, options.subtiles);
  // Two indices per byte: one plane load serves groups 2j, 2j + 1 (an inner step is a pair).
  const perByte = p.indicesPerByte;
  if (perByte === 2 && lookups % 2 !== 0) throw new Error(`LutMatMul fast path: ${lookups} lookups per block do not pair up for two indices per byte`);
  const steps = lookups / perByte;
  let unroll = options.unroll ?? 1;
  while (steps % unroll !== 0) unroll--;

  // 1. Biased unsigned 16-entry tables: scratch[(m·groups + j)·16 + idx].
  const biasBytes = constant('i8x16', -BYTE_BIAS);
  k.loop('mt', 0, M, (m) => {
    const src = k.let('src', mul(m, groups * 8));
    const dst = k.let('dst', mul(m, groups * 16));
    k.loop('jp', 0, groups / 2, (jp) => {
      const v = k.let('v', buf.tables.loadVec(add(src, mul(jp, 16)), 'i8x16'));
      const nv = k.let('nv', neg(v));
      const at = k.let('at', add(dst, mul(jp, 32)));
      for (const half of [0, 1]) {
        const full = shuffle(v, nv, fullTableLanes(8 * half));
        buf.scratch.storeVec(half ? add(at, 16) : at, bitcast(xor(full, biasBytes), 'u8x16'));
      }
    });
  });

  // Low nibbles of each byte (two indices per byte).
  const nibbleMask = perByte === 2 ? constant('u8x16', 0x0f) : undefined;
  const zero16 = constant('i16x8', 0);
  const mul257 = constant('i16x8', 257);
  const zeroF32 = constant('f32x4', 0);
  // This call's output rows [rowBegin, rowEnd) (all of N without a row range).
  const rowBegin = typeof tileBegin === 'number' ? 0 : mul(tileBegin, TILE_ROWS);
  const rowEnd = tileEnd === undefined ? N : mul(tileEnd, TILE_ROWS);
  const overRows = (body: (at: Expr, n: Expr) => void) => k.loop('my', 0, M, (m) => {
    k.loop('ny', rowBegin, rowEnd, (n) => body(add(mul(m, N), n), n), { step: 4 });
  });
  if (sumsInY) overRows((at) => buf.y.storeVec(at, zeroF32));

  /** Blocks [blkBegin, blkEnd) of every tile in the row range. */
  const tilePass = (blkBegin: Expr | number, blkEnd: Expr | number) => k.loop('t', tileBegin, tileEnd ?? tiles, (t) => {
    // Plane pl's stored bytes of layout tile t + s, stored group j (a pair of groups with two
    // indices per byte): tileBase + pl·N·G + s·G·16 + 16j, G = groups/perByte stored groups
    // per row (the constant part becomes the load's offset).
    const stored = groups / perByte;
    const tileBase = k.let('tile', mul(t, stored * TILE_ROWS));
    k.loop('m', 0, M, (m) => {
      const tabBase = k.let('tb', mul(m, groups * 16));
      // The group loop runs over table offsets tj (one index per byte; plane offsets are
      // tj + delta + a constant) or over plane offsets pj (two per byte; the pair's tables
      // are at 2·pj + delta).
      const delta = k.let('delta', perByte === 1 ? sub(tileBase, tabBase) : sub(tabBase, mul(tileBase, 2)));
      const planeAt = (jo: Expr, pl: number, s: number, u: number): Expr =>
        add(perByte === 1 ? add(jo, delta) : jo, pl * N * stored + s * stored * TILE_ROWS + u * 16);
      const tableAt = (jo: Expr, u: number, nibble: number): Expr =>
        perByte === 1 ? add(jo, u * 16) : add(add(shl(jo, 1), delta), 32 * u + 16 * nibble);
      // Y index of row r of subtile s (carried sums start from Y, else from 0).
      const yAt = (s: number, r: number): Expr => add(mul(m, N), add(mul(add(t, s), TILE_ROWS), r));
      // Per-row f32 accumulators: f32x4 per 4 rows (tiled scales) or one f32 per row.
      const rowAcc = blockSums ? [] : Array.from({ length: subtiles }, (_, s) =>
        Array.from({ length: 4 }, (_, i) => k.mut(`y${s}_${i}`, sumsInY ? buf.y.loadVec(yAt(s, 4 * i), 'f32x4') : zeroF32)));
      const rowScalars = blockSums || tiled ? [] : Array.from({ length: subtiles }, (_, s) =>
        Array.from({ length: TILE_ROWS }, (_, r) => k.mut(`y${s}r${r}`, sumsInY ? buf.y.load(yAt(s, r)) : f32(0))));
      k.loop('blk', blkBegin, blkEnd, (blk) => {
        const start = k.let('js', perByte === 1 ? add(tabBase, mul(blk, lookups * 16)) : add(tileBase, mul(blk, steps * 16)));
        // Row sums of this block per subtile: four i32x4 (rows 0–3, 4–7, 8–11, 12–15).
        const sums: Expr[][] = Array.from({ length: subtiles }, () => []);
        for (const chunk of chunks) {
          const chunkPlanes = Array.from({ length: chunk.count }, (_, i) => chunk.first + i);
          // The chunk's pair of int16 accumulators (per subtile); the first plane adds into them.
          const tot = {
            first: Array.from({ length: subtiles }, (_, s) => k.mut(`acc0_${s}`, zero16)),
            second: Array.from({ length: subtiles }, (_, s) => k.mut(`acc1_${s}`, zero16)),
          };
          // Planes inner (one table load for all planes) while the accumulators fit registers.
          const planesInner = options.planesInner ?? 2 * chunk.count * subtiles <= 8;
          const passes = planesInner ? [chunkPlanes] : chunkPlanes.map((pl) => [pl]);
          for (const pass of passes) {
            const accs = pass.map((pl) => {
              const own = pl === chunk.first;
              return {
                pl, own,
                first: own ? tot.first : Array.from({ length: subtiles }, (_, s) => k.mut(`p${pl}_${s}`, zero16)),
                second: own ? tot.second : Array.from({ length: subtiles }, (_, s) => k.mut(`a${pl}_${s}`, zero16)),
              };
            });
            k.loop('jo', start, add(start, steps * 16), (jo) => {
              for (let u = 0; u < unroll; u++) {
                const tabs = Array.from({ length: perByte }, (_, h) => k.let(`tab${h}`, buf.scratch.loadVec(tableAt(jo, u, h), 'u8x16')));
                for (const acc of accs) {
                  for (let s = 0; s < subtiles; s++) {
                    const bytes = buf.planes.loadVec(planeAt(jo, acc.pl, s, u), 'u8x16');
                    const indices = nibbleMask ? splitNibbles(k, bytes, nibbleMask) : [bytes];
                    indices.forEach((idx, h) => {
                      const hit = k.let('hit', lookup16(tabs[h], idx, 'u8x16'));
                      const [first, second] = accumulateTerms(accumulate, hit);
                      k.set(acc.first[s], add(acc.first[s], first));
                      k.set(acc.second[s], add(acc.second[s], second));
                    });
                  }
                }
              }
            }, { step: unroll * 16 });
            for (const acc of accs) {
              if (acc.own) continue;
              const shift = acc.pl - chunk.first;
              for (let s = 0; s < subtiles; s++) {
                k.set(tot.first[s], add(tot.first[s], shl(acc.first[s], shift)));
                k.set(tot.second[s], add(tot.second[s], shl(acc.second[s], shift)));
              }
            }
          }
          for (let s = 0; s < subtiles; s++) {
            // Signed row sums of the chunk: rows 0–7 and 8–15 (the bias is exact in int16).
            const bias = BYTE_BIAS * lookups * (2 ** chunk.count - 1);
            let rowHalves: Expr[];
            if (accumulate === 'widen') {
              rowHalves = [sub(tot.first[s], bias), sub(tot.second[s], bias)];
            } else {
              // pairwise: A − P = 255·O, 255⁻¹ ≡ −257; shift: O summed apart, E = A − 256·O.
              const odd = k.let('odd', accumulate === 'pairwise' ? mul(sub(tot.first[s], tot.second[s]), mul257) : tot.second[s]);
              const even = k.let('even', accumulate === 'pairwise' ? sub(sub(tot.first[s], odd), bias) : sub(sub(tot.first[s], shl(odd, 8)), bias));
              const oddTrue = k.let('oddt', sub(odd, bias));
              rowHalves = [0, 1].map((h) => shuffle(even, oddTrue, interleaveLanes(h)));
            }
            for (const h of [0, 1]) {
              const rows = k.let(`r${h}`, rowHalves[h]);
              for (const half of ['low', 'high'] as const) {
                const q = widen(half, true, rows);
                const i = 2 * h + (half === 'low' ? 0 : 1);
                sums[s][i] = sums[s][i] === undefined ? q : add(sums[s][i], shl(q, chunk.first));
              }
            }
            if (chunks.length > 1) sums[s] = sums[s].map((q, i) => k.let(`q${s}_${i}`, q));
          }
        }
        if (blockSums) {
          sums.forEach((quarters, s) => quarters.forEach((q, i) => {
            const qv = k.let(`q${i}`, q);
            for (let lane = 0; lane < 4; lane++) {
              const n = add(mul(add(t, s), TILE_ROWS), i * 4 + lane);
              buf.y.store(add(mul(add(mul(m, N), n), blocks), blk), extract(qv, lane));
            }
          }));
          return;
        }
        const ts = k.let('ts', splat(buf.tableScales.load(add(mul(m, blocks), blk)), 'f32x4'));
        const as = k.let('as', splat(buf.actSums.load(add(mul(m, blocks), blk)), 'f32x4'));
        sums.forEach((quarters, s) => {
          if (tiled) {
            // Tiled scales/offsets: element (n, blk) at ((n/16)·blocks + blk)·16 + n%16.
            const wBase = k.let('wb', mul(add(mul(add(t, s), blocks), blk), TILE_ROWS));
            quarters.forEach((q, i) => {
              const scaled = mul(cast(q, 'f32x4'), ts);
              const sc = buf.scales.loadVec(add(wBase, 4 * i), 'f32x4');
              const off = buf.offsets.loadVec(add(wBase, 4 * i), 'f32x4');
              k.set(rowAcc[s][i], add(rowAcc[s][i], add(mul(scaled, sc), mul(off, as))));
            });
            return;
          }
          // Row-major scales/offsets [N, blocks]: one scalar per row.
          const asScalar = extract(as, 0);
          quarters.forEach((q, i) => {
            const scaled = k.let(`f${i}`, mul(cast(q, 'f32x4'), ts));
            for (let lane = 0; lane < 4; lane++) {
              const r = 4 * i + lane;
              const w = k.let('w', add(mul(add(mul(add(t, s), TILE_ROWS), r), blocks), blk));
              const term = add(mul(buf.scales.load(w), extract(scaled, lane)), mul(buf.offsets.load(w), asScalar));
              k.set(rowScalars[s][r], add(rowScalars[s][r], term));
            }
          });
        });
      });
      if (blockSums) return;
      if (sumsInY) {
        for (let s = 0; s < subtiles; s++) {
          if (tiled) rowAcc[s].forEach((acc, i) => buf.y.storeVec(yAt(s, 4 * i), acc));
          else rowScalars[s].forEach((acc, r) => buf.y.store(yAt(s, r), acc));
        }
        return;
      }
      for (let s = 0; s < subtiles; s++) {
        for (let i = 0; i < 4; i++) {
          const n = k.let('n', add(mul(add(t, s), TILE_ROWS), 4 * i));
          if (tiled) {
            let value: Expr = rowAcc[s][i];
            if (buf.bias) value = add(value, buf.bias.loadVec(n, 'f32x4'));
            buf.y.storeVec(add(mul(m, N), n), value);
            continue;
          }
          for (let lane = 0; lane < 4; lane++) {
            let value: Expr = rowScalars[s][4 * i + lane];
            if (buf.bias) value = add(value, buf.bias.load(add(n, lane)));
            buf.y.store(add(add(mul(m, N), n), lane), value);
          }
        }
      }
    });
  }, { parallel: true, step: subtiles });

  if (kBlocks === undefined) {
    tilePass(0, blocks);
  } else {
    k.loop('kb', 0, blocks, (kb) => tilePass(kb, k.let('kbe', min(add(kb, kBlocks), blocks))), { step: kBlocks });
  }
  // The bias is added after the last K block, as the unblocked kernel adds it to the final sum.
  const bias = buf.bias;
  if (sumsInY && bias) overRows((at, n) => buf.y.storeVec(at, add(buf.y.loadVec(at, 'f32x4'), bias.loadVec(n, 'f32x4'))));
  return k.build();
}

