import type { Kernel } from '../../codegen/kernel.js';
import { buildWasmModule } from '../../codegen/wasm/module.js';

const PAGE = 65536;

/**
 * Runs built kernels directly on one wasm memory, for kernel tests and benchmarks: a bump
 * allocator over the memory (16-byte aligned), typed writes and reads, and the exports.
 */
export class KernelRunner {
  readonly memory: WebAssembly.Memory;
  /** The compiled module (worker threads instantiate it on the same shared memory). */
  readonly module: WebAssembly.Module;
  readonly exports: Record<string, (...args: number[]) => void>;
  private top = 16;

  private constructor(memory: WebAssembly.Memory, module: WebAssembly.Module, exports: Record<string, (...args: number[]) => void>) {
    this.memory = memory;
    this.module = module;
    this.exports = exports;
  }

  /** `shared`: a shared memory of exactly `initialBytes` (it cannot grow past that). */
  static async create(kernels: Kernel[], initialBytes = PAGE, options: { shared?: boolean } = {}): Promise<KernelRunner> {
    const pages = Math.max(1, Math.ceil(initialBytes / PAGE));
    const shared = options.shared ?? false;
    const binary = buildWasmModule(kernels, shared ? { sharedMemory: true, maximumPages: pages } : {});
    const memory = shared
      ? new WebAssembly.Memory({ initial: pages, maximum: pages, shared: true })
      : new WebAssembly.Memory({ initial: pages });
    const module = await WebAssembly.compile(binary as Uint8Array<ArrayBuffer>);
    const instance = await WebAssembly.instantiate(module, { env: { memory } });
    return new KernelRunner(memory, module, instance.exports as unknown as Record<string, (...args: number[]) => void>);
  }

  /** Reserves `bytes` (16-aligned) and returns the byte offset. */
  alloc(bytes: number): number {
    const offset = this.top;
    this.top = Math.ceil((offset + Math.max(bytes, 16)) / 16) * 16;
    const needed = this.top + 64;
    if (needed > this.memory.buffer.byteLength) this.memory.grow(Math.ceil((needed - this.memory.buffer.byteLength) / PAGE));
    return offset;
  }

  /** Allocates and fills a buffer from a typed array; returns its offset. */
  put(data: ArrayBufferView): number {
    const offset = this.alloc(data.byteLength);
    new Uint8Array(this.memory.buffer, offset, data.byteLength).set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    return offset;
  }

  f32(offset: number, count: number): Float32Array {
    return new Float32Array(this.memory.buffer, offset, count).slice();
  }

  i32(offset: number, count: number): Int32Array {
    return new Int32Array(this.memory.buffer, offset, count).slice();
  }

  i8(offset: number, count: number): Int8Array {
    return new Int8Array(this.memory.buffer, offset, count).slice();
  }

  call(name: string, ...args: number[]): void {
    const fn = this.exports[name];
    if (!fn) throw new Error(`kernel runner: no export ${name}`);
    fn(...args);
  }

  fn(name: string): (...args: number[]) => void {
    const fn = this.exports[name];
    if (!fn) throw new Error(`kernel runner: no export ${name}`);
    return fn;
  }
}
