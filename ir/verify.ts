import type { Graph, Model, Node } from './graph.js';
import { LlmccError, describeNode } from './errors.js';
import { inferTypes } from './infer.js';
import { outerReferences } from './interpreter.js';
import { lookupOp } from './ops/registry.js';

/**
 * The verifier: checks that a graph is well formed (SSA, every use defined, acyclic,
 * outputs produced), that llmcc supports all its ops, and that types infer consistently.
 * Nodes are put in topological order on the way (stably, so ordered graphs are unchanged).
 */
export function verifyModel(model: Model): void {
  verifyGraph(model.graph, model.opsets);
}

export function verifyGraph(graph: Graph, opsets: ReadonlyMap<string, number>): void {
  checkStructure(graph, new Set());
  const unsupported = unsupportedOps(graph);
  if (unsupported.length) throw new LlmccError(formatUnsupported(unsupported));
  inferTypes(graph, opsets);
}

export interface UnsupportedOp {
  domain: string;
  op: string;
  /** Names of the nodes using it, in graph order (subgraphs included). */
  nodes: string[];
}

/** Ops llmcc has no definition for, each with the nodes that use it, in order of first use. */
export function unsupportedOps(graph: Graph): UnsupportedOp[] {
  const found = new Map<string, UnsupportedOp>();
  const visit = (g: Graph): void => {
    for (const node of g.nodes) {
      if (!lookupOp(node.domain, node.op)) {
        const key = `${node.domain}::${node.op}`;
        let entry = found.get(key);
        if (!entry) found.set(key, (entry = { domain: node.domain, op: node.op, nodes: [] }));
        entry.nodes.push(node.name);
      }
      forEachSubgraph(node, visit);
    }
  };
  visit(graph);
  return [...found.values()];
}

/** One line: `unsupported ops: com.microsoft.Foo (2 nodes: "a", "b"); Bar (1 node: "c")`. */
export function formatUnsupported(ops: readonly UnsupportedOp[]): string {
  const shown = 5;
  const parts = ops.map(({ domain, op, nodes }) => {
    const names = nodes.slice(0, shown).map((n) => JSON.stringify(n));
    if (nodes.length > shown) names.push('…');
    const count = `${nodes.length} node${nodes.length === 1 ? '' : 's'}`;
    return `${domain ? `${domain}.${op}` : op} (${count}: ${names.join(', ')})`;
  });
  return `unsupported ops: ${parts.join('; ')}`;
}

/**
 * The graph's nodes in a topological order, stable: among nodes that are ready, the one
 * earliest in the graph goes first, so an already ordered graph keeps its order. Values
 * a subgraph reads from this graph count as inputs of the node holding the subgraph.
 * Does not modify the graph; a cycle is an LlmccError naming the nodes on it.
 */
export function topologicalSort(graph: Graph): Node[] {
  const nodes = graph.nodes;
  const producer = new Map<string, number>();
  nodes.forEach((node, i) => {
    for (const name of node.outputs) if (name && !producer.has(name)) producer.set(name, i);
  });
  const dependsOn = nodes.map((node) => {
    const deps = new Set<number>();
    for (const name of readsOf(node)) {
      const p = producer.get(name);
      if (p !== undefined) deps.add(p);
    }
    return deps;
  });
  const pending = dependsOn.map((deps) => deps.size);
  const consumers: number[][] = nodes.map(() => []);
  dependsOn.forEach((deps, i) => {
    for (const d of deps) consumers[d].push(i);
  });

  let alreadyOrdered = true;
  dependsOn.forEach((deps, i) => {
    for (const d of deps) if (d >= i) alreadyOrdered = false;
  });
  if (alreadyOrdered) return [...nodes];

  const ready = new MinHeap();
  pending.forEach((count, i) => {
    if (count === 0) ready.push(i);
  });
  const order: Node[] = [];
  while (ready.size) {
    const i = ready.pop();
    order.push(nodes[i]);
    for (const c of consumers[i]) if (--pending[c] === 0) ready.push(c);
  }
  if (order.length < nodes.length) throw cycleError(graph, dependsOn, pending);
  return order;
}

/** Every value a node reads: its inputs and what its subgraphs take from outside. */
function readsOf(node: Node): Set<string> {
  const reads = new Set(node.inputs.filter((n) => n));
  forEachSubgraph(node, (g) => {
    for (const name of outerReferences(g)) reads.add(name);
  });
  return reads;
}

