import type { Expr } from '../../../codegen/kernel.js';
import { add, eq, gt, i32, lt, mul, select } from '../../../codegen/builder.js';
import type { KernelBuildContext, WasmKernelDef } from '../kernel-def.js';
import { checkArenaTypes, clampI, constantValues, copyElement, copyNest, declareIO, normAxis, rankOf, scalars, shapeIn, stridesOf, toI32 } from './nn-util.js';

interface SliceStatic {
  /** Per sliced axis: the raw start (a compile-time constant, else read from input 1). */
  starts: (number | undefined)[];
  /** Axes and steps when known at compile time; undefined entries are read at run time. */
  axes: (number | undefined)[];
  steps: (number | undefined)[];
}

/**
 * Starts, axes and steps of a Slice node: attributes before opset 10 (recognised by the
 * `starts` attribute), inputs from then on. Constants are folded into the kernel; runtime
 * values are read in the kernel (only their count must be known at compile time).
 */
function sliceStatic(ctx: KernelBuildContext): SliceStatic | string {
  const rank = rankOf(ctx.inputs[0]);
  if (rank === undefined) return 'input rank is unknown';
  const attr = (name: string): number[] | undefined => {
    const a = ctx.node.attributes.get(name);
    return a?.kind === 'ints' ? a.value : undefined;
  };
  let starts: (number | undefined)[];
  let axes: number[] | undefined;
  let steps: number[] | undefined;
  if (ctx.node.attributes.has('starts')) {
    starts = attr('starts') ?? [];
    axes = attr('axes');
  } else {
    const known = constantValues(ctx, 1);
    const count = known?.length ?? ctx.inputs[1]?.shape?.[0];
    if (typeof count !== 'number') return 'the number of Slice starts is not known at compile time';
    starts = known ?? new Array<undefined>(count).fill(undefined);
    if (ctx.node.inputs[3]) axes = constantValues(ctx, 3);
    if (ctx.node.inputs[4]) steps = constantValues(ctx, 4);
  }
  const runtimeAxes = !!ctx.node.inputs[3] && !axes && !ctx.node.attributes.has('starts');
  const runtimeSteps = !!ctx.node.inputs[4] && !steps && !ctx.node.attributes.has('starts');
  const resolvedAxes = runtimeAxes ? starts.map(() => undefined) : (axes ?? starts.map((_, i) => i)).map((a) => normAxis(a, rank));
  if (resolvedAxes.some((a) => a !== undefined && (a < 0 || a >= rank)) || resolvedAxes.length !== starts.length) return 'Slice axes are out of range';
  const resolvedSteps = runtimeSteps ? starts.map(() => undefined) : (steps ?? starts.map(() => 1));
  if (resolvedSteps.some((s) => s === 0)) return 'Slice steps cannot be 0';
  return {
    starts: starts.map((s) => (s === undefined ? s : toI32(s))),
    axes: resolvedAxes,
    steps: resolvedSteps.map((s) => (s === undefined ? s : toI32(s))),
  };
}

/**
 * Slice (with steps): a strided copy; the first element of every sliced axis is resolved in
 * the kernel with ONNX's negative-index and clamping rules against the launch dims (the
 * output dims already hold the clamped lengths).
 */
export const sliceKernel: WasmKernelDef = {
  domain: '',
  op: 'Slice',
  check(ctx) {
    const s = sliceStatic(ctx);
    if (typeof s === 'string') return s;
    if (ctx.inputs[1] && s.starts.some((x) => x === undefined) && ctx.inputs[1].dtype !== 'i32' && ctx.inputs[1].dtype !== 'i64') {
      return 'Slice starts must be integers';
    }
    return checkArenaTypes(ctx);
  },
  build(ctx) {
    const rank = rankOf(ctx.inputs[0]) ?? 0;
    const info = sliceStatic(ctx) as SliceStatic;
    const { k, inputs, outputs } = declareIO(ctx);
    const inDims = scalars(k, 'in_dim', rank);
    const inStrides = scalars(k, 'in_stride', rank);
    const outDims = scalars(k, 'out_dim', rank);
    const outStrides = scalars(k, 'out_stride', rank);
    const srcStrides: Expr[] = [...inStrides];
    let base: Expr = i32(0);
    for (let axis = 0; axis < rank; axis++) {
      // The raw start and step of this axis: from the slice entry naming it (resolved at compile
      // time when axes are constants, by comparing axes at run time otherwise), else 0 and 1.
      let raw: Expr | undefined;
      let step: Expr | undefined;
      info.axes.forEach((known, i) => {
        if (known !== undefined && known !== axis) return;
        const entryStart = info.starts[i] !== undefined ? i32(info.starts[i]!) : inputs[1]!.load(i);
        const entryStep = info.steps[i] !== undefined ? i32(info.steps[i]!) : inputs[4]!.load(i);
        if (known === axis) {
          raw = entryStart;
          step = entryStep;
          return;
        }
        const a = k.let(`axis${axis}_${i}`, inputs[3]!.load(i));
        const hit = k.let(`hit${axis}_${i}`, eq(select(lt(a, 0), add(a, rank), a), axis));
        raw = k.let(`raw${axis}_${i}`, select(hit, entryStart, raw ?? i32(0)));
        step = k.let(`step${axis}_${i}`, select(hit, entryStep, step ?? i32(1)));
      });
      if (!raw || !step) continue;
      const dim = inDims[axis];
      const wrapped = k.let(`start_raw${axis}`, select(lt(raw, 0), add(raw, dim), raw));
      const start = k.let(`start${axis}`, select(gt(step, 0), clampI(wrapped, 0, dim), clampI(wrapped, 0, add(dim, -1))));
      base = k.let(`base${axis}`, add(base, mul(start, inStrides[axis])));
      srcStrides[axis] = k.let(`stride${axis}`, mul(inStrides[axis], step));
    }
    copyNest(k, outDims, srcStrides, outStrides, base, i32(0), (s, d) => copyElement(k, inputs[0]!, s, outputs[0]!, d));
    return k.build();
  },
  args(_node, shapes) {
    const inShape = shapeIn(shapes, 0);
    const out = shapes.outputs[0];
    return [...inShape, ...stridesOf(inShape), ...out, ...stridesOf(out)];
  },
};
