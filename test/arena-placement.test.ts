import { describe, expect, it } from 'vitest';
import { seededRandom } from '../ir/random.js';
import { type LiveBuffer, placeByLiveness } from '../targets/wasm/arena.js';

/** The placement rule written plainly: each buffer, in order, at the lowest offset free of every placed buffer alive with it. */
function placeNaively(buffers: LiveBuffer[], base: number): number {
  const order = [...buffers].sort((a, b) => a.first - b.first || b.bytes - a.bytes);
  const placed: LiveBuffer[] = [];
  let end = base;
  for (const s of order) {
    const overlapping = placed.filter((p) => p.first <= s.last && s.first <= p.last).sort((a, b) => a.offset - b.offset);
    let offset = base;
    for (const p of overlapping) {
      if (offset + s.bytes <= p.offset) break;
      offset = Math.max(offset, p.offset + p.bytes);
    }
    s.offset = offset;
    placed.push(s);
    end = Math.max(end, offset + s.bytes);
  }
  return end;
}

function randomBuffers(seed: number, count: number): LiveBuffer[] {
  const random = seededRandom(seed);
  return Array.from({ length: count }, () => {
    const first = Math.floor(random() * 40) - 1;
    const bytes = random() < 0.1 ? 0 : 64 * (1 + Math.floor(random() * 16));
    return { bytes, first, last: first + Math.floor(random() * 12), offset: 0 };
  });
}

describe('placeByLiveness', () => {
  it('places exactly as the plain rule does, and no two buffers alive together overlap', () => {
    for (let seed = 1; seed <= 200; seed++) {
      const buffers = randomBuffers(seed, 1 + (seed % 60));
      const copy = buffers.map((b) => ({ ...b }));
      const end = placeByLiveness(buffers, 128);
      expect(end).toBe(placeNaively(copy, 128));
      expect(buffers.map((b) => b.offset)).toEqual(copy.map((b) => b.offset));
      for (const a of buffers) {
        for (const b of buffers) {
          if (a === b || a.bytes === 0 || b.bytes === 0 || a.last < b.first || b.last < a.first) continue;
          expect(a.offset + a.bytes <= b.offset || b.offset + b.bytes <= a.offset).toBe(true);
        }
      }
    }
  });
});
