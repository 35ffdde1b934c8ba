import type { Node } from '../../ir/graph.js';
import type { Tensor } from '../../ir/tensor.js';
import type { RewriteContext } from './context.js';

/**
 * Declarative patterns over the IR: a tree of ops whose leaves capture values. Matching starts
 * at a value (the root's output) and walks producers upward.
 *
 *   op('Mul', [capture('x'), op('Sigmoid', [capture('x')])], { commutative: true })
 *
 * matches x·sigmoid(x): a name captured twice must bind the same value both times. Intermediate
 * nodes (every matched op but the root) must be read only inside the match, so removing them
 * after the rewrite is safe; `shared: true` lifts that for one op (its other readers keep it).
 * Alternatives (`anyOf`, op name lists) and commutative input orders backtrack: a rule takes
 * the first complete match, in listed order, that passes its own check.
 */
export type Pattern = OpPattern | CapturePattern | ConstPattern | AnyOfPattern;

export interface OpPattern {
  kind: 'op';
  /** One op name or alternatives; matched in `domain` ('' by default). */
  op: string | readonly string[];
  /** The op's domain, or alternatives ('' by default). */
  domain?: string | readonly string[];
  inputs: readonly Pattern[];
  /** Binary op whose two inputs may come in either order (Add, Mul). */
  commutative?: boolean;
  /** Bind the node under this name (and its output value as a capture of the same name). */
  name?: string;
  /** Which output of the node the parent reads (default 0). */
  output?: number;
  /** Allow this intermediate to have readers outside the match (it is then not removed). */
  shared?: boolean;
  /** Inputs beyond the listed ones must be absent ('' or missing) unless true. */
  extraInputs?: boolean;
  where?: (node: Node, ctx: RewriteContext) => boolean;
}

/** Any value (graph input, initializer or computed), bound to a name. */
export interface CapturePattern {
  kind: 'capture';
  name: string;
  where?: (value: string, ctx: RewriteContext) => boolean;
}

/** A compile-time constant (initializer or Constant node), optionally bound and checked. */
export interface ConstPattern {
  kind: 'const';
  name?: string;
  where?: (tensor: Tensor) => boolean;
}

/** Alternatives, tried in order. */
export interface AnyOfPattern {
  kind: 'anyOf';
  options: readonly Pattern[];
}

export type OpOptions = Omit<OpPattern, 'kind' | 'op' | 'inputs'>;

export function op(name: string | readonly string[], inputs: readonly Pattern[], options: OpOptions = {}): OpPattern {
  return { kind: 'op', op: name, inputs, ...options };
}

export function capture(name: string, where?: CapturePattern['where']): CapturePattern {
  return { kind: 'capture', name, where };
}

export function constant(name?: string, where?: ConstPattern['where']): ConstPattern {
  return { kind: 'const', name, where };
}

/** A constant whose every element is within `tolerance` (relative) of `value`. */
export function scalar(value: number, name?: string, tolerance = 1e-6): ConstPattern {
  return constant(name, (t) => t.size >= 1 && t.numbers().every((v) => Math.abs(v - value) <= tolerance * Math.max(1, Math.abs(value))));
}

export function anyOf(...options: Pattern[]): AnyOfPattern {
  return { kind: 'anyOf', options };
}

/** `inner`, or `inner` behind a Cast: exporters wrap norms in upcasts. */
export function optionalCast(inner: Pattern, name?: string): Pattern {
  return anyOf(op('Cast', [inner], { name }), inner);
}

/** What a successful match binds. */
export interface Match {
  /** Captured values by name (also each named op's output value). */
  values: ReadonlyMap<string, string>;
  /** Named op nodes. */
  nodes: ReadonlyMap<string, Node>;
  /** Constants bound by name. */
  constants: ReadonlyMap<string, Tensor>;
  /** Every node matched, root first. */
  matched: readonly Node[];
  /** Matched nodes that may keep readers outside the match. */
  sharedNodes: ReadonlySet<Node>;
  root: Node;
}

interface State {
  values: Map<string, string>;
  nodes: Map<string, Node>;
  constants: Map<string, Tensor>;
  matched: Node[];
  shared: Set<Node>;
}

function copy(s: State): State {
  return {
    values: new Map(s.values), nodes: new Map(s.nodes), constants: new Map(s.constants),
    matched: [...s.matched], shared: new Set(s.shared),
  };
}

function bindValue(s: State, name: string, value: string): boolean {
  const bound = s.values.get(name);
  if (bound !== undefined) return bound === value;
  s.values.set(name, value);
  return true;
}

