import { LlmccError } from '../../ir/errors.js';
import { defaultZeroPoint } from '../../ir/ops/llmcc/QuantMatMul.js';

/**
 * The weight layout of llmcc.QuantMatMulQ8 ("dot4"), made for `vdotq_s32` with one
 * activation quad broadcast to all lanes (SDOT by element): one unpacked i8x16 vector holds
 * 4 rows × 4 consecutive k, byte i = row i>>2 of the tile, k = 4q + (i&3), so lane r of
 * dot(acc, weights, splat(a[4q..4q+3])) is row r's partial sum.
 *
 * Rows are taken 4 at a time (tiles = ceil(N/4), padded rows are code 0 with scale 0) and K is
 * padded to whole groups (padded codes are 0; their activations are 0). A code is split into
 * segments: 1, 2, 4 and 8-bit codes are one segment of their width, 3-bit codes a 2-bit low
 * segment and a 1-bit high one. A segment of width w packs 8/w quads per 16-byte vector: bits
 * [j·w, (j+1)·w) of byte i belong to quad v·(8/w) + j of vector v. A chunk is the quads of the
 * narrowest segment's vector (8/min w); its bytes are, segment by segment (low first), the
 * vectors covering it. Per tile and group the bytes are chunk after chunk:
 *   packed [tiles, groups, group_size·bits/2] u8
 * Unpacking a quad is a shift and a mask per segment (and a shift-or for the 3-bit high bit).
 */

export const DOT_TILE_ROWS = 4;

export interface DotLayout {
  bits: number;
  ternary: boolean;
  groupSize: number;
  K: number;
  N: number;
  tiles: number;
  groups: number;
  /** Segments low to high: width and the shift of their bits in the code. */
  segments: { width: number; shift: number }[];
  /** Quads per chunk (8 / narrowest segment width) and bytes per chunk per tile. */
  chunkQuads: number;
  chunkBytes: number;
  /** Bytes per (tile, group). */
  groupBytes: number;
  /** Subtracted from every code before the dot so 8-bit codes fit i8 (0 for ≤ 4 bits). */
  codeOffset: number;
}

function segmentsOf(bits: number): { width: number; shift: number }[] {
  switch (bits) {
    case 1: case 2: case 4: case 8: return [{ width: bits, shift: 0 }];
    case 3: return [{ width: 2, shift: 0 }, { width: 1, shift: 2 }];
    default: throw new LlmccError(`the dot layout supports 1, 2, 3, 4 and 8-bit codes, got ${bits}`);
  }
}

/** Why group_size does not suit the layout for these bits (undefined: it does). */
export function dotGroupBlocker(bits: number, groupSize: number): string | undefined {
  if (![1, 2, 3, 4, 8].includes(bits)) return `bits = ${bits}`;
  const quads = 8 / Math.min(...segmentsOf(bits).map((s) => s.width));
  const need = 4 * quads;
  return groupSize % need === 0 ? undefined : `group_size ${groupSize} is not a multiple of ${need} (one ${bits}-bit chunk)`;
}

export function dotLayout(p: { bits: number; ternary: boolean; groupSize: number; K: number; N: number }, where?: string): DotLayout {
  const blocker = dotGroupBlocker(p.bits, p.groupSize);
  if (blocker) throw new LlmccError(`dot layout: ${blocker}`, where);
  const segments = segmentsOf(p.bits);
  const chunkQuads = 8 / Math.min(...segments.map((s) => s.width));
  const chunkBytes = 2 * chunkQuads * p.bits;
  return {
    ...p,
    tiles: Math.ceil(p.N / DOT_TILE_ROWS),
    groups: Math.ceil(p.K / p.groupSize),
    segments,
    chunkQuads,
    chunkBytes,
    groupBytes: (p.groupSize * p.bits) / 2,
    codeOffset: p.bits === 8 ? 128 : 0,
  };
}

