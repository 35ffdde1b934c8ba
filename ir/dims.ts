import type { Dim } from './graph.js';

/**
 * Arithmetic on dims that keeps symbolic dims symbolic. Expressions are plain strings
 * in a canonical form, so two inferences of the same size compare equal as strings.
 */
export function isStaticDim(d: Dim): d is number {
  return typeof d === 'number';
}

export function isStaticShape(shape: readonly Dim[] | undefined): shape is number[] {
  return shape !== undefined && shape.every(isStaticDim);
}

function wrap(d: Dim): string {
  const s = String(d);
  return /^[A-Za-z0-9_.]+$/.test(s) ? s : `(${s})`;
}

export function dimAdd(a: Dim, b: Dim): Dim {
  if (typeof a === 'number' && typeof b === 'number') return a + b;
  if (a === 0) return b;
  if (b === 0) return a;
  const [x, y] = [wrap(a), wrap(b)].sort();
  return `${x}+${y}`;
}

export function dimSub(a: Dim, b: Dim): Dim {
  if (typeof a === 'number' && typeof b === 'number') return a - b;
  if (b === 0) return a;
  if (a === b) return 0;
  return `${wrap(a)}-${wrap(b)}`;
}

export function dimMul(a: Dim, b: Dim): Dim {
  if (typeof a === 'number' && typeof b === 'number') return a * b;
  if (a === 1) return b;
  if (b === 1) return a;
  if (a === 0 || b === 0) return 0;
  const [x, y] = [wrap(a), wrap(b)].sort();
  return `${x}*${y}`;
}

/** Exact division; symbolic quotients are written a/b. */
export function dimDiv(a: Dim, b: Dim): Dim {
  if (typeof a === 'number' && typeof b === 'number') return Math.floor(a / b);
  if (b === 1) return a;
  if (a === b) return 1;
  return `${wrap(a)}/${wrap(b)}`;
}

export function dimProduct(dims: readonly Dim[]): Dim {
  return dims.reduce<Dim>((acc, d) => dimMul(acc, d), 1);
}

/** Fresh names for dims nothing can name (data-dependent sizes). */
export class SymbolSource {
  private next = 0;
  constructor(private readonly prefix = 'unk') {}
  fresh(): string {
    return `${this.prefix}_${this.next++}`;
  }
}
