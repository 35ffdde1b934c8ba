import type { DType } from '../../ir/dtype.js';
import { LlmccError, describeNode } from '../../ir/errors.js';
import type { Model, Node, ValueInfo, Weight } from '../../ir/graph.js';
import type { Tensor } from '../../ir/tensor.js';
import type { Backend } from '../../targets/backend.js';
import { referenceBackend } from '../../targets/ref/backend.js';
import { exposeIntermediates, type Producer } from './expose.js';
import { type DiffTolerance, type ValueDiff, diffTolerance, measureValue } from './measure.js';

/** One intermediate (or output) value of one target against the reference. */
export interface NodeDiff {
  value: string;
  node: string;
  op: string;
  domain: string;
  /** Topological position of the producing node. */
  order: number;
  dtype: DType;
  diff: ValueDiff;
}

export interface TargetDiff {
  target: string;
  /** `skipped`: the target refused the model (unsupported op, limit) with `reason`. */
  status: 'compared' | 'skipped';
  reason?: string;
  values: NodeDiff[];
  /** Exposed values the target did not return. */
  missing: string[];
}

export interface ModelDiff {
  /** The model's name in reports (its folder, relative to a suite's root). */
  name: string;
  targets: TargetDiff[];
}

export interface DiffOptions {
  /**
   * Run each node alone on the target, fed the reference's values of its inputs, instead of
   * the whole graph: the disagreement is the op's own, not accumulated upstream.
   */
  isolate?: boolean;
  /** Applied to every fresh copy of the model before it is exposed (e.g. low-bit lowering for a target). */
  prepare?: (model: Model, target: string) => void;
  /** Reference results are shared between targets whose `prepareKey` is equal. */
  prepareKey?: (target: string) => string;
  /** Overrides of the per-dtype tolerances (measure.ts). */
  tolerance?: Partial<DiffTolerance>;
}

function toleranceFor(dtype: DType, override: Partial<DiffTolerance> | undefined): DiffTolerance {
  return { ...diffTolerance(dtype), ...override };
}

/**
 * Runs one graph on every target and on the reference interpreter with every intermediate
 * value exposed as an output, and measures each value's disagreement. `load` gives a fresh
 * copy of the model each time (targets may transform what they are given).
 */
export async function diffModel(
  name: string,
  load: () => Promise<Model>,
  feeds: ReadonlyMap<string, Tensor>,
  targets: readonly Backend[],
  options: DiffOptions = {},
): Promise<ModelDiff> {
  const refRuns = new Map<string, Promise<Map<string, Tensor>>>();
  const prepared = async (target: string): Promise<{ model: Model; producers: Map<string, Producer> }> => {
    const model = await load();
    options.prepare?.(model, target);
    return { model, producers: exposeIntermediates(model) };
  };
  const referenceFor = (target: string): Promise<Map<string, Tensor>> => {
    const key = options.prepareKey?.(target) ?? '';
    let run = refRuns.get(key);
    if (!run) {
      run = prepared(target).then(async ({ model }) => (await referenceBackend.prepare(model)).run(feeds));
      refRuns.set(key, run);
    }
    return run;
  };

  const results: TargetDiff[] = [];
  for (const backend of targets) {
    if (backend.name === referenceBackend.name) continue;
    if (options.isolate) {
      const { model, producers } = await prepared(backend.name);
      const known = new Map([...feeds, ...(await referenceFor(backend.name))]);
      results.push(await diffIsolated(model, producers, known, backend, options));
      continue;
    }
    let outputs: Map<string, Tensor>;
    let producers: Map<string, Producer>;
    try {
      const copy = await prepared(backend.name);
      producers = copy.producers;
      const session = await backend.prepare(copy.model);
      outputs = await session.run(feeds);
    } catch (error) {
      if (!(error instanceof LlmccError)) throw error;
      results.push({ target: backend.name, status: 'skipped', reason: error.message, values: [], missing: [] });
      continue;
    }
    const reference = await referenceFor(backend.name);
    const values: NodeDiff[] = [];
    const missing: string[] = [];
    for (const [value, producer] of producers) {
      const expected = reference.get(value);
      if (!expected) continue;
      const actual = outputs.get(value);
      if (!actual) {
        missing.push(value);
        continue;
      }
      values.push(nodeDiff(value, producer, actual, expected, options));
    }
    results.push({ target: backend.name, status: 'compared', values, missing });
  }
  return { name, targets: results };
}

