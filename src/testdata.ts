import * as fs from 'node:fs';
import * as path from 'node:path';
import { LlmccError } from '../ir/errors.js';
import type { Graph } from '../ir/graph.js';
import type { Tensor } from '../ir/tensor.js';
import { readTensorFile } from './onnx/tensor-proto.js';

/** One ONNX backend-test data set: `input_K.pb` and (optionally) `output_K.pb`. */
export interface TestDataSet {
  dir: string;
  inputs: { name: string; tensor: Tensor }[];
  outputs: { name: string; tensor: Tensor }[];
}

function numbered(dir: string, prefix: string): string[] {
  const pattern = new RegExp(`^${prefix}_(\\d+)\\.pb$`);
  return fs.readdirSync(dir)
    .map((f) => ({ f, m: pattern.exec(f) }))
    .filter((x): x is { f: string; m: RegExpExecArray } => x.m !== null)
    .sort((x, y) => Number(x.m[1]) - Number(y.m[1]))
    .map((x) => path.join(dir, x.f));
}

export function readTestDataSet(dir: string): TestDataSet {
  let stat: fs.Stats;
  try {
    stat = fs.statSync(dir);
  } catch {
    throw new LlmccError('test data directory not found', dir);
  }
  if (!stat.isDirectory()) throw new LlmccError('not a directory', dir);
  return {
    dir,
    inputs: numbered(dir, 'input').map(readTensorFile),
    outputs: numbered(dir, 'output').map(readTensorFile),
  };
}

/** The inputs a caller must feed: graph inputs that have no initializer default. */
export function feedableInputs(graph: Graph): Graph['inputs'] {
  return graph.inputs.filter((i) => !graph.initializers.has(i.name));
}

/**
 * Matches data-set inputs to graph inputs: by name when the file names one of them,
 * otherwise by position (the backend-test convention).
 */
export function bindInputs(graph: Graph, data: TestDataSet): Map<string, Tensor> {
  const inputs = feedableInputs(graph);
  const byName = new Map(graph.inputs.map((i) => [i.name, i]));
  const feeds = new Map<string, Tensor>();
  data.inputs.forEach(({ name, tensor }, position) => {
    const target = byName.has(name) ? name : inputs[position]?.name;
    if (!target) {
      throw new LlmccError(`input_${position}.pb has no matching graph input (the model has ${inputs.length})`, data.dir);
    }
    feeds.set(target, tensor);
  });
  const missing = inputs.filter((i) => !feeds.has(i.name)).map((i) => i.name);
  if (missing.length) throw new LlmccError(`no data for graph input(s) ${missing.join(', ')}`, data.dir);
  return feeds;
}
