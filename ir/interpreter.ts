import type { Graph, Node, TensorType } from './graph.js';
import { LlmccError, describeNode } from './errors.js';
import { Tensor } from './tensor.js';
import { Attrs } from './ops/attrs.js';
import { lookupOp } from './ops/registry.js';

/**
 * The reference interpreter: runs a graph node by node with each op's `evaluate`.
 * It is the oracle every backend is compared with, so it favours clarity over speed.
 */
export interface InterpretOptions {
  /** Opset version per domain ('' is ai.onnx). */
  opsets: ReadonlyMap<string, number>;
  /** Called after each node; used by tests and differential tools to see intermediates. */
  onNode?: (node: Node, outputs: Tensor[]) => void;
}

/** Values visible while running a graph: its own and those of enclosing graphs. */
class Scope {
  private readonly values = new Map<string, Tensor>();
  constructor(private readonly graph: Graph, private readonly parent?: Scope) {}

  set(name: string, value: Tensor): void {
    this.values.set(name, value);
  }

  delete(name: string): void {
    this.values.delete(name);
  }

  get(name: string): Tensor | undefined {
    const own = this.values.get(name);
    if (own) return own;
    const weight = this.graph.initializers.get(name);
    if (weight) {
      const tensor = weight.load();
      this.values.set(name, tensor);
      return tensor;
    }
    return this.parent?.get(name);
  }
}

export function interpret(
  graph: Graph,
  feeds: ReadonlyMap<string, Tensor>,
  options: InterpretOptions,
): Map<string, Tensor> {
  const scope = new Scope(graph);
  for (const input of graph.inputs) {
    const fed = feeds.get(input.name);
    if (fed) {
      checkAgainstType('input', input.name, input.type, fed);
      scope.set(input.name, fed);
    } else if (!graph.initializers.has(input.name)) {
      throw new LlmccError(`missing value for graph input '${input.name}'`);
    }
  }
  const results = runGraph(graph, scope, options);
  // Backends size buffers from the verified types: an output that contradicts them is a bad model, not a result.
  for (const output of graph.outputs) {
    const type = graph.valueInfo.get(output.name) ?? output.type;
    const value = results.get(output.name);
    if (value) checkAgainstType('output', output.name, type, value);
  }
  return results;
}

/** A feed or result must match the model's declared dtype and static dims. */
function checkAgainstType(role: 'input' | 'output', name: string, type: TensorType | undefined, value: Tensor): void {
  if (!type) return;
  if (type.dtype !== value.dtype) {
    throw new LlmccError(`${role} '${name}' has dtype ${value.dtype} but the model declares ${type.dtype}`);
  }
  const shape = type.shape;
  if (!shape) return;
  const mismatch = shape.length !== value.shape.length ||
    shape.some((d, i) => typeof d === 'number' && d !== value.shape[i]);
  if (mismatch) {
    throw new LlmccError(
      `${role} '${name}' has shape [${value.shape.join(',')}] but the model declares [${shape.join(',')}]`,
    );
  }
}

function runGraph(graph: Graph, scope: Scope, options: InterpretOptions): Map<string, Tensor> {
  const lastUse = lastUses(graph);
  const keep = new Set(graph.outputs.map((o) => o.name));
  graph.nodes.forEach((node, index) => {
    const outputs = runNode(node, scope, options);
    node.outputs.forEach((name, i) => {
      if (name) scope.set(name, outputs[i]);
    });
    options.onNode?.(node, outputs);
    for (const name of node.inputs) {
      if (name && lastUse.get(name) === index && !keep.has(name)) scope.delete(name);
    }
  });
  const result = new Map<string, Tensor>();
  for (const output of graph.outputs) {
    const value = scope.get(output.name);
    if (!value) throw new LlmccError(`graph output '${output.name}' is never produced`);
    result.set(output.name, value);
  }
  return result;
}

/** Index of the last node reading each value, so intermediates can be dropped early. */
function lastUses(graph: Graph): Map<string, number> {
  const last = new Map<string, number>();
  graph.nodes.forEach((node, index) => {
    for (const name of node.inputs) if (name) last.set(name, index);
    // Subgraphs read outer values implicitly; keep everything a subgraph node could see.
    for (const attr of node.attributes.values()) {
      if (attr.kind === 'graph' || attr.kind === 'graphs') {
        for (const g of attr.kind === 'graph' ? [attr.value] : attr.value) {
          for (const name of outerReferences(g)) last.set(name, Math.max(last.get(name) ?? index, index));
        }
      }
    }
  });
  return last;
}

/** Names a subgraph reads that it does not define itself. */
export function outerReferences(graph: Graph): Set<string> {
  const defined = new Set<string>([...graph.inputs.map((i) => i.name), ...graph.initializers.keys()]);
  const used = new Set<string>();
  for (const node of graph.nodes) {
    for (const name of node.inputs) if (name && !defined.has(name)) used.add(name);
    for (const attr of node.attributes.values()) {
      if (attr.kind === 'graph') for (const n of outerReferences(attr.value)) if (!defined.has(n)) used.add(n);
      if (attr.kind === 'graphs') for (const g of attr.value) for (const n of outerReferences(g)) if (!defined.has(n)) used.add(n);
    }
    for (const name of node.outputs) if (name) defined.add(name);
  }
  return used;
}

function runNode(node: Node, scope: Scope, options: InterpretOptions): Tensor[] {
  const def = lookupOp(node.domain, node.op);
  if (!def) throw new LlmccError('unsupported op', describeNode(node));
  const inputs = node.inputs.map((name) => {
    if (!name) return undefined;
    const value = scope.get(name);
    if (!value) throw new LlmccError(`input '${name}' is used before it is defined`, describeNode(node));
    return value;
  });
  const opset = options.opsets.get(node.domain) ?? 1;
  let outputs: Tensor[];
  try {
    outputs = def.evaluate({
      node,
      opset,
      attrs: new Attrs(node),
      inputs,
      runSubgraph: (subgraph, subInputs) => {
        const inner = new Scope(subgraph, scope);
        subgraph.inputs.forEach((input, i) => {
          if (subInputs[i]) inner.set(input.name, subInputs[i]);
        });
        const result = runGraph(subgraph, inner, options);
        return subgraph.outputs.map((o) => result.get(o.name) as Tensor);
      },
    });
  } catch (error) {
    if (error instanceof LlmccError) {
      throw error.where ? error : new LlmccError(error.message, describeNode(node));
    }
    const message = error instanceof Error ? error.message : String(error);
    // An op sizing a buffer from hostile shapes hits the engine's allocation limits: a resource refusal, not a bug.
    if (error instanceof RangeError && /typed array length|array buffer allocation|invalid array length/i.test(message)) {
      throw new LlmccError(`a value of this node is too large to allocate (${message})`, describeNode(node));
    }
    throw new LlmccError(`internal error while evaluating: ${message}`, describeNode(node));
  }
  const produced = node.outputs.filter((n, i) => n && outputs[i] === undefined);
  if (produced.length) {
    throw new LlmccError(`op produced no value for output(s) ${produced.join(', ')}`, describeNode(node));
  }
  return outputs;
}
