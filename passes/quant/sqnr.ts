import { seededRandom } from '../../ir/random.js';
/**
 * Signal-to-quantization-noise ratio and the seeded data used to measure it.
 */

/** 10·log10(Σ ref² / Σ (ref − approx)²) in dB; +Infinity when the two are identical. */
export function sqnrDb(reference: ArrayLike<number>, approx: ArrayLike<number>): number {
  let signal = 0;
  let noise = 0;
  for (let i = 0; i < reference.length; i++) {
    signal += reference[i] * reference[i];
    const d = reference[i] - approx[i];
    noise += d * d;
  }
  if (noise === 0) return Infinity;
  return 10 * Math.log10(signal / noise);
}

/** Re-exported: the project's one seeded PRNG lives in ir/random.ts. */
export { seededRandom } from '../../ir/random.js';

/** `count` standard-normal samples (Box–Muller), reproducible from `seed`, rounded to f32. */
export function gaussian(seed: number, count: number): Float32Array {
  const random = seededRandom(seed);
  const out = new Float32Array(count);
  for (let i = 0; i < count; i += 2) {
    const u1 = 1 - random(); // (0, 1]: log stays finite
    const u2 = random();
    const r = Math.sqrt(-2 * Math.log(u1));
    out[i] = r * Math.cos(2 * Math.PI * u2);
    if (i + 1 < count) out[i + 1] = r * Math.sin(2 * Math.PI * u2);
  }
  return out;
}

/** X [M, K] times Wᵀ for W [N, K] (row-major), in f64: the layer output used for output SQNR. */
export function matmulNK(x: ArrayLike<number>, m: number, w: ArrayLike<number>, n: number, k: number): Float64Array {
  const out = new Float64Array(m * n);
  for (let row = 0; row < m; row++) {
    for (let col = 0; col < n; col++) {
      let acc = 0;
      for (let i = 0; i < k; i++) acc += x[row * k + i] * w[col * k + i];
      out[row * n + col] = acc;
    }
  }
  return out;
}
