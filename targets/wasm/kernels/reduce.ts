/**
 * The Reduce* family on wasm. The reduced axes must be known at compile time (attribute, or a
 * constant axes input); the kernel is specialised on them and on the input rank, and takes the
 * input dims as launch args (strides are computed in the kernel). Kept axes form the outer
 * loop nest in output order; reduced axes the inner nest. When the last axis is reduced and
 * the data is f32, the innermost loop accumulates in f32x4 lanes.
 */
import {
  KernelBuilder, abs, add, exp, extract, i32, log, max, min, mul, reduce, splat, sqrt, sub, rem, div, cast,
  type Expr,
} from '../../../codegen/builder.js';
import type { DType } from '../../../ir/dtype.js';
import { isFloat } from '../../../ir/dtype.js';
import type { KernelBuildContext, WasmKernelDef } from '../kernel-def.js';
import { checkArity, checkElems, computeOf, elemOf, wrapInt } from './elementwise.js';
import { intAttr as nodeIntAttr } from './nn-util.js';

interface Reducer {
  op: string;
  axesInputSince: number;
  init: (dtype: DType) => number;
  /** Maps an element before accumulation (square, abs). */
  map?: (x: Expr) => Expr;
  combine: 'add' | 'max' | 'min' | 'mul';
  finish?: (acc: Expr, count: Expr) => Expr;
  floatOnly?: boolean;
}

const lowest = (t: DType): number => (isFloat(t) ? -Infinity : t === 'bool' || t.startsWith('u') ? 0 : -(2 ** 31));
const highest = (t: DType): number => (isFloat(t) ? Infinity : t === 'bool' ? 1 : 2 ** 31 - 1);

const REDUCERS: Reducer[] = [
  { op: 'ReduceSum', axesInputSince: 13, init: () => 0, combine: 'add' },
  { op: 'ReduceMean', axesInputSince: 18, init: () => 0, combine: 'add', finish: (a, n) => div(a, n), floatOnly: true },
  { op: 'ReduceMax', axesInputSince: 18, init: lowest, combine: 'max' },
  { op: 'ReduceMin', axesInputSince: 18, init: highest, combine: 'min' },
  { op: 'ReduceProd', axesInputSince: 18, init: () => 1, combine: 'mul' },
  { op: 'ReduceSumSquare', axesInputSince: 18, init: () => 0, map: (x) => mul(x, x), combine: 'add' },
  { op: 'ReduceL1', axesInputSince: 18, init: () => 0, map: (x) => abs(x), combine: 'add' },
  { op: 'ReduceL2', axesInputSince: 18, init: () => 0, map: (x) => mul(x, x), combine: 'add', finish: (a) => sqrt(a), floatOnly: true },
  { op: 'ReduceLogSum', axesInputSince: 18, init: () => 0, combine: 'add', finish: (a) => log(a), floatOnly: true },
  // Log-sum-exp is built stably (max pass, then sum of exp(x − max)); see buildReduce.
  { op: 'ReduceLogSumExp', axesInputSince: 18, init: () => 0, combine: 'add', floatOnly: true },
];

function combineWith(kind: Reducer['combine'], a: Expr, b: Expr): Expr {
  switch (kind) {
    case 'add': return add(a, b);
    case 'mul': return mul(a, b);
    case 'max': return max(a, b);
    case 'min': return min(a, b);
  }
}

function intsAttr(ctx: KernelBuildContext, name: string): number[] | undefined {
  const a = ctx.node.attributes.get(name);
  return a?.kind === 'ints' ? a.value : undefined;
}
function intAttr(ctx: KernelBuildContext, name: string, fallback: number): number {
  return nodeIntAttr(ctx.node, name, fallback);
}

interface Plan {
  rank: number;
  /** Reduced axes (sorted); undefined = pass-through (noop with empty axes). */
  reduced: Set<number> | undefined;
}

function plan(ctx: KernelBuildContext, reducer: Reducer): Plan | string {
  const shape = ctx.inputs[0]?.shape;
  if (!shape) return 'input rank is unknown';
  const rank = shape.length;
  const opset = ctx.opset ?? reducer.axesInputSince;
  let axes: number[] | undefined;
  if (opset >= reducer.axesInputSince) {
    if (ctx.node.inputs[1]) {
      const t = ctx.constant(1);
      if (!t) return 'axes input is not a compile-time constant';
      axes = t.toArray() as number[];
    }
  } else {
    axes = intsAttr(ctx, 'axes');
  }
  const noop = opset >= reducer.axesInputSince && intAttr(ctx, 'noop_with_empty_axes', 0) === 1;
  if ((!axes || axes.length === 0) && noop) return { rank, reduced: undefined };
  const reduced = new Set((axes && axes.length ? axes : shape.map((_, i) => i)).map((a) => (a < 0 ? a + rank : a)));
  if ([...reduced].some((a) => a < 0 || a >= rank)) return `axes [${axes?.join(',')}] out of range for rank ${rank}`;
  return { rank, reduced };
}

