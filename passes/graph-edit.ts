import type { Attribute, Graph, Node, Weight } from '../ir/graph.js';
import type { DType } from '../ir/dtype.js';
import { LlmccError, describeNode } from '../ir/errors.js';
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

/** An int attribute value. */
export function intAttr(value: number): Attribute {
  return { kind: 'int', value };
}

/** A node's int attribute; `fallback` when absent (else a clear error naming the node). */
export function readIntAttr(node: Node, name: string, fallback?: number): number {
  const attr = node.attributes.get(name);
  if (!attr) {
    if (fallback !== undefined) return fallback;
    throw new LlmccError(`missing required attribute '${name}'`, describeNode(node));
  }
  if (attr.kind !== 'int') throw new LlmccError(`attribute '${name}' should be int, got ${attr.kind}`, describeNode(node));
  return attr.value;
}

/** The dtype of a value as inference last saw it (f32 when unknown). */
export function valueDtype(graph: Graph, name: string): DType {
  return graph.valueInfo.get(name)?.dtype ?? graph.inputs.find((i) => i.name === name)?.type?.dtype ?? 'f32';
}

/** Deletes the initializers among `names` that no node reads and that are not graph inputs/outputs. */
export function dropUnreadInitializers(graph: Graph, names: Iterable<string>): void {
  const uses = consumers(graph);
  const kept = new Set([...graph.inputs, ...graph.outputs].map((v) => v.name));
  for (const name of names) {
    if (!uses.has(name) && !kept.has(name)) {
      graph.initializers.delete(name);
      graph.valueInfo.delete(name);
    }
  }
}
