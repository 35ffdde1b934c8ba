import type { Attribute, Node } from '../../ir/graph.js';
import type { Tensor } from '../../ir/tensor.js';
import type { RewriteContext } from '../rewrite/context.js';

export const MS = 'com.microsoft';
export const LLMCC = 'llmcc';

export type AttrInit = number | string | number[] | Attribute;

/** A new node with a fresh name derived from `base`; numbers become ints unless given as Attribute. */
export function makeNode(
  ctx: RewriteContext, base: string, op: string, domain: string,
  inputs: string[], outputs: string[], attrs: Record<string, AttrInit> = {},
): Node {
  const attributes = new Map<string, Attribute>();
  for (const [key, value] of Object.entries(attrs)) {
    attributes.set(key, typeof value === 'number' ? { kind: 'int', value }
      : typeof value === 'string' ? { kind: 'string', value }
        : Array.isArray(value) ? { kind: 'ints', value } : value);
  }
  while (inputs.length && !inputs[inputs.length - 1]) inputs.pop();
  return { name: ctx.freshName(base), domain, op, inputs, outputs, attributes };
}

export function floatAttr(value: number): Attribute {
  return { kind: 'float', value };
}

/** The single value of a one-element constant, or undefined. */
export function scalarOf(t: Tensor | undefined): number | undefined {
  return t && t.size === 1 ? t.numbers()[0] : undefined;
}

export function intAttrOf(node: Node, name: string, fallback: number): number {
  const a = node.attributes.get(name);
  return a?.kind === 'int' ? a.value : fallback;
}

/**
 * A Reduce* node reducing only the last axis of its input with keepdims=1 (axes as an attribute
 * before opset 18, as a constant input after).
 */
export function reducesLastAxisKeepingDims(node: Node, ctx: RewriteContext): boolean {
  if (intAttrOf(node, 'keepdims', 1) !== 1) return false;
  const rank = ctx.shape(node.inputs[0])?.length;
  const attr = node.attributes.get('axes');
  let axes: number[] | undefined;
  if (attr?.kind === 'ints') axes = attr.value;
  else if (node.inputs[1]) { const t = ctx.constant(node.inputs[1]); axes = t ? [...t.numbers()] : undefined; }
  if (!axes || axes.length !== 1) return false;
  return axes[0] === -1 || (rank !== undefined && axes[0] === rank - 1);
}

/** A 1-D [H] parameter where H is `value`'s last dim (norm scales, biases). */
export function isVectorOverLastDim(ctx: RewriteContext, param: string, value: string): boolean {
  const shape = ctx.shape(param);
  const last = ctx.lastDim(value);
  return !!shape && shape.length === 1 && last !== undefined && shape[0] === last;
}

/** True when `value` is read somewhere other than by `except` (or is a graph output). */
export function readOutside(ctx: RewriteContext, value: string, except: readonly Node[]): boolean {
  if (!value) return false;
  return ctx.isGraphOutput(value) || ctx.readers(value).some((r) => !except.includes(r));
}

/** Whether every present output after the first is unread (norm statistics, etc.). */
export function onlyFirstOutputRead(ctx: RewriteContext, node: Node): boolean {
  return node.outputs.slice(1).every((o) => !o || (!ctx.isGraphOutput(o) && ctx.readers(o).length === 0));
}
