/**
 * Row normalizations: LayerNormalization, RMSNormalization, SimplifiedLayerNormalization
 * (ai.onnx spelling and com.microsoft), SkipLayerNormalization and
 * SkipSimplifiedLayerNormalization (com.microsoft). Each row is the dims from `axis` on
 * (the last axis for the Skip ops), contiguous, processed with f32x4 strips.
 *
 * Statistics follow each op's reference: LayerNormalization uses the two-pass variance
 * E[(x − mean)²]; the Skip ops use ORT's E[x²] − E[x]². The Skip ops first write
 * x + skip (+ bias) into Y (and the optional sum output), then normalise Y in place.
 * Scale/bias must have one value per row element or a single value (`scaleSize` at launch).
 */
import {
  KernelBuilder, add, div, eq, mul, rem, sqrt, sub, type BufferRef, type Expr,
} from '../../../codegen/builder.js';
import { isFloat } from '../../../ir/dtype.js';
import type { KernelBuildContext, WasmKernelDef } from '../kernel-def.js';
import { lane, rowMap, rowReduce } from './norm-util.js';

interface NormSpec {
  domain: string;
  op: string;
  /** Input positions. */
  skip?: number;
  scale: number;
  beta?: number;
  bias?: number;
  simplified: boolean;
  /** Axis from the attribute (default −1), or always the last axis. */
  lastAxisOnly: boolean;
  /** Output positions of mean, inverse std dev and the skip sum. */
  meanOut?: number;
  invStdOut?: number;
  sumOut?: number;
  /** ORT's E[x²] − E[x]² instead of the two-pass variance. */
  ortVariance: boolean;
  defaultEpsilon: number;
}

const SPECS: NormSpec[] = [
  { domain: '', op: 'LayerNormalization', scale: 1, beta: 2, simplified: false, lastAxisOnly: false, meanOut: 1, invStdOut: 2, ortVariance: false, defaultEpsilon: 1e-5 },
  { domain: '', op: 'RMSNormalization', scale: 1, simplified: true, lastAxisOnly: false, ortVariance: false, defaultEpsilon: 1e-5 },
  { domain: '', op: 'SimplifiedLayerNormalization', scale: 1, simplified: true, lastAxisOnly: false, invStdOut: 1, ortVariance: false, defaultEpsilon: 1e-5 },
  { domain: 'com.microsoft', op: 'SimplifiedLayerNormalization', scale: 1, simplified: true, lastAxisOnly: false, invStdOut: 1, ortVariance: false, defaultEpsilon: 1e-5 },
  { domain: 'com.microsoft', op: 'SkipLayerNormalization', skip: 1, scale: 2, beta: 3, bias: 4, simplified: false, lastAxisOnly: true, meanOut: 1, invStdOut: 2, sumOut: 3, ortVariance: true, defaultEpsilon: 1e-12 },
  { domain: 'com.microsoft', op: 'SkipSimplifiedLayerNormalization', skip: 1, scale: 2, bias: 3, simplified: true, lastAxisOnly: true, meanOut: 1, invStdOut: 2, sumOut: 3, ortVariance: true, defaultEpsilon: 1e-12 },
];

function axisOf(spec: NormSpec, node: KernelBuildContext['node'], rank: number): number {
  if (spec.lastAxisOnly) return rank - 1;
  const a = node.attributes.get('axis');
  const axis = a?.kind === 'int' ? a.value : -1;
  return axis < 0 ? axis + rank : axis;
}

function epsilonOf(spec: NormSpec, node: KernelBuildContext['node']): number {
  const a = node.attributes.get('epsilon');
  return a?.kind === 'float' ? a.value : spec.defaultEpsilon;
}

