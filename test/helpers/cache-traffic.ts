import { expect } from 'vitest';

/** Bytes one generate() step moved between JS and the wasm memory, and its cache tensors' bytes (past in, present out). */
export interface StepTraffic { written: number; read: number; cacheIn: number; cacheOut: number }

/**
 * Per decode step (from the second), a copied cache against a resident one: the copying path
 * moves exactly the cache more (past in, present out), a non-empty cache, and what the resident
 * path writes grows less than the cache does. Checks of what it reads are the caller's.
 */
export function expectOnlyCacheCrosses(copied: readonly StepTraffic[], resident: readonly StepTraffic[]): void {
  const first = resident[1];
  for (let i = 1; i < resident.length; i++) {
    const r = resident[i];
    const k = copied[i];
    expect(k.written - r.written, `step ${i}`).toBe(k.cacheIn);
    expect(k.read - r.read, `step ${i}`).toBe(k.cacheOut);
    expect(r.cacheIn, `step ${i}`).toBeGreaterThan(0);
    expect(r.written - first.written, `step ${i}`).toBeLessThan(Math.max(1, r.cacheIn - first.cacheIn));
  }
}
