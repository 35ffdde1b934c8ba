import type { Graph, Node, Weight } from '../ir/graph.js';
import { Tensor } from '../ir/tensor.js';
import { bitWidth } from '../ir/dtype.js';

/** An in-memory constant as a graph initializer. */
export function weightFromTensor(name: string, tensor: Tensor): Weight {
  return {
    name,
    dtype: tensor.dtype,
    shape: [...tensor.shape],
    byteLength: Math.ceil((tensor.size * bitWidth(tensor.dtype)) / 8),
    location: { kind: 'inline' },
    load: () => tensor,
  };
}

/** Every value name defined or used in the graph (for fresh names). */
function allNames(graph: Graph): Set<string> {
  const names = new Set<string>([...graph.inputs.map((i) => i.name), ...graph.initializers.keys()]);
  for (const node of graph.nodes) {
    node.inputs.forEach((n) => names.add(n));
    node.outputs.forEach((n) => names.add(n));
    names.add(node.name);
  }
  return names;
}

/** A name not yet used in the graph, derived from `base`. */
export function freshName(graph: Graph, base: string): string {
  const taken = allNames(graph);
  if (!taken.has(base)) return base;
  for (let i = 1; ; i++) if (!taken.has(`${base}_${i}`)) return `${base}_${i}`;
}

/** Consumers of each value: node and input position. */
export function consumers(graph: Graph): Map<string, { node: Node; index: number }[]> {
  const uses = new Map<string, { node: Node; index: number }[]>();
  for (const node of graph.nodes) {
    node.inputs.forEach((name, index) => {
      if (!name) return;
      const list = uses.get(name) ?? [];
      list.push({ node, index });
      uses.set(name, list);
    });
  }
  return uses;
}

/** The node producing each value. */
export function producers(graph: Graph): Map<string, Node> {
  const map = new Map<string, Node>();
  for (const node of graph.nodes) for (const name of node.outputs) if (name) map.set(name, node);
  return map;
}

/**
 * Removes nodes whose outputs nothing reads (graph outputs count as read) and initializers
 * no node reads. Returns how many nodes were removed.
 */
export function removeDeadCode(graph: Graph): number {
  const live = new Set(graph.outputs.map((o) => o.name));
  const kept: Node[] = [];
  for (let i = graph.nodes.length - 1; i >= 0; i--) {
    const node = graph.nodes[i];
    const hasSubgraph = [...node.attributes.values()].some((a) => a.kind === 'graph' || a.kind === 'graphs');
    if (hasSubgraph || node.outputs.some((o) => o && live.has(o))) {
      kept.push(node);
      node.inputs.forEach((n) => n && live.add(n));
      for (const attr of node.attributes.values()) {
        const graphs = attr.kind === 'graph' ? [attr.value] : attr.kind === 'graphs' ? attr.value : [];
        for (const g of graphs) for (const n of g.nodes) n.inputs.forEach((x) => x && live.add(x));
      }
    }
  }
  const removed = graph.nodes.length - kept.length;
  graph.nodes = kept.reverse();
  const inputNames = new Set(graph.inputs.map((i) => i.name));
  for (const name of [...graph.initializers.keys()]) {
    if (!live.has(name) && !inputNames.has(name)) graph.initializers.delete(name);
  }
  return removed;
}