function forEachSubgraph(node: Node, visit: (g: Graph) => void): void {
  for (const attr of node.attributes.values()) {
    if (attr.kind === 'graph') visit(attr.value);
    else if (attr.kind === 'graphs') attr.value.forEach(visit);
  }
}

/** Finds one cycle among the nodes the sort could not place, and names its nodes in data-flow order. */
function cycleError(graph: Graph, dependsOn: Set<number>[], pending: number[]): LlmccError {
  const stuck = (i: number): boolean => pending[i] > 0;
  const state = new Map<number, 'open' | 'done'>();
  const path: number[] = [];
  const search = (i: number): number[] | undefined => {
    state.set(i, 'open');
    path.push(i);
    for (const d of dependsOn[i]) {
      if (!stuck(d)) continue;
      if (state.get(d) === 'open') return path.slice(path.indexOf(d));
      if (!state.has(d)) {
        const found = search(d);
        if (found) return found;
      }
    }
    path.pop();
    state.set(i, 'done');
    return undefined;
  };
  let cycle: number[] | undefined;
  for (let i = 0; i < dependsOn.length && !cycle; i++) if (stuck(i) && !state.has(i)) cycle = search(i);
  // The search walks from consumer to producer; report producer first.
  const names = (cycle ?? []).reverse().map((i) => describeNode(graph.nodes[i]));
  if (names.length) names.push(names[0]);
  return new LlmccError(`graph has a cycle: ${names.join(' -> ')}`, `graph "${graph.name}"`);
}

/**
 * SSA, defined uses and produced outputs, for the graph and its subgraphs (which may
 * read values of enclosing graphs); sorts each graph's nodes topologically.
 */
function checkStructure(graph: Graph, outer: ReadonlySet<string>): void {
  const where = `graph "${graph.name}"`;
  const definedBy = new Map<string, string>();
  for (const input of graph.inputs) {
    if (definedBy.has(input.name)) throw new LlmccError(`graph input '${input.name}' is declared twice`, where);
    definedBy.set(input.name, 'a graph input');
  }
  for (const name of graph.initializers.keys()) {
    // A graph input may also be an initializer (its default value).
    if (!definedBy.has(name)) definedBy.set(name, 'an initializer');
  }
  const nodeNames = new Set<string>();
  for (const node of graph.nodes) {
    if (nodeNames.has(node.name) && node.name) {
      throw new LlmccError(`node name "${node.name}" is used by more than one node`, where);
    }
    nodeNames.add(node.name);
    for (const name of node.outputs) {
      if (!name) continue;
      const earlier = definedBy.get(name);
      if (earlier) {
        throw new LlmccError(`value '${name}' is defined more than once: by ${earlier} and by ${describeNode(node)}`, where);
      }
      definedBy.set(name, describeNode(node));
    }
  }

  const visible = (name: string): boolean => definedBy.has(name) || outer.has(name);
  const undefinedUses: string[] = [];
  for (const node of graph.nodes) {
    for (const name of node.inputs) {
      if (name && !visible(name)) undefinedUses.push(`'${name}' (input of ${describeNode(node)})`);
    }
  }
  if (undefinedUses.length) {
    const shown = undefinedUses.slice(0, 5).join(', ') + (undefinedUses.length > 5 ? ', …' : '');
    throw new LlmccError(`value${undefinedUses.length === 1 ? '' : 's'} used but never defined: ${shown}`, where);
  }
  for (const output of graph.outputs) {
    if (!visible(output.name)) throw new LlmccError(`graph output '${output.name}' is never produced`, where);
  }

  graph.nodes = topologicalSort(graph);

  const inner = new Set([...outer, ...definedBy.keys()]);
  for (const node of graph.nodes) forEachSubgraph(node, (g) => checkStructure(g, inner));
}

/** A binary min-heap of node indices. */
class MinHeap {
  private readonly items: number[] = [];

  get size(): number {
    return this.items.length;
  }

  push(value: number): void {
    const a = this.items;
    a.push(value);
    let i = a.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (a[parent] <= a[i]) break;
      [a[parent], a[i]] = [a[i], a[parent]];
      i = parent;
    }
  }

  pop(): number {
    const a = this.items;
    const top = a[0];
    const last = a.pop() as number;
    if (a.length) {
      a[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < a.length && a[l] < a[m]) m = l;
        if (r < a.length && a[r] < a[m]) m = r;
        if (m === i) break;
        [a[i], a[m]] = [a[m], a[i]];
        i = m;
      }
    }
    return top;
  }
}
