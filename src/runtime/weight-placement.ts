/**
 * Places one weight's bundle bytes into the wasm arena without building a JS tensor first:
 * byte copies where the bundle encoding is already the arena's form (f32, u8, i8, i32) and a
 * table lookup for f16 → f32. Decoding a 1B model's weights through `Tensor.fromNumbers` (a JS
 * loop per element, f16 rounding per element) took minutes; this takes about a memcpy.
 * Browser-safe. Other encodings go through decodeWeight + writeToArena.
 */
import { f16BitsToNumber } from '../../ir/float.js';
import { LlmccError } from '../../ir/errors.js';
import { writeToArena } from '../../targets/wasm/arena.js';
import type { WeightEntry } from '../../targets/wasm/program.js';
import { decodeWeight, encodedBytes } from '../../targets/wasm/weights.js';

let f16Table: Float32Array | undefined;

/** Every f16 bit pattern's f32 value (exact: f32 holds every f16). */
function f16ToF32Table(): Float32Array {
  if (!f16Table) {
    f16Table = new Float32Array(65536);
    for (let bits = 0; bits < 65536; bits++) f16Table[bits] = f16BitsToNumber(bits);
  }
  return f16Table;
}

/**
 * Arena weights placed by the loader itself (Node: read from the file straight into the wasm
 * memory) instead of copied from weights.bin in memory.
 */
export interface WeightStream {
  /**
   * Writes every arena weight at `weightBase + arenaOffset` of `memory` as placeWeightBytes
   * does, and verifies the bytes (rejecting a mismatch: the session is then not created).
   * Returns the bytes of every weight not placed as-is (`placedAsIs`), by name; the session
   * reads the others back from the arena when a host step needs them.
   */
  place(memory: WebAssembly.Memory, weightBase: number): Promise<Map<string, Uint8Array>>;
}

/** The encodings whose bytes are already the arena's storage of the dtype (bit for bit). */
export function placedAsIs(w: WeightEntry): boolean {
  if (w.arenaOffset === undefined) return false;
  return (w.dtype === 'f32' && w.encoding === 'f32') || (w.dtype === 'u8' && w.encoding === 'u8') ||
    (w.dtype === 'i8' && w.encoding === 'i8') || (w.dtype === 'i32' && w.encoding === 'i32');
}

/**
 * Writes weight `w` (its `bytes`, exactly its range of weights.bin) at byte `offset` of
 * `buffer`, in the same form writeToArena(decodeWeight(...)) would. Returns false when the
 * encoding has no fast path (the caller decodes it instead).
 */
export function placeWeightBytes(buffer: ArrayBuffer, offset: number, w: WeightEntry, bytes: Uint8Array): boolean {
  const count = w.shape.reduce((a, b) => a * b, 1);
  if (bytes.byteLength !== encodedBytes(w.encoding, count)) {
    throw new LlmccError(`weight '${w.name}' has ${bytes.byteLength} bytes but ${w.dtype}[${w.shape.join(',')}] needs ${encodedBytes(w.encoding, count)}`);
  }
  if (placedAsIs(w)) {
    new Uint8Array(buffer, offset, bytes.byteLength).set(bytes);
    return true;
  }
  if (w.dtype === 'f16' && w.encoding === 'f16') {
    // A Uint16Array view needs an even byteOffset; bundle weights are 16-byte aligned, copies are the fallback.
    const source = bytes.byteOffset % 2 === 0 ? bytes : bytes.slice();
    const halves = new Uint16Array(source.buffer, source.byteOffset, count);
    const out = new Float32Array(buffer, offset, count);
    const table = f16ToF32Table();
    for (let i = 0; i < count; i++) out[i] = table[halves[i]!]!;
    return true;
  }
  if (w.dtype === 'bf16' && w.encoding === 'bf16') {
    const source = bytes.byteOffset % 2 === 0 ? bytes : bytes.slice();
    const halves = new Uint16Array(source.buffer, source.byteOffset, count);
    const out = new Uint32Array(buffer, offset, count); // bf16 is the top half of an f32
    for (let i = 0; i < count; i++) out[i] = halves[i]! << 16;
    return true;
  }
  return false;
}

/** Writes weight `w` at byte `offset` of `buffer`: the fast paths, else through a decoded tensor (not kept). */
export function placeWeight(buffer: ArrayBuffer, offset: number, w: WeightEntry, bytes: Uint8Array): void {
  if (!placeWeightBytes(buffer, offset, w, bytes)) writeToArena(buffer, offset, decodeWeight(w.dtype, w.shape, w.encoding, bytes), `weight '${w.name}'`, true);
}