/**
 * Every way `pattern` matches the value `value`, extending `state` (a generator, so a later
 * mismatch backtracks into the alternatives and commutative orders of earlier inputs).
 */
function* matchValue(pattern: Pattern, value: string, ctx: RewriteContext, state: State): Generator<State> {
  if (!value) return;
  switch (pattern.kind) {
    case 'capture': {
      const s = copy(state);
      if (bindValue(s, pattern.name, value) && (!pattern.where || pattern.where(value, ctx))) yield s;
      return;
    }
    case 'const': {
      const tensor = ctx.constant(value);
      if (!tensor || (pattern.where && !pattern.where(tensor))) return;
      const s = copy(state);
      if (pattern.name) {
        if (!bindValue(s, pattern.name, value)) return;
        s.constants.set(pattern.name, tensor);
      }
      yield s;
      return;
    }
    case 'anyOf':
      for (const option of pattern.options) yield* matchValue(option, value, ctx, state);
      return;
    case 'op': {
      const node = ctx.producer(value);
      if (node && node.outputs[pattern.output ?? 0] === value) yield* matchNode(pattern, node, ctx, state);
    }
  }
}

/** Matches the inputs `from`… of `node` in the given order against `pattern.inputs`. */
function* matchInputs(pattern: OpPattern, node: Node, order: readonly number[], from: number, ctx: RewriteContext, state: State): Generator<State> {
  if (from === pattern.inputs.length) {
    yield state;
    return;
  }
  for (const s of matchValue(pattern.inputs[from], node.inputs[order[from]] ?? '', ctx, state)) {
    yield* matchInputs(pattern, node, order, from + 1, ctx, s);
  }
}

function* matchNode(pattern: OpPattern, node: Node, ctx: RewriteContext, state: State): Generator<State> {
  const names = typeof pattern.op === 'string' ? [pattern.op] : pattern.op;
  const domains = typeof pattern.domain === 'string' ? [pattern.domain] : pattern.domain ?? [''];
  if (!domains.includes(node.domain) || !names.includes(node.op)) return;
  if (!pattern.extraInputs && node.inputs.slice(pattern.inputs.length).some((i) => i)) return;
  if (pattern.where && !pattern.where(node, ctx)) return;
  const base = copy(state);
  if (pattern.name) {
    const bound = base.nodes.get(pattern.name);
    if (bound) {
      // A named op met again (a value used twice inside the pattern): the same node, matched once.
      if (bound === node) yield base;
      return;
    }
    base.nodes.set(pattern.name, node);
    if (!bindValue(base, pattern.name, node.outputs[pattern.output ?? 0])) return;
  }
  if (!base.matched.includes(node)) base.matched.push(node);
  if (pattern.shared) base.shared.add(node);
  const orders = pattern.commutative && pattern.inputs.length === 2 ? [[0, 1], [1, 0]] : [pattern.inputs.map((_, i) => i)];
  for (const order of orders) yield* matchInputs(pattern, node, order, 0, ctx, base);
}

/** Whether every intermediate (not the root, not `shared`) is read only inside the match. */
function selfContained(s: State, root: Node, ctx: RewriteContext): boolean {
  const inside = new Set(s.matched);
  for (const node of s.matched) {
    if (node === root || s.shared.has(node)) continue;
    for (const out of node.outputs) {
      if (!out) continue;
      if (ctx.isGraphOutput(out) || ctx.readers(out).some((reader) => !inside.has(reader))) return false;
    }
  }
  return true;
}

/**
 * Every match of `pattern` with `root` as its top node, in the order alternatives are listed.
 * A match is dropped when an intermediate node (not the root, not `shared`) has a reader
 * outside it or is a graph output.
 */
export function* matchesAt(pattern: OpPattern, root: Node, ctx: RewriteContext): Generator<Match> {
  const start: State = { values: new Map(), nodes: new Map(), constants: new Map(), matched: [], shared: new Set() };
  for (const s of matchNode(pattern, root, ctx, start)) {
    if (selfContained(s, root, ctx)) {
      yield { values: s.values, nodes: s.nodes, constants: s.constants, matched: s.matched, sharedNodes: s.shared, root };
    }
  }
}

/** The first match of `pattern` at `root` (see matchesAt), or undefined. */
export function matchAt(pattern: OpPattern, root: Node, ctx: RewriteContext): Match | undefined {
  for (const m of matchesAt(pattern, root, ctx)) return m;
  return undefined;
}
