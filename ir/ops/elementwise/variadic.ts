import type { DType } from '../../dtype.js';
import { isInteger } from '../../dtype.js';
import type { Dim } from '../../graph.js';
import { dimAdd } from '../../dims.js';
import type { InferContext, OpContextBase, OpDef } from '../types.js';
import { mapBroadcast } from '../util/elementwise.js';
import type { Tensor } from '../../tensor.js';
import { broadcastType, withNode, withShapeValue } from './common.js';

/**
 * Max, Min, Sum, Mean: one or more inputs of one dtype, broadcast together. NaN in any
 * input makes the element NaN (Math.max/min and + already propagate it).
 */
type Kind = 'Max' | 'Min' | 'Sum' | 'Mean';

const REDUCERS: Record<Kind, (args: number[]) => number> = {
  Max: (args) => args.reduce((m, v) => Math.max(m, v)),
  Min: (args) => args.reduce((m, v) => Math.min(m, v)),
  Sum: (args) => args.reduce((s, v) => s + v, 0),
  Mean: (args) => args.reduce((s, v) => s + v, 0) / args.length,
};

function checkDtypes(ctx: OpContextBase, dtypes: DType[]): DType {
  if (dtypes.length === 0) throw ctx.attrs.error(`${ctx.node.op} needs at least one input`);
  const first = dtypes[0];
  for (const d of dtypes) {
    if (d !== first) throw ctx.attrs.error(`${ctx.node.op} needs inputs of one dtype, got ${first} and ${d}`);
  }
  if (first === 'string' || first === 'bool') throw ctx.attrs.error(`${ctx.node.op} does not accept ${first} inputs`);
  return first;
}

/** Max/Min/Sum of shape values, element by element, when every element is decidable. */
function shapeValueOf(ctx: InferContext, kind: Kind): Dim[] | undefined {
  if (kind === 'Mean') return undefined;
  const values: Dim[][] = [];
  for (let i = 0; i < ctx.inputs.length; i++) {
    const v = ctx.shapeValue(i);
    if (!v) return undefined;
    values.push(v);
  }
  const n = Math.max(...values.map((v) => v.length));
  if (values.some((v) => v.length !== n && v.length !== 1)) return undefined;
  const out: Dim[] = [];
  for (let i = 0; i < n; i++) {
    const column = values.map((v) => (v.length === 1 ? v[0] : v[i]));
    if (kind === 'Sum') {
      out.push(column.reduce<Dim>((s, d) => dimAdd(s, d), 0));
      continue;
    }
    if (column.every((d): d is number => typeof d === 'number')) {
      out.push(REDUCERS[kind](column));
      continue;
    }
    // Symbolic dims are >= 0, so a max against numbers <= 0 is the symbol; otherwise only equal symbols decide.
    const symbols = new Set(column.filter((d) => typeof d === 'string'));
    const numbers = column.filter((d): d is number => typeof d === 'number');
    if (symbols.size !== 1) return undefined;
    const [symbol] = symbols;
    if (kind === 'Max' && numbers.every((x) => x <= 0)) out.push(symbol);
    else if (kind === 'Min' && numbers.length === 0) out.push(symbol);
    else return undefined;
  }
  return out;
}

function define(kind: Kind): OpDef {
  return {
    domain: '',
    op: kind,
    infer(ctx) {
      const dtypes = ctx.inputs.filter((t) => t !== undefined).map((t) => t.dtype);
      const dtype = checkDtypes(ctx, dtypes);
      const type = broadcastType(ctx, dtype);
      return [withShapeValue(type, isInteger(dtype) ? shapeValueOf(ctx, kind) : undefined)];
    },
    evaluate(ctx) {
      const inputs = ctx.inputs.filter((t): t is Tensor => t !== undefined);
      const dtype = checkDtypes(ctx, inputs.map((t) => t.dtype));
      return [withNode(ctx, () => mapBroadcast(inputs, dtype, REDUCERS[kind]))];
    },
  };
}

export const variadicOps: OpDef[] = (['Max', 'Min', 'Sum', 'Mean'] as const).map(define);
