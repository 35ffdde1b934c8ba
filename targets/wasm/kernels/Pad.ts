import type { Expr } from '../../../codegen/kernel.js';
import { add, f32, i32, mul, sub } from '../../../codegen/builder.js';
import { convertNumber } from '../../../ir/tensor.js';
import type { KernelBuildContext, WasmKernelDef } from '../kernel-def.js';
import { arenaElem, checkArenaTypes, constantValues, copyElement, copyNest, declareIO, fill, imax, imin, normAxis, product, rankOf, scalars, shapeIn, stridesOf, toI32 } from './nn-util.js';

interface PadStatic {
  /** Per padded axis (in `axes` order) the begin pad: a constant, else read from input 1. */
  begins: (number | undefined)[];
  axes: number[];
  /** The fill value when it is an attribute (opset < 11). */
  valueAttr?: number;
}

function padStatic(ctx: KernelBuildContext): PadStatic | string {
  const rank = rankOf(ctx.inputs[0]);
  if (rank === undefined) return 'input rank is unknown';
  const mode = ctx.node.attributes.get('mode');
  if (mode?.kind === 'string' && mode.value !== 'constant') return `Pad mode '${mode.value}' is not supported on wasm (constant only)`;
  const padsAttr = ctx.node.attributes.get('pads') ?? ctx.node.attributes.get('paddings');
  if (padsAttr?.kind === 'ints') {
    const value = ctx.node.attributes.get('value');
    return {
      begins: padsAttr.value.slice(0, rank),
      axes: Array.from({ length: rank }, (_, i) => i),
      valueAttr: value?.kind === 'float' ? value.value : 0,
    };
  }
  let axes = Array.from({ length: rank }, (_, i) => i);
  if (ctx.node.inputs[3]) {
    const known = constantValues(ctx, 3);
    if (!known) return 'Pad axes must be a compile-time constant on wasm';
    axes = known.map((a) => normAxis(a, rank));
  }
  if (axes.some((a) => a < 0 || a >= rank)) return 'Pad axes are out of range';
  const pads = constantValues(ctx, 1);
  const count = pads?.length ?? ctx.inputs[1]?.shape?.[0];
  if (count !== 2 * axes.length) return `Pad pads must have ${2 * axes.length} entries`;
  return { begins: pads ? pads.slice(0, axes.length) : new Array<undefined>(axes.length).fill(undefined), axes };
}

/**
 * Pad (constant mode; negative pads crop): fills the output with the constant, then copies
 * the part of the input that lands inside it. Begin pads may be runtime values.
 */
export const padKernel: WasmKernelDef = {
  domain: '',
  op: 'Pad',
  check(ctx) {
    const s = padStatic(ctx);
    return typeof s === 'string' ? s : checkArenaTypes(ctx);
  },
  build(ctx) {
    const rank = rankOf(ctx.inputs[0]) ?? 0;
    const info = padStatic(ctx) as PadStatic;
    const { k, inputs, outputs } = declareIO(ctx);
    const inDims = scalars(k, 'in_dim', rank);
    const inStrides = scalars(k, 'in_stride', rank);
    const outDims = scalars(k, 'out_dim', rank);
    const outStrides = scalars(k, 'out_stride', rank);
    const [total] = scalars(k, 'total', 1);
    const out = outputs[0]!;
    const elem = arenaElem(ctx.outputs[0].dtype) ?? 'f32';
    const zero = elem === 'f32' ? f32(0) : i32(0);
    let value: Expr;
    if (info.valueAttr !== undefined) {
      const v = convertNumber(ctx.outputs[0].dtype, info.valueAttr);
      value = elem === 'f32' ? f32(v) : i32(v);
    } else if (inputs[2] && (ctx.inputs[2]?.shape === undefined || product(ctx.inputs[2].shape.map((d) => (typeof d === 'number' ? d : 1))) > 0)) {
      value = k.let('pad_value', inputs[2].load(0));
    } else {
      value = zero;
    }
    fill(k, out, 0, total, value);
    const begins: Expr[] = new Array<Expr>(rank).fill(i32(0));
    info.axes.forEach((axis, i) => {
      const known = info.begins[i];
      begins[axis] = k.let(`begin${i}`, known !== undefined ? i32(toI32(known)) : inputs[1]!.load(i));
    });
    const counts: Expr[] = [];
    let srcBase: Expr = i32(0);
    let dstBase: Expr = i32(0);
    for (let d = 0; d < rank; d++) {
      const lo = k.let(`lo${d}`, imax(begins[d], 0));
      const hi = k.let(`hi${d}`, imin(outDims[d], add(inDims[d], begins[d])));
      counts.push(k.let(`count${d}`, imax(sub(hi, lo), 0)));
      srcBase = k.let(`src_base${d}`, add(srcBase, mul(sub(lo, begins[d]), inStrides[d])));
      dstBase = k.let(`dst_base${d}`, add(dstBase, mul(lo, outStrides[d])));
    }
    copyNest(k, counts, inStrides, outStrides, srcBase, dstBase, (s, d) => copyElement(k, inputs[0]!, s, out, d));
    return k.build();
  },
  args(_node, shapes) {
    const inShape = shapeIn(shapes, 0);
    const out = shapes.outputs[0];
    return [...inShape, ...stridesOf(inShape), ...out, ...stridesOf(out), product(out)];
  },
};
