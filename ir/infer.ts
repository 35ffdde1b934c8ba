import type { Dim, Graph, Node, TensorType } from './graph.js';
import { SymbolSource } from './dims.js';
import { isInteger } from './dtype.js';
import { LlmccError, describeNode } from './errors.js';
import { Attrs } from './ops/attrs.js';
import { lookupOp } from './ops/registry.js';
import type { OutputInfo } from './ops/types.js';
import { Tensor, sizeOf } from './tensor.js';
import { topologicalSort } from './verify.js';

/**
 * Shape and type inference: runs each op's `infer` over a graph in topological order,
 * folding small constants on the way so shape computations (Shape → Gather → Concat →
 * Reshape) stay exact, and records every value's type in `graph.valueInfo`.
 */

/** Initializers and folded values up to this many elements are offered as constants. */
export const CONSTANT_LIMIT = 4096;
/** Integer constants up to this many elements also serve as symbolic shape values. */
const SHAPE_VALUE_LIMIT = 64;
/** Ops whose result is not a function of their inputs: never folded. */
const NONDETERMINISTIC = new Set(['RandomNormal', 'RandomUniform', 'RandomNormalLike', 'RandomUniformLike', 'Bernoulli', 'Multinomial']);

export function inferTypes(graph: Graph, opsets: ReadonlyMap<string, number>): void {
  const run = new InferenceRun(opsets, graph);
  run.inferGraph(graph, undefined, undefined);
}

/** What inference knows about one value. */
interface ValueFacts {
  type: TensorType;
  /** A value computed at inference time, or how to load it (initializers load lazily). */
  constant?: () => Tensor | undefined;
  shapeValue?: Dim[];
}

/** Values visible in a graph: its own, then those of enclosing graphs. */
class Scope {
  private readonly values = new Map<string, ValueFacts>();
  constructor(readonly parent?: Scope) {}

  set(name: string, facts: ValueFacts): void {
    this.values.set(name, facts);
  }

  get(name: string): ValueFacts | undefined {
    return this.values.get(name) ?? this.parent?.get(name);
  }
}

/** Declared types of a graph as it came in, kept so repeated subgraph inference merges with the file's types, not its own earlier results. */
interface Declared {
  valueInfo: Map<string, TensorType>;
  /** Undefined for untyped subgraph inputs/outputs (the enclosing op supplies them). */
  inputs: (TensorType | undefined)[];
  outputs: (TensorType | undefined)[];
}

/**
 * Symbols for data-dependent dims. Skips names the model already uses, and remembers
 * which it made: a declared dim is preferred over one of these when merging.
 */
class FreshSymbols extends SymbolSource {
  readonly made = new Set<string>();
  constructor(private readonly taken: ReadonlySet<string>) {
    super('unk');
  }

  override fresh(): string {
    let name = super.fresh();
    while (this.taken.has(name)) name = super.fresh();
    this.made.add(name);
    return name;
  }

  /** Whether a dim mentions a symbol made in this run. */
  isFresh(dim: Dim): boolean {
    if (typeof dim === 'number') return false;
    return (dim.match(/[A-Za-z_][A-Za-z0-9_]*/g) ?? []).some((token) => this.made.has(token));
  }
}

class InferenceRun {
  readonly symbols: FreshSymbols;
  private readonly declared = new Map<Graph, Declared>();

  constructor(private readonly opsets: ReadonlyMap<string, number>, root: Graph) {
    const taken = new Set<string>();
    collectSymbolNames(root, taken);
    this.symbols = new FreshSymbols(taken);
  }

  private declaredOf(graph: Graph): Declared {
    let declared = this.declared.get(graph);
    if (!declared) {
      declared = {
        valueInfo: new Map(graph.valueInfo),
        inputs: graph.inputs.map((i) => i.type),
        outputs: graph.outputs.map((o) => o.type),
      };
      this.declared.set(graph, declared);
    }
    return declared;
  }

