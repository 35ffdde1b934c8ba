/**
 * Softmax / LogSoftmax. Opset ≥ 13: along one axis (rows of `n` with element stride `inner`);
 * before 13: the input is coerced to 2-D at `axis` and each row of prod(dims[axis:]) is
 * normalised. Rows are max-shifted for stability. Contiguous rows (inner = 1) use f32x4.
 */
import {
  KernelBuilder, add, div, eq, exp, i32, log, max, mul, sub, type Expr,
} from '../../../codegen/builder.js';
import { isFloat } from '../../../ir/dtype.js';
import type { KernelBuildContext, WasmKernelDef } from '../kernel-def.js';
import { checkArity } from './elementwise.js';
import { lane, rowMap, rowReduce } from './norm-util.js';

function axisOf(ctx: KernelBuildContext, rank: number): number {
  const legacy = (ctx.opset ?? 13) < 13;
  const a = ctx.node.attributes.get('axis');
  const axis = a?.kind === 'int' ? a.value : legacy ? 1 : -1;
  return axis < 0 ? axis + rank : axis;
}

function define(op: 'Softmax' | 'LogSoftmax'): WasmKernelDef {
  const isLog = op === 'LogSoftmax';
  return {
    domain: '',
    op,
    check(ctx) {
      const t = ctx.inputs[0];
      if (!t?.shape) return 'input rank is unknown';
      if (!isFloat(t.dtype)) return `${op} needs a float input`;
      const arity = checkArity(ctx, 1, 1);
      if (arity) return arity;
      const rank = t.shape.length;
      const axis = axisOf(ctx, Math.max(rank, 1));
      if (rank > 0 && (axis < 0 || axis >= rank)) return `axis out of range for rank ${rank}`;
      return undefined;
    },
    build(ctx) {
      const rank = ctx.inputs[0]!.shape!.length;
      const legacy = (ctx.opset ?? 13) < 13;
      const axis = rank === 0 ? 0 : axisOf(ctx, rank);
      const k = new KernelBuilder(ctx.name);
      const x = k.buffer('in0', 'f32');
      const y = k.buffer('out0', 'f32', 'write');
      const dims = Array.from({ length: rank }, (_, d) => k.scalar(`dim${d}`));
      const prod = (from: number, to: number): Expr => dims.slice(from, to).reduce<Expr>((a, d) => mul(a, d), i32(1));
      const outer = k.let('outer', prod(0, axis));
      const n = k.let('n', legacy ? prod(axis, rank) : prod(axis, axis + 1));
      const inner = k.let('inner', legacy ? i32(1) : prod(axis + 1, rank));

      const finish = (base: Expr, stride: Expr | undefined): void => {
        const at = (i: Expr): Expr => (stride ? add(base, mul(i, stride)) : add(base, i));
        if (!stride) {
          const m = rowReduce(k, n, 'max', (i, v) => (v ? x.loadVec(at(i), 'f32x4') : x.load(at(i))), 'mx');
          const s = rowReduce(k, n, 'add', (i, v) => {
            const e = exp(sub(v ? x.loadVec(at(i), 'f32x4') : x.load(at(i)), lane(m, v)));
            if (!isLog) k.store(y, at(i), e);
            return e;
          }, 'sum');
          if (isLog) {
            const shift = k.let('shift', add(m, log(s)));
            rowMap(k, n, (i, v) => k.store(y, at(i), sub(v ? x.loadVec(at(i), 'f32x4') : x.load(at(i)), lane(shift, v))));
          } else {
            const inv = k.let('inv', div(1, s));
            rowMap(k, n, (i, v) => k.store(y, at(i), mul(v ? y.loadVec(at(i), 'f32x4') : y.load(at(i)), lane(inv, v))));
          }
          return;
        }
        const m = k.mut('mx', { kind: 'const', type: 'f32', value: -Infinity });
        k.loop('a', 0, n, (i) => k.set(m, max(m, x.load(at(i)))));
        const s = k.mut('sum', { kind: 'const', type: 'f32', value: 0 });
        k.loop('b', 0, n, (i) => {
          const e = k.let('e', exp(sub(x.load(at(i)), m)));
          if (!isLog) k.store(y, at(i), e);
          k.set(s, add(s, e));
        });
        if (isLog) {
          const shift = k.let('shift', add(m, log(s)));
          k.loop('c', 0, n, (i) => k.store(y, at(i), sub(x.load(at(i)), shift)));
        } else {
          const inv = k.let('inv', div(1, s));
          k.loop('c', 0, n, (i) => k.store(y, at(i), mul(y.load(at(i)), inv)));
        }
      };

      k.if(eq(inner, 1), () => {
        k.loop('row', 0, outer, (r) => finish(k.let('base', mul(r, n)), undefined), { parallel: true });
      }, () => {
        k.loop('o', 0, outer, (o) => {
          k.loop('in', 0, inner, (j) => finish(k.let('sbase', add(mul(mul(o, n), inner), j)), inner), { parallel: true });
        }, { parallel: true });
      });
      return k.build();
    },
    args(_node, shapes) {
      return [...(shapes.inputs[0] ?? [])];
    },
  };
}

export const softmaxKernels: WasmKernelDef[] = [define('Softmax'), define('LogSoftmax')];