function define(spec: NormSpec): WasmKernelDef {
  return {
    domain: spec.domain,
    op: spec.op,
    check(ctx) {
      const x = ctx.inputs[0];
      if (!x?.shape) return 'input rank is unknown';
      if (!isFloat(x.dtype)) return `${spec.op} needs a float input`;
      const rank = x.shape.length;
      if (rank < 1) return 'input must have rank ≥ 1';
      const axis = axisOf(spec, ctx.node, rank);
      if (axis < 0 || axis >= rank) return `axis out of range for rank ${rank}`;
      for (const [i, t] of ctx.inputs.entries()) {
        if (ctx.node.inputs[i] && t && !isFloat(t.dtype)) return `input ${i} must be float`;
      }
      return undefined;
    },
    build(ctx) {
      const node = ctx.node;
      const eps = epsilonOf(spec, node);
      const k = new KernelBuilder(ctx.name);
      const ins: (BufferRef | undefined)[] = node.inputs.map((name, i) => (name ? k.buffer(`in${i}`, 'f32') : undefined));
      const outs: (BufferRef | undefined)[] = node.outputs.map((name, i) => (name ? k.buffer(`out${i}`, 'f32', 'write') : undefined));
      const rows = k.scalar('rows');
      const cols = k.scalar('cols');
      const scaleSize = k.scalar('scale_size');
      const betaSize = k.scalar('beta_size');
      const skipSize = k.scalar('skip_size');
      const x = ins[0]!;
      const y = outs[0]!;
      const skip = spec.skip !== undefined ? ins[spec.skip] : undefined;
      const bias = spec.bias !== undefined ? ins[spec.bias] : undefined;
      const scale = ins[spec.scale]!;
      const beta = spec.beta !== undefined ? ins[spec.beta] : undefined;
      const meanOut = spec.meanOut !== undefined ? outs[spec.meanOut] : undefined;
      const invOut = spec.invStdOut !== undefined ? outs[spec.invStdOut] : undefined;
      const sumOut = spec.sumOut !== undefined ? outs[spec.sumOut] : undefined;
      const colsF = k.let('cols_f', { kind: 'cast', a: cols, type: 'f32' });

      const ld = (b: BufferRef, i: Expr, v: boolean): Expr => (v ? b.loadVec(i, 'f32x4') : b.load(i));

      k.loop('r', 0, rows, (r) => {
        const base = k.let('base', mul(r, cols));
        // The row's source values: x, or x + skip (+ bias) staged in Y.
        let src = x;
        if (skip) {
          const skipBase = k.let('skip_base', rem(base, skipSize));
          rowMap(k, cols, (i, v) => {
            let s = add(ld(x, add(base, i), v), ld(skip, add(skipBase, i), v));
            if (bias) s = add(s, ld(bias, i, v));
            const sv = k.let('s', s);
            k.store(y, add(base, i), sv);
            if (sumOut) k.store(sumOut, add(base, i), sv);
          }, 'stage');
          src = y;
        }
        const at = (i: Expr): Expr => add(base, i);
        const sum = spec.simplified && !meanOut ? undefined : rowReduce(k, cols, 'add', (i, v) => ld(src, at(i), v), 'sum');
        const mean = sum ? k.let('mean', div(sum, colsF)) : undefined;
        let variance: Expr;
        if (spec.simplified) {
          variance = div(rowReduce(k, cols, 'add', (i, v) => {
            const e = k.let('e', ld(src, at(i), v));
            return mul(e, e);
          }, 'sq'), colsF);
        } else if (spec.ortVariance) {
          const sq = rowReduce(k, cols, 'add', (i, v) => {
            const e = k.let('e', ld(src, at(i), v));
            return mul(e, e);
          }, 'sq');
          variance = sub(div(sq, colsF), mul(mean!, mean!));
        } else {
          variance = div(rowReduce(k, cols, 'add', (i, v) => {
            const d = k.let('d', sub(ld(src, at(i), v), lane(mean!, v)));
            return mul(d, d);
          }, 'sq'), colsF);
        }
        const inv = k.let('inv', div(1, sqrt(add(variance, eps))));
        if (meanOut) meanOut.store(r, mean ?? 0);
        if (invOut) invOut.store(r, inv);
        const fullScale = k.let('full_scale', eq(scaleSize, cols));
        const fullBeta = k.let('full_beta', eq(betaSize, cols));
        const normalize = (): void => {
          rowMap(k, cols, (i, v) => {
            let centered = ld(src, at(i), v);
            if (!spec.simplified) centered = sub(centered, lane(mean!, v));
            let out = mul(mul(centered, lane(inv, v)), ld(scale, i, v));
            if (beta) out = add(out, ld(beta, i, v));
            k.store(y, at(i), out);
          }, 'norm');
        };
        // Row-sized scale/beta: SIMD; broadcast ones (size 1 or a suffix): scalar with modulo.
        const fullParams = beta ? { kind: 'binary', op: 'and', a: fullScale, b: fullBeta, type: 'i32' } as Expr : fullScale;
        k.if(fullParams, normalize, () => {
          k.loop('ns', 0, cols, (i) => {
            let centered = src.load(at(i));
            if (!spec.simplified) centered = sub(centered, mean!);
            let out = mul(mul(centered, inv), scale.load(rem(i, scaleSize)));
            if (beta) out = add(out, beta.load(rem(i, betaSize)));
            k.store(y, at(i), out);
          });
        });
      }, { parallel: true });
      return k.build();
    },
    args(node, shapes) {
      const xShape = shapes.inputs[0] ?? [];
      const rank = xShape.length;
      const axis = axisOf(spec, node, rank);
      const rows = xShape.slice(0, axis).reduce((a, b) => a * b, 1);
      const cols = xShape.slice(axis).reduce((a, b) => a * b, 1);
      const size = (i: number | undefined): number => {
        const s = i === undefined ? undefined : shapes.inputs[i];
        return s ? s.reduce((a, b) => a * b, 1) : 1;
      };
      return [rows, cols, size(spec.scale), size(spec.beta), Math.max(1, size(spec.skip))];
    },
  };
}

export const normalizationKernels: WasmKernelDef[] = SPECS.map(define);
