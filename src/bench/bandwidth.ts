import { KernelBuilder, add, constant } from '../../codegen/builder.js';
import { KernelRunner } from './kernel-runner.js';
import { median } from './common.js';

/**
 * DRAM read-bandwidth probe: a single-threaded wasm SIMD128 kernel summing a buffer far
 * larger than the last-level cache (4 independent i32x4 accumulators, 64 bytes per step).
 * Returns the median GB/s (1e9 bytes/s) over `passes` full passes.
 */
export async function measureReadBandwidth(bytes = 256 * 1024 * 1024, passes = 7): Promise<number> {
  const k = new KernelBuilder('read_sum');
  const src = k.buffer('src', 'i32', 'read');
  const out = k.buffer('out', 'i32', 'write');
  const count = k.scalar('count');
  const accs = [0, 1, 2, 3].map((i) => k.mut(`acc${i}`, constant('i32x4', 0)));
  k.loop('i', 0, count, (i) => {
    accs.forEach((acc, j) => k.set(acc, add(acc, src.loadVec(add(i, j * 4), 'i32x4'))));
  }, { step: 16 });
  out.storeVec(0, add(add(accs[0], accs[1]), add(accs[2], accs[3])));
  const runner = await KernelRunner.create([k.build()], bytes + (1 << 20));
  const buffer = runner.alloc(bytes);
  new Uint8Array(runner.memory.buffer, buffer, bytes).fill(1);
  const result = runner.alloc(16);
  const run = runner.fn('read_sum');
  run(buffer, result, bytes / 4);
  const rates: number[] = [];
  for (let p = 0; p < passes; p++) {
    const t0 = process.hrtime.bigint();
    run(buffer, result, bytes / 4);
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    rates.push(bytes / seconds / 1e9);
  }
  return median(rates);
}