  /**
   * Infers one graph. `inputTypes` (subgraphs only) are the types the enclosing op
   * passes in; returns the graph's output types.
   */
  inferGraph(graph: Graph, parent: Scope | undefined, inputTypes: (TensorType | undefined)[] | undefined): TensorType[] {
    const declared = this.declaredOf(graph);
    const scope = new Scope(parent);
    const inputNames = new Set(graph.inputs.map((i) => i.name));
    // Filled on the side so a failed inference leaves the graph's declared types intact.
    const types = new Map<string, TensorType>();

    graph.inputs.forEach((input, i) => {
      const given = inputTypes?.[i];
      const type = given
        ? mergeTypes(given, declared.inputs[i], input.name, `input of subgraph "${graph.name}"`, this.symbols)
        : declared.inputs[i];
      if (!type) {
        throw new LlmccError(`input '${input.name}' has no type and no enclosing op supplies one`, `graph "${graph.name}"`);
      }
      input.type = type;
      scope.set(input.name, { type });
      types.set(input.name, type);
    });
    for (const [name, weight] of graph.initializers) {
      if (inputNames.has(name)) continue; // an overridable default: typed (and not constant) as the input
      const stored: TensorType = { dtype: weight.dtype, shape: [...weight.shape] };
      // The declared type may add what the bytes cannot say (quantization metadata).
      const type = mergeTypes(stored, declared.valueInfo.get(name), name, `initializer of graph "${graph.name}"`);
      let loaded: Tensor | undefined | null = null;
      const constant = (): Tensor | undefined => {
        if (loaded === null) loaded = sizeOf(weight.shape) <= CONSTANT_LIMIT ? tryLoad(() => weight.load()) : undefined;
        return loaded;
      };
      scope.set(name, { type, constant });
      types.set(name, type);
    }

    for (const node of topologicalSort(graph)) this.inferNode(node, types, scope, declared);

    const outputTypes = graph.outputs.map((output, i) => {
      const facts = scope.get(output.name);
      if (!facts) throw new LlmccError(`graph output '${output.name}' is never produced`, `graph "${graph.name}"`);
      return mergeTypes(facts.type, declared.outputs[i], output.name, `output of graph "${graph.name}"`, this.symbols);
    });
    graph.outputs.forEach((output, i) => {
      output.type = outputTypes[i];
      // The node that makes it sees the same refinement (e.g. a declared dim name).
      if (types.has(output.name)) types.set(output.name, outputTypes[i]);
    });
    graph.valueInfo = types;
    return outputTypes;
  }

  private inferNode(node: Node, types: Map<string, TensorType>, scope: Scope, declared: Declared): void {
    const def = lookupOp(node.domain, node.op);
    if (!def) throw new LlmccError('unsupported op', describeNode(node));
    const facts = node.inputs.map((name) => {
      if (!name) return undefined;
      const known = scope.get(name);
      if (!known) throw new LlmccError(`input '${name}' is used before it is defined`, describeNode(node));
      return known;
    });
    const constantOf = (i: number): Tensor | undefined => {
      const f = facts[i];
      if (!f) return undefined;
      const value = f.constant?.();
      if (value) return value;
      // A fully static shape value is as good as a constant (Shape of a static tensor).
      const sv = f.shapeValue;
      if (sv && sv.every((d) => typeof d === 'number') && isInteger(f.type.dtype) && f.type.shape && f.type.shape.length <= 1) {
        const shape = f.type.shape.length === 0 ? [] : [sv.length];
        if (f.type.shape.length === 0 && sv.length !== 1) return undefined;
        return Tensor.fromNumbers(f.type.dtype, shape, sv as number[]);
      }
      return undefined;
    };
    const opset = this.opsets.get(node.domain) ?? 1;
    const attrs = new Attrs(node);

    let infos: OutputInfo[];
    try {
      infos = def.infer({
        node,
        opset,
        attrs,
        inputs: facts.map((f) => f?.type),
        constant: constantOf,
        shapeValue: (i) => facts[i]?.shapeValue ?? shapeValueOfConstant(constantOf(i)),
        symbols: this.symbols,
        inferSubgraph: (subgraph, inputs) => this.inferGraph(subgraph, scope, inputs),
      });
    } catch (error) {
      throw withNode(error, node, 'inferring types');
    }

    const folded = this.fold(node, facts, constantOf, infos);
    node.outputs.forEach((name, i) => {
      if (!name) return;
      const info = infos[i];
      if (!info) throw new LlmccError(`type inference gave no type for output '${name}'`, describeNode(node));
      // An op fed values of the wrong kind (e.g. float indices) can compute dims that are not dims.
      if (info.type.shape?.some((d) => typeof d === 'string' ? !d : !Number.isSafeInteger(d) || d < 0)) {
        throw new LlmccError(`type inference gave an invalid shape for output '${name}' (check the types of its inputs)`, describeNode(node));
      }
      const value = folded?.[i];
      // A folded value is exact; it refines whatever the op could say symbolically.
      let type: TensorType = value ? { dtype: value.dtype, shape: [...value.shape] } : info.type;
      const known = declared.valueInfo.get(name);
      // A folded value is the truth: exporters sometimes declare constants with the wrong
      // rank (ORT warns and keeps the inferred shape), so only its quant info is taken.
      if (known && value) type = known.quant ? { ...type, quant: known.quant } : type;
      else if (known) type = mergeTypes(type, known, name, describeNode(node), this.symbols);
      types.set(name, type);
      const shapeValue = shapeValueOfConstant(value) ?? info.shapeValue;
      scope.set(name, { type, constant: value ? () => value : undefined, shapeValue });
    });
  }

