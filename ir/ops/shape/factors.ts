import type { Dim } from '../../graph.js';
import { dimAdd, dimDiv, dimMul, dimProduct, dimSub } from '../../dims.js';

/**
 * Symbolic products as a numeric coefficient times a multiset of atoms, so Reshape's -1
 * can cancel `batch*seq*64 / (batch*seq*4)` to 16 instead of writing a quotient string.
 */
interface Factors {
  coefficient: number;
  atoms: string[];
}

function stripParens(s: string): string {
  while (s.startsWith('(') && s.endsWith(')') && closingParen(s, 0) === s.length - 1) s = s.slice(1, -1);
  return s;
}

function closingParen(s: string, open: number): number {
  let depth = 0;
  for (let i = open; i < s.length; i++) {
    if (s[i] === '(') depth++;
    else if (s[i] === ')' && --depth === 0) return i;
  }
  return -1;
}

/** Splits at '*' outside parentheses; undefined when the expression is not a pure product. */
function topLevelProduct(s: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < s.length; i++) {
    if (s[i] === '(') depth++;
    else if (s[i] === ')') depth--;
    else if (s[i] === '*' && depth === 0) {
      parts.push(s.slice(start, i));
      start = i + 1;
    }
  }
  parts.push(s.slice(start));
  return parts;
}

function factorsOf(dims: readonly Dim[]): Factors {
  const result: Factors = { coefficient: 1, atoms: [] };
  const visit = (d: Dim): void => {
    if (typeof d === 'number') {
      result.coefficient *= d;
      return;
    }
    const inner = stripParens(d);
    if (/^-?\d+$/.test(inner)) {
      result.coefficient *= Number(inner);
      return;
    }
    const parts = topLevelProduct(inner);
    if (parts.length === 1) result.atoms.push(inner);
    else parts.forEach(visit);
  };
  dims.forEach(visit);
  return result;
}

/** product(numerator) / product(denominator), cancelling common symbolic factors. */
export function divideProducts(numerator: readonly Dim[], denominator: readonly Dim[]): Dim {
  const top = factorsOf(numerator);
  const bottom = factorsOf(denominator);
  const remaining = [...top.atoms];
  let cancelled = true;
  for (const atom of bottom.atoms) {
    const at = remaining.indexOf(atom);
    if (at < 0) {
      cancelled = false;
      break;
    }
    remaining.splice(at, 1);
  }
  if (cancelled && bottom.coefficient !== 0 && top.coefficient % bottom.coefficient === 0) {
    const coefficient = top.coefficient / bottom.coefficient;
    if (remaining.length === 0) return coefficient;
    return dimMul(dimProduct(remaining.sort()), coefficient);
  }
  return dimDiv(dimProduct(numerator), dimProduct(denominator));
}

/** Splits at '+' outside parentheses (a sum's terms), stripping redundant parentheses. */
function topLevelSum(s: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < s.length; i++) {
    if (s[i] === '(') depth++;
    else if (s[i] === ')') depth--;
    else if (s[i] === '+' && depth === 0) {
      parts.push(stripParens(s.slice(start, i)));
      start = i + 1;
    }
  }
  parts.push(stripParens(s.slice(start)));
  return parts;
}

/**
 * a - b, cancelling b when it is one of a's summands, so a slice or range from `past`
 * to `past+seq` has length `seq` rather than `(past+seq)-past`.
 */
export function subtractDims(a: Dim, b: Dim): Dim {
  if (typeof a === 'string' && b !== 0) {
    const terms = topLevelSum(stripParens(a));
    const at = terms.indexOf(stripParens(String(b)));
    if (terms.length > 1 && at >= 0) {
      terms.splice(at, 1);
      return terms.map((t): Dim => (/^-?\d+$/.test(t) ? Number(t) : t)).reduce((x, y) => dimAdd(x, y));
    }
  }
  return dimSub(a, b);
}
