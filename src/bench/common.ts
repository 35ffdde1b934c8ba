import { seededRandom } from '../../ir/random.js';
/** Shared benchmark types and helpers. */

export interface GemvShape {
  /** Activation rows: 1 = GEMV, 16 = small GEMM. */
  M: number;
  K: number;
  N: number;
  /** Weight bits (2 for ternary). */
  bits: number;
  ternary: boolean;
  groupSize: number;
}

/** Offsets of one layer's weights in a wasm memory. */
export interface Layer {
  planes: number;
  scales: number;
  offsets: number;
}

/** A prepared implementation: `run` computes one layer (rotating through the layer set). */
export interface Timed {
  run(): void | Promise<unknown>;
  dispose(): void | Promise<void>;
}

/** Fills `out` with f(u) for deterministic uniform u ∈ [0, 1) (mulberry32 from `seed`). */
export function randomFill<T extends { length: number; [i: number]: number }>(out: T, seed: number, f: (u: number) => number): T {
  const next = seededRandom(seed);
  for (let i = 0; i < out.length; i++) out[i] = f(next());
  return out;
}

export function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

/**
 * Times `impl.run` : warm-up, then repeated runs until `budgetMs` is spent (at least `minRuns`,
 * at most `maxRuns`); returns per-run milliseconds.
 */
export async function timeRuns(impl: Timed, budgetMs: number, minRuns = 5, maxRuns = 2000, warmup = 3): Promise<number[]> {
  for (let i = 0; i < warmup; i++) await impl.run();
  const times: number[] = [];
  const start = performance.now();
  while (times.length < maxRuns && (times.length < minRuns || performance.now() - start < budgetMs)) {
    const t0 = process.hrtime.bigint();
    await impl.run();
    times.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  return times;
}