function buildReduce(ctx: KernelBuildContext, reducer: Reducer, p: Plan): ReturnType<WasmKernelDef['build']> {
  const dtype = ctx.inputs[0]!.dtype;
  const k = new KernelBuilder(ctx.name);
  const input = k.buffer('in0', elemOf(dtype)!, 'read');
  if (ctx.node.inputs[1]) k.buffer('in1', elemOf(ctx.inputs[1]?.dtype ?? 'i64') ?? 'i32', 'read');
  const out = k.buffer('out0', elemOf(ctx.outputs[0].dtype)!, 'write');
  const dims = Array.from({ length: p.rank }, (_, d) => k.scalar(`dim${d}`));
  const ct = computeOf(dtype);
  const c = (v: number): Expr => ({ kind: 'const', type: ct, value: v });

  // Row-major strides, computed from the dims at run time.
  const strides: Expr[] = new Array<Expr>(p.rank);
  let running: Expr = i32(1);
  for (let d = p.rank - 1; d >= 0; d--) {
    strides[d] = k.let(`stride${d}`, running);
    running = mul(running, dims[d]);
  }
  const total = k.let('total', running);

  if (!p.reduced) {
    k.loop('i', 0, total, (i) => out.store(i, input.load(i)), { parallel: true });
    return k.build();
  }
  const reduced = [...p.reduced].sort((a, b) => a - b);
  const kept = Array.from({ length: p.rank }, (_, d) => d).filter((d) => !p.reduced!.has(d));
  let count: Expr = i32(1);
  for (const d of reduced) count = mul(count, dims[d]);
  const countF = k.let('count', ct === 'f32' ? cast(count, 'f32') : count);
  const last = p.rank - 1;
  const vectorize = ct === 'f32' && reduced.includes(last) && reducer.combine !== 'mul';

  /** Accumulates map(x) over the reduced axes from `base` into a new mutable accumulator. */
  const accumulate = (base: Expr, init: number, combine: Reducer['combine'], map: (x: Expr) => Expr): Expr => {
    const acc = k.mut('acc', c(init));
    const vacc = vectorize ? k.mut('vacc', splat(c(init), 'f32x4')) : undefined;
    const walk = (level: number, offset: Expr): void => {
      if (level === reduced.length) {
        k.set(acc, combineWith(combine, acc, map(input.load(offset))));
        return;
      }
      const d = reduced[level];
      if (d === last && vacc) {
        const n = dims[d];
        const vend = k.let('vend', sub(n, rem(n, 4)));
        k.loop('r', 0, vend, (j) => {
          k.set(vacc, combineWith(combine, vacc, map(input.loadVec(add(offset, j), 'f32x4'))));
        }, { step: 4 });
        k.loop('rt', vend, n, (j) => walk(level + 1, add(offset, j)));
        return;
      }
      k.loop(`r${d}`, 0, dims[d], (j) => walk(level + 1, k.let(`ro${d}`, add(offset, mul(j, strides[d])))));
    };
    walk(0, base);
    if (!vacc) return acc;
    const lanes = reduceLanes(combine, vacc);
    return combineWith(combine, acc, lanes);
  };

  const outIndex = k.mut('o', i32(0));
  const outer = (level: number, base: Expr): void => {
    if (level === kept.length) {
      let value: Expr;
      if (reducer.op === 'ReduceLogSumExp') {
        const m = k.let('lse_max', accumulate(base, -Infinity, 'max', (x) => x));
        // An all −inf (or empty) row keeps its max so the result is −inf, not NaN.
        const shift = k.let('lse_shift', { kind: 'select', cond: { kind: 'binary', op: 'eq', a: abs(m), b: c(Infinity), type: 'i32' }, a: c(0), b: m, type: 'f32' });
        const s = k.let('lse_sum', accumulate(base, 0, 'add', (x) => exp(sub(x, x.type === 'f32x4' ? splat(shift, 'f32x4') : shift))));
        value = add(log(s), shift);
      } else {
        const acc = accumulate(base, reducer.init(dtype), reducer.combine, reducer.map ?? ((x) => x));
        value = reducer.finish ? reducer.finish(acc, countF) : acc;
      }
      out.store(outIndex, ct === 'f32' ? value : wrapInt(value, dtype));
      k.set(outIndex, add(outIndex, 1));
      return;
    }
    const d = kept[level];
    k.loop(`k${d}`, 0, dims[d], (j) => outer(level + 1, k.let(`ko${d}`, add(base, mul(j, strides[d])))));
  };
  outer(0, i32(0));
  return k.build();
}

function reduceLanes(combine: Reducer['combine'], v: Expr): Expr {
  if (combine === 'add') return reduce('add', v);
  if (combine === 'max') return reduce('max', v);
  if (combine === 'min') return reduce('min', v);
  return mul(mul(extract(v, 0), extract(v, 1)), mul(extract(v, 2), extract(v, 3)));
}

function define(reducer: Reducer): WasmKernelDef {
  return {
    domain: '',
    op: reducer.op,
    check(ctx) {
      const dtype = ctx.inputs[0]?.dtype;
      if (!dtype || dtype === 'string') return `${reducer.op} does not accept ${dtype ?? 'unknown'} inputs`;
      if (reducer.floatOnly && !isFloat(dtype)) return `${reducer.op} of ${dtype} is not supported on wasm`;
      if (dtype === 'bool' && reducer.combine !== 'max' && reducer.combine !== 'min') return `${reducer.op} does not accept bool inputs`;
      const axesInput = (ctx.opset ?? reducer.axesInputSince) >= reducer.axesInputSince;
      const reason = checkArity(ctx, axesInput ? 2 : 1, 1) ?? checkElems(ctx);
      if (reason) return reason;
      const p = plan(ctx, reducer);
      return typeof p === 'string' ? p : undefined;
    },
    build(ctx) {
      const p = plan(ctx, reducer);
      if (typeof p === 'string') throw new Error(`${reducer.op}: ${p}`);
      return buildReduce(ctx, reducer, p);
    },
    args(_node, shapes) {
      return [...(shapes.inputs[0] ?? [])];
    },
  };
}

export const reduceKernels: WasmKernelDef[] = REDUCERS.map(define);