/** Byte offset within a (tile, group) and bit position of quad `q`'s byte `i` in segment `s`. */
function place(l: DotLayout, s: number, q: number, i: number): { byte: number; bit: number } {
  const chunk = Math.floor(q / l.chunkQuads);
  const inChunk = q % l.chunkQuads;
  const { width } = l.segments[s];
  const per = 8 / width;
  let segmentStart = 0;
  for (let t = 0; t < s; t++) segmentStart += (16 * l.chunkQuads) / (8 / l.segments[t].width);
  const vector = Math.floor(inChunk / per);
  return { byte: chunk * l.chunkBytes + segmentStart + vector * 16 + i, bit: (inChunk % per) * width };
}

/** Packs u8 codes [N, K] into the dot layout. */
export function packDotWeights(codes: ArrayLike<number>, l: DotLayout): Uint8Array {
  const out = new Uint8Array(l.tiles * l.groups * l.groupBytes);
  for (let n = 0; n < l.N; n++) {
    const tile = Math.floor(n / DOT_TILE_ROWS);
    for (let k = 0; k < l.K; k++) {
      const code = codes[n * l.K + k];
      const g = Math.floor(k / l.groupSize);
      const q = Math.floor((k % l.groupSize) / 4);
      const i = (n % DOT_TILE_ROWS) * 4 + (k % 4);
      const base = (tile * l.groups + g) * l.groupBytes;
      l.segments.forEach((seg, s) => {
        const { byte, bit } = place(l, s, q, i);
        out[base + byte] |= ((code >> seg.shift) & ((1 << seg.width) - 1)) << bit;
      });
    }
  }
  return out;
}

/** The codes [N, K] of packed dot-layout weights (what the kernels unpack). */
export function unpackDotWeights(packed: ArrayLike<number>, l: DotLayout): Uint8Array {
  const codes = new Uint8Array(l.N * l.K);
  for (let n = 0; n < l.N; n++) {
    const tile = Math.floor(n / DOT_TILE_ROWS);
    for (let k = 0; k < l.K; k++) {
      const g = Math.floor(k / l.groupSize);
      const q = Math.floor((k % l.groupSize) / 4);
      const i = (n % DOT_TILE_ROWS) * 4 + (k % 4);
      const base = (tile * l.groups + g) * l.groupBytes;
      let code = 0;
      l.segments.forEach((seg, s) => {
        const { byte, bit } = place(l, s, q, i);
        code |= ((packed[base + byte] >> bit) & ((1 << seg.width) - 1)) << seg.shift;
      });
      codes[n * l.K + k] = code;
    }
  }
  return codes;
}

/**
 * Per (tile, group, row) scales and offsets: half scales s/2 (exact) and doubled offsets
 * 2·(z − codeOffset), integers when zero points are whole or half (symmetric 2-bit codes carry
 * z = 1.5). Returns undefined when a zero point is neither.
 */
export function dotScalesAndOffsets(
  scales: ArrayLike<number>, zeroPoints: ArrayLike<number> | undefined, l: DotLayout,
): { halfScales: Float32Array; offsets: Int32Array } | undefined {
  const halfScales = new Float32Array(l.tiles * l.groups * DOT_TILE_ROWS);
  const offsets = new Int32Array(l.tiles * l.groups * DOT_TILE_ROWS);
  const fallback = defaultZeroPoint(l.bits, l.ternary);
  for (let n = 0; n < l.N; n++) {
    for (let g = 0; g < l.groups; g++) {
      const z = zeroPoints ? zeroPoints[n * l.groups + g] : fallback;
      const doubled = 2 * (z - l.codeOffset);
      if (!Number.isInteger(doubled) || Math.abs(doubled) > 1024) return undefined;
      const at = (Math.floor(n / DOT_TILE_ROWS) * l.groups + g) * DOT_TILE_ROWS + (n % DOT_TILE_ROWS);
      halfScales[at] = Math.fround(scales[n * l.groups + g] * 0.5);
      offsets[at] = doubled;
    }
  }
  return { halfScales, offsets };
}