  /** Evaluates a node whose inputs are all small constants; undefined when it cannot. */
  private fold(
    node: Node,
    facts: (ValueFacts | undefined)[],
    constantOf: (i: number) => Tensor | undefined,
    infos: OutputInfo[],
  ): (Tensor | undefined)[] | undefined {
    const def = lookupOp(node.domain, node.op);
    if (!def || NONDETERMINISTIC.has(node.op)) return undefined;
    for (const attr of node.attributes.values()) if (attr.kind === 'graph' || attr.kind === 'graphs') return undefined;
    const isConstantNode = node.domain === '' && node.op === 'Constant';
    const inputs: (Tensor | undefined)[] = [];
    for (let i = 0; i < node.inputs.length; i++) {
      if (!facts[i]) {
        inputs.push(undefined);
        continue;
      }
      const value = constantOf(i);
      if (!value || value.size > CONSTANT_LIMIT) return undefined;
      inputs.push(value);
    }
    if (!isConstantNode) {
      for (const info of infos) {
        const shape = info.type.shape;
        if (shape && shape.every((d) => typeof d === 'number') && sizeOf(shape as number[]) > CONSTANT_LIMIT) return undefined;
      }
    }
    let outputs: Tensor[];
    try {
      outputs = def.evaluate({
        node,
        opset: this.opsets.get(node.domain) ?? 1,
        attrs: new Attrs(node),
        inputs,
        runSubgraph: () => {
          throw new LlmccError('subgraphs are not folded');
        },
      });
    } catch {
      // Folding is an optimization: whatever stops it here, the interpreter reports at run time.
      return undefined;
    }
    return outputs.map((t) => (t && (isConstantNode || t.size <= CONSTANT_LIMIT) ? t : undefined));
  }
}

function tryLoad(load: () => Tensor): Tensor | undefined {
  try {
    return load();
  } catch {
    return undefined; // e.g. elided or missing external data: the value is just not known
  }
}

function shapeValueOfConstant(value: Tensor | undefined): Dim[] | undefined {
  if (!value || value.rank > 1 || value.size > SHAPE_VALUE_LIMIT || !isInteger(value.dtype)) return undefined;
  return value.toArray();
}

function withNode(error: unknown, node: Node, doing: string): LlmccError {
  if (error instanceof LlmccError) return error.where ? error : new LlmccError(error.message, describeNode(node));
  const message = error instanceof Error ? error.message : String(error);
  return new LlmccError(`internal error while ${doing}: ${message}`, describeNode(node));
}

export function formatShape(shape: readonly Dim[] | undefined): string {
  return shape ? `[${shape.join(',')}]` : '[*]';
}

/**
 * Combines an inferred type with a declared one. Static dims win over symbolic ones;
 * a dim made up by inference yields to a declared name; two different static dims, two
 * ranks or two dtypes are an error that names the value and `where`.
 */
export function mergeTypes(
  inferred: TensorType,
  declared: TensorType | undefined,
  name: string,
  where: string,
  symbols?: { isFresh(dim: Dim): boolean },
): TensorType {
  if (!declared) return inferred;
  if (inferred.dtype !== declared.dtype) {
    throw new LlmccError(`dtype mismatch for value '${name}': inferred ${inferred.dtype}, declared ${declared.dtype}`, where);
  }
  if (!inferred.shape) return inferred.quant && !declared.quant ? { ...declared, quant: inferred.quant } : declared;
  if (!declared.shape) return declared.quant && !inferred.quant ? { ...inferred, quant: declared.quant } : inferred;
  const mismatch = (): LlmccError =>
    new LlmccError(
      `shape mismatch for value '${name}': inferred ${formatShape(inferred.shape)}, declared ${formatShape(declared.shape)}`,
      where,
    );
  if (inferred.shape.length !== declared.shape.length) throw mismatch();
  const shape = inferred.shape.map((d, i) => {
    const e = (declared.shape as Dim[])[i];
    if (typeof d === 'number' && typeof e === 'number') {
      if (d !== e) throw mismatch();
      return d;
    }
    if (typeof d === 'number') return d;
    if (typeof e === 'number') return e;
    return symbols?.isFresh(d) ? e : d;
  });
  const quant = inferred.quant ?? declared.quant;
  return quant ? { dtype: inferred.dtype, shape, quant } : { dtype: inferred.dtype, shape };
}

/** Every identifier used in a symbolic dim anywhere in the graph (and its subgraphs). */
function collectSymbolNames(graph: Graph, into: Set<string>): void {
  const add = (type: TensorType | undefined): void => {
    for (const d of type?.shape ?? []) {
      if (typeof d === 'string') for (const token of d.match(/[A-Za-z_][A-Za-z0-9_]*/g) ?? []) into.add(token);
    }
  };
  for (const v of [...graph.inputs, ...graph.outputs]) add(v.type);
  for (const type of graph.valueInfo.values()) add(type);
  for (const node of graph.nodes) {
    for (const attr of node.attributes.values()) {
      if (attr.kind === 'graph') collectSymbolNames(attr.value, into);
      if (attr.kind === 'graphs') for (const g of attr.value) collectSymbolNames(g, into);
    }
  }
}
