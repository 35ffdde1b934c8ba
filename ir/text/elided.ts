import type { Weight } from '../graph.js';

/**
 * Weights the parser rebuilt from `elided<"sha256:…">`: they have no data, only the
 * digest, which the printer writes back unchanged.
 */
const digests = new WeakMap<Weight, string>();

export function markElided(weight: Weight, digest: string): void {
  digests.set(weight, digest);
}

export function elidedDigest(weight: Weight): string | undefined {
  return digests.get(weight);
}
