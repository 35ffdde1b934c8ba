import { LlmccError } from '../../ir/errors.js';

/**
 * N:M structured sparsity (notes/techniques.md §4): within every group of M consecutive
 * weights along K (per output row), at most N are nonzero. The patterns llmcc packs and has
 * kernels for are 2:4, 1:4 and 2:8.
 */
export interface NMPattern {
  n: number;
  m: number;
}

export const SUPPORTED_PATTERNS: readonly string[] = ['2:4', '1:4', '2:8'];

/** Parses `--sparsity N:M`; only the supported patterns are accepted. */
export function parsePattern(text: string): NMPattern {
  const match = /^(\d+):(\d+)$/.exec(text.trim());
  if (!match || !SUPPORTED_PATTERNS.includes(`${Number(match[1])}:${Number(match[2])}`)) {
    throw new LlmccError(`--sparsity must be one of ${SUPPORTED_PATTERNS.join(', ')}, got '${text}'`);
  }
  return { n: Number(match[1]), m: Number(match[2]) };
}

export function describePattern(p: NMPattern): string {
  return `${p.n}:${p.m}`;
}

/** Bits of index metadata per kept weight: its position inside its group, log2(M). */
export function indexBits(p: NMPattern): number {
  const bits = Math.log2(p.m);
  if (!Number.isInteger(bits)) throw new LlmccError(`sparsity M must be a power of two, got ${p.m}`);
  return bits;
}

/** Kept weights per row: K·N/M. */
export function keptPerRow(K: number, p: NMPattern): number {
  return (K / p.m) * p.n;
}

/** Checks that K (and the quant group size, when given) splits into whole groups of M. */
export function checkSparseLayout(p: NMPattern, K: number, groupSize?: number, where?: string): void {
  if (!Number.isInteger(p.n) || !Number.isInteger(p.m) || p.n < 1 || p.n >= p.m) {
    throw new LlmccError(`sparsity ${p.n}:${p.m} must have 1 ≤ N < M`, where);
  }
  indexBits(p);
  if (K % p.m !== 0) throw new LlmccError(`K = ${K} is not a multiple of the sparsity group M = ${p.m}`, where);
  if (groupSize !== undefined && groupSize % p.m !== 0) {
    throw new LlmccError(`group_size = ${groupSize} is not a multiple of the sparsity group M = ${p.m}`, where);
  }
}
