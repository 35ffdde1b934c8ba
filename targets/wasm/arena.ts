/**
 * Arena storage on the wasm target and the conversions at its boundary. Browser-safe: no
 * `node:` imports (the runtime uses this module in the browser).
 *
 * Storage by IR dtype (see kernel-def.ts): every float type lives as f32; bool, u8 and i8
 * live as one byte each (i8 as its two's-complement bits, so kernels load it with elem 'i8';
 * packed low-bit weights are u8); every other integer type lives as i32 — int64 token ids and
 * indices are narrowed with a range check, u32 keeps its bit pattern.
 */
import type { DType } from '../../ir/dtype.js';
import { isFloat } from '../../ir/dtype.js';
import { LlmccError } from '../../ir/errors.js';
import { type NumericData, Tensor } from '../../ir/tensor.js';
import type { ArenaDtype } from './kernel-def.js';

/** Alignment of every buffer in the arena: one v128. */
export const ARENA_ALIGN = 16;
/** wasm32 addresses 4 GiB at most. */
export const WASM32_MAX_BYTES = 2 ** 32;
export const WASM_PAGE = 65536;

export function arenaDtypeOf(dtype: DType): ArenaDtype {
  if (isFloat(dtype)) return 'f32';
  if (dtype === 'bool' || dtype === 'u8' || dtype === 'i8') return 'u8';
  if (dtype === 'string') throw new LlmccError('string tensors cannot live in the wasm arena');
  return 'i32';
}

export function arenaElementBytes(storage: ArenaDtype): number {
  return storage === 'u8' ? 1 : 4;
}

export function alignUp(n: number, align = ARENA_ALIGN): number {
  return Math.ceil(n / align) * align;
}

/** Bytes a tensor of `count` elements of `dtype` takes in the arena (unaligned). */
export function arenaBytes(dtype: DType, count: number): number {
  return count * arenaElementBytes(arenaDtypeOf(dtype));
}

/**
 * Writes a tensor's elements into the arena at byte offset `offset` in its storage type.
 * Integers that do not fit 32 bits are refused (the wasm target computes in i32), except that
 * with `saturateInt64` (for constants) int64 values beyond the 32-bit range saturate instead of
 * failing — exporters write INT64_MAX / MAX_SAFE_INTEGER as "to the end" sentinels (Slice ends),
 * which every consumer clamps anyway. Run-time inputs keep the range check.
 */
export function writeToArena(buffer: ArrayBuffer, offset: number, tensor: Tensor, what: string, saturateInt64 = false): void {
  const values = tensor.numbers();
  const count = values.length;
  const storage = arenaDtypeOf(tensor.dtype);
  if (storage === 'f32') {
    new Float32Array(buffer, offset, count).set(values);
    return;
  }
  if (storage === 'u8') {
    // Int8Array/Uint8Array sources copy their bit patterns; bool is 0/1 already.
    new Uint8Array(buffer, offset, count).set(tensor.dtype === 'i8' ? new Uint8Array(values.buffer, values.byteOffset, count) : values);
    return;
  }
  const out = new Int32Array(buffer, offset, count);
  if (values instanceof Int32Array || values instanceof Int16Array || values instanceof Uint16Array ||
    values instanceof Int8Array || values instanceof Uint8Array) {
    out.set(values);
    return;
  }
  if (values instanceof Uint32Array) {
    out.set(new Int32Array(values.buffer, values.byteOffset, count));
    return;
  }
  // i64 / u64 (Float64Array of integers): narrow with a range check.
  for (let i = 0; i < count; i++) {
    const v = values[i];
    if (saturateInt64 && !Number.isNaN(v)) {
      out[i] = Math.min(2147483647, Math.max(-2147483648, v));
      continue;
    }
    if (v < -2147483648 || v > 2147483647 || Number.isNaN(v)) {
      throw new LlmccError(`${what} holds ${v} at element ${i}, outside the 32-bit integer range of the wasm target`);
    }
    out[i] = v;
  }
}

/** Reads `count` elements at byte offset `offset` back as a tensor of the IR dtype. */
export function readFromArena(buffer: ArrayBuffer, offset: number, dtype: DType, shape: readonly number[]): Tensor {
  let count = 1;
  for (const d of shape) count *= d;
  const storage = arenaDtypeOf(dtype);
  let values: NumericData;
  if (storage === 'f32') values = new Float32Array(buffer, offset, count);
  else if (storage === 'u8') values = dtype === 'i8' ? new Int8Array(buffer, offset, count) : new Uint8Array(buffer, offset, count);
  else if (dtype === 'u32' || dtype === 'u64') values = new Uint32Array(buffer, offset, count);
  else values = new Int32Array(buffer, offset, count);
  // fromNumbers copies (the arena is reused) and rounds f16/bf16 outputs at the boundary.
  return Tensor.fromNumbers(dtype, shape, values);
}

/** A buffer's lifetime in a schedule (first writer step, last reader step) and, once placed, its offset. */
export interface LiveBuffer {
  bytes: number;
  first: number;
  last: number;
  offset: number;
}

/**
 * Places buffers from `base` by liveness: in order of first use (larger first on ties), each
 * takes the lowest offset not overlapping a buffer alive at the same time. Returns the end.
 *
 * In that order every placed buffer starts no later than the one being placed, so it overlaps
 * in time exactly when it is still alive at the new one's first step: the buffers kept in
 * `alive` (sorted by offset), from which those that died are dropped for good.
 */
export function placeByLiveness(buffers: readonly LiveBuffer[], base: number): number {
  const order = [...buffers].sort((a, b) => a.first - b.first || b.bytes - a.bytes);
  let alive: LiveBuffer[] = [];
  let end = base;
  for (const s of order) {
    alive = alive.filter((p) => p.last >= s.first);
    let offset = base;
    let at = 0;
    for (; at < alive.length; at++) {
      const p = alive[at];
      if (offset + s.bytes <= p.offset) break;
      offset = Math.max(offset, p.offset + p.bytes);
    }
    s.offset = offset;
    // Keep `alive` sorted by offset: after every buffer that starts at or below this one.
    let insert = 0;
    while (insert < alive.length && alive[insert].offset <= offset) insert++;
    alive.splice(insert, 0, s);
    end = Math.max(end, offset + s.bytes);
  }
  return end;
}
