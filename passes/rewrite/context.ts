import { bitWidth, type DType } from '../../ir/dtype.js';
import type { Dim, Graph, Model, Node, TensorType } from '../../ir/graph.js';
import { Tensor } from '../../ir/tensor.js';
import { consumers, freshName, producers, weightFromTensor } from '../graph-edit.js';

/**
 * What rules see of the graph while matching: producers, readers, constants and inferred
 * types. Built once per sweep of the rewriter; `refresh()` after an edit.
 */
export class RewriteContext {
  private made = new Map<string, Node>();
  private uses = new Map<string, { node: Node; index: number }[]>();
  private outputs = new Set<string>();
  private constantNodes = new Map<string, Tensor>();

  constructor(readonly model: Model) {
    this.refresh();
  }

  get graph(): Graph {
    return this.model.graph;
  }

  /** Re-reads producers and readers after the graph changed. */
  refresh(): void {
    const graph = this.graph;
    this.made = producers(graph);
    this.uses = consumers(graph);
    this.outputs = new Set(graph.outputs.map((o) => o.name));
    this.constantNodes = new Map();
    for (const node of graph.nodes) {
      const value = node.attributes.get('value');
      if (node.domain === '' && node.op === 'Constant' && value?.kind === 'tensor') this.constantNodes.set(node.outputs[0], value.value);
    }
  }

  producer(value: string): Node | undefined {
    return this.made.get(value);
  }

  /** Nodes reading `value` (once per input position). */
  readers(value: string): Node[] {
    return (this.uses.get(value) ?? []).map((u) => u.node);
  }

  isGraphOutput(value: string): boolean {
    return this.outputs.has(value);
  }

  /** The value of an initializer (not also a graph input, which a feed may override) or Constant node. */
  constant(value: string): Tensor | undefined {
    if (!value) return undefined;
    const weight = this.graph.initializers.get(value);
    if (weight) return this.graph.inputs.some((i) => i.name === value) ? undefined : weight.load();
    return this.constantNodes.get(value);
  }

  /**
   * How to load a constant later, without loading it now (an initializer's lazy `load`; a
   * Constant node's tensor): rules that combine large weights keep them lazy.
   */
  constantLoader(value: string): (() => Tensor) | undefined {
    const weight = this.graph.initializers.get(value);
    if (weight) return this.graph.inputs.some((i) => i.name === value) ? undefined : () => weight.load();
    const tensor = this.constantNodes.get(value);
    return tensor ? () => tensor : undefined;
  }

  isConstant(value: string): boolean {
    if (this.graph.initializers.has(value)) return !this.graph.inputs.some((i) => i.name === value);
    return this.constantNodes.has(value);
  }

  type(value: string): TensorType | undefined {
    const weight = this.graph.initializers.get(value);
    if (weight) return { dtype: weight.dtype, shape: [...weight.shape] };
    return this.graph.valueInfo.get(value) ?? this.graph.inputs.find((i) => i.name === value)?.type;
  }

  shape(value: string): Dim[] | undefined {
    return this.type(value)?.shape;
  }

  dtype(value: string): DType | undefined {
    return this.type(value)?.dtype;
  }

  /** The last dim of a value's shape, when its rank is known. */
  lastDim(value: string): Dim | undefined {
    const shape = this.shape(value);
    return shape && shape.length ? shape[shape.length - 1] : undefined;
  }

  /** The opset imported for a domain (0 when absent). */
  opset(domain: string): number {
    return this.model.opsets.get(domain) ?? 0;
  }

  /** Declares a domain the rewrite introduces ops of (com.microsoft, llmcc). */
  useDomain(domain: string, version = 1): void {
    if (!this.model.opsets.has(domain)) this.model.opsets.set(domain, version);
  }

  freshName(base: string): string {
    return freshName(this.graph, base);
  }

  /**
   * Adds an initializer computed on demand by `load` (each call recomputes: a merged 1B-model
   * weight is built when the quantizer reads it, then dropped), under a fresh name.
   */
  addLazyConstant(base: string, dtype: DType, shape: readonly number[], load: () => Tensor): string {
    const name = this.freshName(base);
    const size = shape.reduce((a, b) => a * b, 1);
    this.graph.initializers.set(name, {
      name, dtype, shape: [...shape], byteLength: Math.ceil((size * bitWidth(dtype)) / 8), location: { kind: 'inline' }, load,
    });
    return name;
  }

  /** Adds an initializer under a fresh name derived from `base`; returns the name. */
  addConstant(base: string, tensor: Tensor): string {
    const name = this.freshName(base);
    this.graph.initializers.set(name, weightFromTensor(name, tensor));
    return name;
  }
}

/** An int64 1-D tensor (shape and split inputs). */
export function int64s(values: readonly number[]): Tensor {
  return Tensor.fromNumbers('i64', [values.length], values);
}
