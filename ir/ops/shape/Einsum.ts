import type { OpDef, OpContextBase } from '../types.js';
import type { Dim } from '../../graph.js';
import { Tensor, sizeOf } from '../../tensor.js';
import { forEachIndex, inputType, outputInfo, stridesOf } from './common.js';

/**
 * A parsed einsum equation. Labels are numbers: letters by char code, the dims an
 * ellipsis stands for by -1-k for the k-th broadcast dim (right-aligned across inputs).
 */
interface Equation {
  inputs: number[][];
  output: number[];
}

interface Term {
  letters: string[];
  /** Position of '...' among the letters, or -1. */
  ellipsisAt: number;
}

function parseTerm(ctx: OpContextBase, text: string): Term {
  const letters: string[] = [];
  let ellipsisAt = -1;
  for (let i = 0; i < text.length; i++) {
    if (text.startsWith('...', i)) {
      if (ellipsisAt >= 0) throw ctx.attrs.error(`einsum term '${text}' has more than one ellipsis`);
      ellipsisAt = letters.length;
      i += 2;
    } else if (/[A-Za-z]/.test(text[i])) {
      letters.push(text[i]);
    } else {
      throw ctx.attrs.error(`einsum term '${text}' has an invalid character '${text[i]}'`);
    }
  }
  return { letters, ellipsisAt };
}

/** Labels of a term whose input has `rank` dims, given `broadcast` global ellipsis dims. */
function labelsOf(ctx: OpContextBase, term: Term, rank: number, broadcast: number): number[] {
  const codes = term.letters.map((l) => l.charCodeAt(0));
  if (term.ellipsisAt < 0) {
    if (codes.length !== rank) throw ctx.attrs.error(`einsum term has ${codes.length} labels for an input of rank ${rank}`);
    return codes;
  }
  const covered = rank - codes.length;
  if (covered < 0) throw ctx.attrs.error(`einsum term has ${codes.length} labels for an input of rank ${rank}`);
  const ellipsis = Array.from({ length: covered }, (_, j) => -1 - (broadcast - covered + j));
  return [...codes.slice(0, term.ellipsisAt), ...ellipsis, ...codes.slice(term.ellipsisAt)];
}

function parseEquation(ctx: OpContextBase, ranks: number[]): Equation {
  const equation = ctx.attrs.string('equation').replace(/\s+/g, '');
  const [lhs, rhs] = equation.split('->');
  const terms = lhs.split(',').map((t) => parseTerm(ctx, t));
  if (terms.length !== ranks.length) {
    throw ctx.attrs.error(`einsum equation '${equation}' has ${terms.length} inputs but the node has ${ranks.length}`);
  }
  const broadcast = Math.max(0, ...terms.map((t, i) => (t.ellipsisAt >= 0 ? ranks[i] - t.letters.length : 0)));
  const inputs = terms.map((t, i) => labelsOf(ctx, t, ranks[i], broadcast));
  const ellipsisLabels = Array.from({ length: broadcast }, (_, k) => -1 - k);
  let output: number[];
  if (rhs !== undefined) {
    const term = parseTerm(ctx, rhs);
    output = labelsOf(ctx, term, term.letters.length + (term.ellipsisAt >= 0 ? broadcast : 0), broadcast);
    if (new Set(output).size !== output.length) throw ctx.attrs.error(`einsum output '${rhs}' repeats a label`);
    const known = new Set(inputs.flat());
    for (const l of output) if (l >= 0 && !known.has(l)) throw ctx.attrs.error(`einsum output label '${String.fromCharCode(l)}' is not in any input`);
  } else {
    // Implicit output: broadcast dims, then the letters used exactly once, alphabetically.
    const counts = new Map<number, number>();
    for (const l of inputs.flat()) if (l >= 0) counts.set(l, (counts.get(l) ?? 0) + 1);
    const once = [...counts].filter(([, n]) => n === 1).map(([l]) => l).sort((a, b) => a - b);
    output = [...ellipsisLabels, ...once];
  }
  return { inputs, output };
}

/** Size of every label; size-1 dims stretch (numpy broadcasting), other sizes must agree. */
function labelSizes<D extends Dim>(ctx: OpContextBase, eq: Equation, shapes: (readonly D[])[]): Map<number, D> {
  const sizes = new Map<number, D>();
  eq.inputs.forEach((labels, i) => {
    labels.forEach((l, d) => {
      const size = shapes[i][d];
      const prev = sizes.get(l);
      if (prev === undefined || prev === 1) sizes.set(l, size);
      else if (size !== prev && size !== 1 && typeof size === 'number' && typeof prev === 'number') {
        throw ctx.attrs.error(`einsum label sizes disagree: ${prev} vs ${size}`);
      }
    });
  });
  return sizes;
}

/** Einsum: Einstein summation over labelled dims (diagonals, ellipsis broadcasting, implicit output). */
export const Einsum: OpDef = {
  domain: '',
  op: 'Einsum',
  infer(ctx) {
    if (ctx.inputs.length === 0) throw ctx.attrs.error('Einsum needs at least one input');
    const types = ctx.inputs.map((_, i) => inputType(ctx, i));
    const dtype = types[0].dtype;
    if (types.some((t) => !t.shape)) return [outputInfo(dtype, undefined)];
    const shapes = types.map((t) => t.shape as Dim[]);
    const eq = parseEquation(ctx, shapes.map((s) => s.length));
    const sizes = labelSizes(ctx, eq, shapes);
    return [outputInfo(dtype, eq.output.map((l) => sizes.get(l) ?? 1))];
  },
  evaluate(ctx) {
    if (ctx.inputs.length === 0) throw ctx.attrs.error('Einsum needs at least one input');
    const inputs = ctx.inputs.map((t, i) => {
      if (!t) throw ctx.attrs.error(`missing required input ${i}`);
      return t;
    });
    const eq = parseEquation(ctx, inputs.map((t) => t.rank));
    const sizes = labelSizes(ctx, eq, inputs.map((t) => t.shape));
    const outShape = eq.output.map((l) => sizes.get(l) ?? 1);
    const summed = [...sizes.keys()].filter((l) => !eq.output.includes(l));
    const summedShape = summed.map((l) => sizes.get(l) as number);
    const all = [...eq.output, ...summed];
    const slot = new Map(all.map((l, i) => [l, i]));
    // For each input, per dim: which slot of the full index it reads (0 stride for broadcast size-1 dims).
    const readers = inputs.map((t, i) => {
      const strides = stridesOf(t.shape);
      return eq.inputs[i].map((l, d) => ({ slot: slot.get(l) as number, stride: t.shape[d] === 1 ? 0 : strides[d] }));
    });
    const views = inputs.map((t) => t.numbers());
    const values = new Float64Array(sizeOf(outShape));
    const full = new Array<number>(all.length).fill(0);
    forEachIndex(outShape, (outIndex, flat) => {
      for (let i = 0; i < outIndex.length; i++) full[i] = outIndex[i];
      let total = 0;
      forEachIndex(summedShape, (sumIndex) => {
        for (let i = 0; i < sumIndex.length; i++) full[outIndex.length + i] = sumIndex[i];
        let product = 1;
        for (let k = 0; k < inputs.length; k++) {
          let o = 0;
          for (const r of readers[k]) o += full[r.slot] * r.stride;
          product *= views[k][o];
        }
        total += product;
      });
      values[flat] = total;
    });
    return [Tensor.fromNumbers(inputs[0].dtype, outShape, values)];
  },
};