function nodeDiff(value: string, producer: Producer, actual: Tensor, expected: Tensor, options: DiffOptions): NodeDiff {
  const { node } = producer;
  return {
    value, node: node.name, op: node.op, domain: node.domain, order: producer.order, dtype: expected.dtype,
    diff: measureValue(actual, expected, toleranceFor(expected.dtype, options.tolerance)),
  };
}

/** One node as a model of its own: reference values of its inputs become graph inputs, weights stay weights. */
function singleNodeModel(model: Model, node: Node, reference: ReadonlyMap<string, Tensor>): { model: Model; feeds: Map<string, Tensor> } | undefined {
  const graph = model.graph;
  const inputs: ValueInfo[] = [];
  const feeds = new Map<string, Tensor>();
  const initializers = new Map<string, Weight>();
  const graphInputs = new Set(graph.inputs.map((i) => i.name));
  for (const name of new Set(node.inputs)) {
    if (!name) continue;
    const weight = graph.initializers.get(name);
    if (weight && !graphInputs.has(name)) {
      initializers.set(name, weight);
      continue;
    }
    const value = reference.get(name);
    if (!value) return undefined;
    inputs.push({ name, type: { dtype: value.dtype, shape: [...value.shape] } });
    feeds.set(name, value);
  }
  const outputs: ValueInfo[] = [];
  for (const name of node.outputs) {
    const value = name ? reference.get(name) : undefined;
    if (value) outputs.push({ name, type: { dtype: value.dtype, shape: [...value.shape] } });
  }
  if (outputs.length === 0) return undefined;
  return {
    model: { ...model, graph: { name: `${graph.name}/${node.name}`, inputs, outputs, nodes: [node], initializers, valueInfo: new Map() } },
    feeds,
  };
}

function hasSubgraph(node: Node): boolean {
  return [...node.attributes.values()].some((a) => a.kind === 'graph' || a.kind === 'graphs');
}

async function diffIsolated(
  model: Model,
  producers: ReadonlyMap<string, Producer>,
  /** The feeds and every value the reference computed. */
  reference: ReadonlyMap<string, Tensor>,
  backend: Backend,
  options: DiffOptions,
): Promise<TargetDiff> {
  const values: NodeDiff[] = [];
  const missing: string[] = [];
  const refused: string[] = [];
  for (const node of model.graph.nodes) {
    // A subgraph reads outer values implicitly: it cannot run alone.
    const single = hasSubgraph(node) ? undefined : singleNodeModel(model, node, reference);
    if (!single) {
      missing.push(...node.outputs.filter(Boolean));
      continue;
    }
    let outputs: Map<string, Tensor>;
    try {
      outputs = await (await backend.prepare(single.model)).run(single.feeds);
    } catch (error) {
      if (!(error instanceof LlmccError)) throw error;
      refused.push(error.message);
      missing.push(...node.outputs.filter(Boolean));
      continue;
    }
    for (const out of single.model.graph.outputs) {
      const actual = outputs.get(out.name);
      const producer = producers.get(out.name);
      if (!actual || !producer) {
        missing.push(out.name);
        continue;
      }
      values.push(nodeDiff(out.name, producer, actual, reference.get(out.name)!, options));
    }
  }
  if (values.length === 0 && refused.length) {
    return { target: backend.name, status: 'skipped', reason: refused[0], values, missing: [] };
  }
  return { target: backend.name, status: 'compared', values, missing, ...(refused.length ? { reason: `${refused.length} nodes refused, first: ${refused[0]}` } : {}) };
}

/** The first value (in execution order) beyond tolerance: where the target starts to diverge. */
export function firstDivergence(target: TargetDiff): NodeDiff | undefined {
  return target.values.filter((v) => v.diff.tolUse > 1).sort((a, b) => a.order - b.order)[0];
}

export function describeValue(v: NodeDiff): string {
  return `${describeNode({ name: v.node, op: v.op, domain: v.domain })} output "${v.value}"`;
}
