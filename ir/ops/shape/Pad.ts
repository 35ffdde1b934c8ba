import type { OpDef, InferContext, EvalContext } from '../types.js';
import type { Dim } from '../../graph.js';
import { dimAdd, dimSub } from '../../dims.js';
import { Tensor, convertNumber } from '../../tensor.js';
import { copyElement, forEachIndex, inputTensor, inputType, knownDims, knownInts, outputInfo, resolveAxis, stridesOf } from './common.js';

type PadMode = 'constant' | 'reflect' | 'edge' | 'wrap';

function modeOf(ctx: InferContext | EvalContext): PadMode {
  const mode = ctx.attrs.string('mode', 'constant');
  const allowed = ctx.opset >= 19 ? ['constant', 'reflect', 'edge', 'wrap'] : ['constant', 'reflect', 'edge'];
  if (!allowed.includes(mode)) throw ctx.attrs.error(`Pad mode '${mode}' is not supported at opset ${ctx.opset}`);
  return mode as PadMode;
}

/** Per-axis [begin, end] pads over all axes, from pads laid out [begins…, ends…] for `axes`. */
function perAxisPads<T>(ctx: InferContext | EvalContext, pads: T[], axes: number[] | undefined, rank: number, zero: T): [T, T][] {
  const which = (axes ?? Array.from({ length: rank }, (_, i) => i)).map((a) => resolveAxis(ctx, a, rank));
  if (new Set(which).size !== which.length) throw ctx.attrs.error('Pad axes repeat an axis');
  if (pads.length !== 2 * which.length) {
    throw ctx.attrs.error(`Pad pads has ${pads.length} entries, expected ${2 * which.length}`);
  }
  const out: [T, T][] = Array.from({ length: rank }, () => [zero, zero]);
  which.forEach((axis, i) => {
    out[axis] = [pads[i], pads[i + which.length]];
  });
  return out;
}

function addDim(a: Dim, b: Dim): Dim {
  return typeof b === 'number' && b < 0 ? dimSub(a, -b) : dimAdd(a, b);
}

/** Index into an axis of size n for output position `at` (relative to the unpadded start), or -1 for the constant. */
function sourceIndex(mode: PadMode, at: number, n: number): number {
  if (at >= 0 && at < n) return at;
  switch (mode) {
    case 'constant': return -1;
    case 'edge': return at < 0 ? 0 : n - 1;
    case 'wrap': return ((at % n) + n) % n;
    default: {
      if (n === 1) return 0;
      const period = 2 * (n - 1);
      const m = ((at % period) + period) % period;
      return m < n ? m : period - m;
    }
  }
}

/** Pad: pads (or with negative pads, crops) each axis; constant, reflect, edge or wrap. */
export const Pad: OpDef = {
  domain: '',
  op: 'Pad',
  infer(ctx) {
    const input = inputType(ctx, 0);
    modeOf(ctx);
    if (!input.shape) return [outputInfo(input.dtype, undefined)];
    const rank = input.shape.length;
    let pads: Dim[] | undefined;
    let axes: number[] | undefined;
    if (ctx.opset < 11) {
      pads = ctx.attrs.has('pads') ? ctx.attrs.ints('pads') : ctx.attrs.ints('paddings');
    } else {
      pads = knownDims(ctx, 1);
      if (ctx.opset >= 18 && ctx.inputs[3]) {
        axes = knownInts(ctx, 3);
        if (!axes) return [outputInfo(input.dtype, input.shape.map(() => ctx.symbols.fresh()))];
      }
    }
    if (!pads) return [outputInfo(input.dtype, input.shape.map(() => ctx.symbols.fresh()))];
    const perAxis = perAxisPads<Dim>(ctx, pads, axes, rank, 0);
    const shape = input.shape.map((d, i) => addDim(addDim(d, perAxis[i][0]), perAxis[i][1]));
    return [outputInfo(input.dtype, shape)];
  },
  evaluate(ctx) {
    const data = inputTensor(ctx, 0);
    const mode = modeOf(ctx);
    let pads: number[];
    let axes: number[] | undefined;
    let fill: number | string = 0;
    if (ctx.opset < 11) {
      pads = ctx.attrs.has('pads') ? ctx.attrs.ints('pads') : ctx.attrs.ints('paddings');
      fill = ctx.attrs.float('value', 0);
    } else {
      pads = inputTensor(ctx, 1).toArray();
      const value = ctx.inputs[2];
      if (value && value.size > 0) fill = Array.isArray(value.data) ? value.data[0] : value.get(0);
      if (ctx.opset >= 18 && ctx.inputs[3]) axes = ctx.inputs[3].toArray();
    }
    const perAxis = perAxisPads(ctx, pads, axes, data.rank, 0);
    // Negative pads crop first; the cropped tensor is then padded (as the ONNX reference does).
    const cropBegin = perAxis.map(([b]) => Math.max(0, -b));
    const kept = data.shape.map((d, i) => d - cropBegin[i] - Math.max(0, -perAxis[i][1]));
    if (kept.some((k) => k < 0)) throw ctx.attrs.error(`Pad crops more than the input [${data.shape.join(',')}] holds`);
    const padBegin = perAxis.map(([b]) => Math.max(0, b));
    const outShape = kept.map((k, i) => k + padBegin[i] + Math.max(0, perAxis[i][1]));
    if (mode !== 'constant' && outShape.some((d, i) => d > 0 && kept[i] === 0)) {
      throw ctx.attrs.error(`Pad mode '${mode}' cannot pad an axis of size 0`);
    }
    const out = Tensor.zeros(data.dtype, outShape);
    const constant = typeof fill === 'string' ? fill : convertNumber(data.dtype === 'string' ? 'f64' : data.dtype, fill);
    const strides = stridesOf(data.shape);
    forEachIndex(outShape, (index, flat) => {
      let o = 0;
      for (let d = 0; d < index.length; d++) {
        const s = sourceIndex(mode, index[d] - padBegin[d], kept[d]);
        if (s < 0) {
          o = -1;
          break;
        }
        o += (s + cropBegin[d]) * strides[d];
      }
      if (o >= 0) copyElement(out, flat, data, o);
      else if (Array.isArray(out.data)) out.data[flat] = typeof constant === 'string' ? constant : '';
      else out.data[flat] = constant as number;
    });
    return [out];
  },
};
