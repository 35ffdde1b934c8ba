import type { DType } from '../../dtype.js';
import { isFloat } from '../../dtype.js';
import type { EvalContext, OpDef } from '../types.js';
import { mapUnary } from '../util/elementwise.js';
import { erf, roundHalfEven } from './math.js';
import { requireInput, requireType } from './common.js';

/**
 * The one-input, same-type ops without attributes. Each computes in f64 and rounds once
 * to the input dtype (for f32/f16 that equals the correctly rounded narrow result).
 */
type Accepts = 'float' | 'signed' | 'numeric' | 'bool';

interface UnarySpec {
  op: string;
  accepts: Accepts;
  f: (x: number) => number;
}

function softplus(x: number): number {
  // log(1 + e^x) without overflow for large x.
  return x > 0 ? x + Math.log1p(Math.exp(-x)) : Math.log1p(Math.exp(x));
}

function sigmoid(x: number): number {
  return x >= 0 ? 1 / (1 + Math.exp(-x)) : Math.exp(x) / (1 + Math.exp(x));
}

const SPECS: UnarySpec[] = [
  { op: 'Abs', accepts: 'numeric', f: Math.abs },
  { op: 'Neg', accepts: 'signed', f: (x) => -x },
  { op: 'Reciprocal', accepts: 'float', f: (x) => 1 / x },
  { op: 'Sqrt', accepts: 'float', f: Math.sqrt },
  { op: 'Exp', accepts: 'float', f: Math.exp },
  { op: 'Log', accepts: 'float', f: Math.log },
  { op: 'Erf', accepts: 'numeric', f: erf },
  { op: 'Ceil', accepts: 'float', f: Math.ceil },
  { op: 'Floor', accepts: 'float', f: Math.floor },
  { op: 'Round', accepts: 'float', f: roundHalfEven },
  { op: 'Sin', accepts: 'float', f: Math.sin },
  { op: 'Cos', accepts: 'float', f: Math.cos },
  { op: 'Tanh', accepts: 'float', f: Math.tanh },
  { op: 'Sigmoid', accepts: 'float', f: sigmoid },
  { op: 'Relu', accepts: 'signed', f: (x) => (x < 0 ? 0 : x) },
  { op: 'Softplus', accepts: 'float', f: softplus },
  { op: 'Sign', accepts: 'numeric', f: (x) => (Number.isNaN(x) ? NaN : Math.sign(x)) },
  { op: 'Not', accepts: 'bool', f: (x) => (x ? 0 : 1) },
];

function accepted(accepts: Accepts, dtype: DType): boolean {
  switch (accepts) {
    case 'float': return isFloat(dtype);
    case 'signed': return isFloat(dtype) || /^i\d+$/.test(dtype);
    case 'numeric': return dtype !== 'string' && dtype !== 'bool';
    case 'bool': return dtype === 'bool';
  }
}

function checkDtype(ctx: { attrs: { error(m: string): Error }; node: { op: string } }, spec: UnarySpec, dtype: DType): void {
  if (!accepted(spec.accepts, dtype)) throw ctx.attrs.error(`${spec.op} does not accept ${dtype} inputs`);
}

function define(spec: UnarySpec): OpDef {
  return {
    domain: '',
    op: spec.op,
    infer(ctx) {
      const type = requireType(ctx, 0);
      checkDtype(ctx, spec, type.dtype);
      return [{ type: { dtype: type.dtype, shape: type.shape } }];
    },
    evaluate(ctx: EvalContext) {
      const x = requireInput(ctx, 0);
      checkDtype(ctx, spec, x.dtype);
      return [mapUnary(x, x.dtype, spec.f)];
    },
  };
}

export const unaryOps: OpDef[] = SPECS.map(define);
