import type { Model, Node } from '../../ir/graph.js';
import { verifyModel } from '../../ir/verify.js';

/** Which node (and which of its outputs) produced a value. */
export interface Producer {
  node: Node;
  index: number;
  /** Position of the node in topological order: the first divergence is the lowest. */
  order: number;
}

/**
 * Makes every value computed by a top-level node a graph output too (after verification,
 * which orders the nodes and infers their types), so one run per target yields all
 * intermediates. Values inside subgraphs (If/Loop bodies) are not reachable this way.
 * Returns the producer of each exposed or original output.
 */
export function exposeIntermediates(model: Model): Map<string, Producer> {
  verifyModel(model);
  const graph = model.graph;
  const producers = new Map<string, Producer>();
  const outputs = new Set(graph.outputs.map((o) => o.name));
  graph.nodes.forEach((node, order) => {
    node.outputs.forEach((name, index) => {
      if (!name) return;
      producers.set(name, { node, index, order });
      if (outputs.has(name)) return;
      const type = graph.valueInfo.get(name);
      // A value of unknown type cannot be declared as an output; it stays internal.
      if (!type) return;
      graph.outputs.push({ name, type });
      outputs.add(name);
    });
  });
  return producers;
}
