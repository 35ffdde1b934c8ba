/**
 * A small synchronous harness for running built kernels in Node (tests, tools): builds one
 * module from the kernels, instantiates it against a fresh memory, and offers a bump allocator
 * plus typed views. Not the runtime (src/runtime plans one arena from the memory plan).
 */
import type { Kernel } from '../kernel.js';
import { buildWasmModule, type WasmBuildOptions } from './module.js';

/** The slice of the WebAssembly JS API this harness uses (the project's lib has no wasm types). */
interface WasmMemory {
  readonly buffer: ArrayBuffer;
  grow(pages: number): number;
}
interface WasmApi {
  Memory: new (descriptor: { initial: number; maximum?: number; shared?: boolean }) => WasmMemory;
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => { exports: object };
}
const wasm = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;

export class WasmHarness {
  readonly memory: WasmMemory;
  readonly exports: Record<string, (...args: number[]) => void>;
  private top = 64;

  constructor(kernels: Kernel[], options: WasmBuildOptions & { pages?: number } = {}) {
    const bytes = buildWasmModule(kernels, options);
    this.memory = new wasm.Memory({ initial: options.pages ?? 256 });
    const module = new wasm.Module(bytes);
    const instance = new wasm.Instance(module, { env: { memory: this.memory } });
    this.exports = instance.exports as Record<string, (...args: number[]) => void>;
  }

  /** Frees everything allocated so far. */
  reset(): void {
    this.top = 64;
  }

  /** Reserves `bytes` (16-byte aligned) and returns the byte offset; grows memory as needed. */
  alloc(bytes: number): number {
    const offset = this.top;
    this.top = offset + Math.ceil(Math.max(bytes, 1) / 16) * 16 + 16;
    const needed = Math.ceil(this.top / 65536) - this.memory.buffer.byteLength / 65536;
    if (needed > 0) this.memory.grow(needed);
    return offset;
  }

  writeF32(values: ArrayLike<number>): number {
    const offset = this.alloc(values.length * 4);
    new Float32Array(this.memory.buffer, offset, values.length).set(values);
    return offset;
  }
  writeI32(values: ArrayLike<number>): number {
    const offset = this.alloc(values.length * 4);
    new Int32Array(this.memory.buffer, offset, values.length).set(values);
    return offset;
  }
  writeU8(values: ArrayLike<number>): number {
    const offset = this.alloc(values.length);
    new Uint8Array(this.memory.buffer, offset, values.length).set(values);
    return offset;
  }
  writeU16(values: ArrayLike<number>): number {
    const offset = this.alloc(values.length * 2);
    new Uint16Array(this.memory.buffer, offset, values.length).set(values);
    return offset;
  }

  f32(offset: number, length: number): Float32Array {
    return new Float32Array(this.memory.buffer, offset, length);
  }
  i32(offset: number, length: number): Int32Array {
    return new Int32Array(this.memory.buffer, offset, length);
  }
  u8(offset: number, length: number): Uint8Array {
    return new Uint8Array(this.memory.buffer, offset, length);
  }
  u16(offset: number, length: number): Uint16Array {
    return new Uint16Array(this.memory.buffer, offset, length);
  }

  call(name: string, ...args: number[]): void {
    const fn = this.exports[name];
    if (typeof fn !== 'function') throw new Error(`wasm harness: no kernel ${name}`);
    fn(...args);
  }
}
