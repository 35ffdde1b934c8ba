import type { Attribute, Graph, Node } from '../graph.js';
import type { Tensor } from '../tensor.js';
import { LlmccError, describeNode } from '../errors.js';

type Kind = Attribute['kind'];
type ValueOf<K extends Kind> = Extract<Attribute, { kind: K }>['value'];

/** Typed access to a node's attributes, with errors that name the node. */
export class Attrs {
  constructor(private readonly node: Node) {}

  has(name: string): boolean {
    return this.node.attributes.has(name);
  }

  private get<K extends Kind>(name: string, kind: K, fallback: ValueOf<K> | undefined): ValueOf<K> {
    const attr = this.node.attributes.get(name);
    if (!attr) {
      if (fallback !== undefined) return fallback;
      throw new LlmccError(`missing required attribute '${name}'`, describeNode(this.node));
    }
    if (attr.kind !== kind) {
      throw new LlmccError(`attribute '${name}' should be ${kind}, got ${attr.kind}`, describeNode(this.node));
    }
    return attr.value as ValueOf<K>;
  }

  int(name: string, fallback?: number): number { return this.get(name, 'int', fallback); }
  float(name: string, fallback?: number): number { return this.get(name, 'float', fallback); }
  string(name: string, fallback?: string): string { return this.get(name, 'string', fallback); }
  ints(name: string, fallback?: number[]): number[] { return this.get(name, 'ints', fallback); }
  floats(name: string, fallback?: number[]): number[] { return this.get(name, 'floats', fallback); }
  strings(name: string, fallback?: string[]): string[] { return this.get(name, 'strings', fallback); }
  tensor(name: string): Tensor { return this.get(name, 'tensor', undefined); }
  graph(name: string): Graph { return this.get(name, 'graph', undefined); }

  /** Optional int attribute without a default: undefined when absent. */
  optionalInt(name: string): number | undefined {
    return this.has(name) ? this.int(name) : undefined;
  }

  optionalInts(name: string): number[] | undefined {
    return this.has(name) ? this.ints(name) : undefined;
  }

  /** An error about this node, for op implementations. */
  error(message: string): LlmccError {
    return new LlmccError(message, describeNode(this.node));
  }
}
