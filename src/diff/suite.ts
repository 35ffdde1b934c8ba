import * as fs from 'node:fs';
import * as path from 'node:path';
import { LlmccError } from '../../ir/errors.js';
import type { Backend } from '../../targets/backend.js';
import { loadModel } from '../onnx/load.js';
import { bindInputs, readTestDataSet } from '../testdata.js';
import { type DiffOptions, type ModelDiff, diffModel } from './run.js';

/** A model to diff and the data set that feeds it. */
export interface DiffCase {
  name: string;
  model: string;
  data: string;
}

/** A case that could not be diffed at all (bad model or data): the reason, one line. */
export interface DiffFailure {
  name: string;
  error: string;
}

function firstDataSet(dir: string): string | undefined {
  const sets = fs.readdirSync(dir).filter((d) => /^test_data_set_\d+$/.test(d)).sort();
  return sets.length ? path.join(dir, sets[0]) : undefined;
}

/**
 * The models under `root` (every folder holding a model.onnx, recursively), each with its
 * first test_data_set, named by their path relative to `root`; folders without data are left out.
 */
export function findDiffCases(root: string, filter?: RegExp): DiffCase[] {
  const found: DiffCase[] = [];
  const walk = (dir: string): void => {
    const model = path.join(dir, 'model.onnx');
    if (fs.existsSync(model)) {
      const data = firstDataSet(dir);
      const name = path.relative(root, dir) || path.basename(dir);
      if (data && (!filter || filter.test(name))) found.push({ name, model, data });
    }
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      if (entry.isDirectory() && !entry.name.startsWith('test_data_set')) walk(path.join(dir, entry.name));
    }
  };
  walk(root);
  return found.sort((a, b) => a.name.localeCompare(b.name));
}

/** The case for one model file or model folder, with `data` or its folder's first data set. */
export function singleDiffCase(modelOrDir: string, data?: string): DiffCase {
  const model = fs.statSync(modelOrDir).isDirectory() ? path.join(modelOrDir, 'model.onnx') : modelOrDir;
  const dataDir = data ?? firstDataSet(path.dirname(model));
  if (!dataDir) throw new LlmccError('no test_data_set_N folder next to the model: give one with --data', model);
  return { name: path.basename(path.dirname(path.resolve(model))), model, data: dataDir };
}

export async function diffCase(c: DiffCase, targets: readonly Backend[], options: DiffOptions): Promise<ModelDiff> {
  const original = await loadModel(c.model);
  const feeds = bindInputs(original.graph, readTestDataSet(c.data));
  return diffModel(c.name, () => loadModel(c.model), feeds, targets, options);
}

/** Diffs every case; a case whose model or data is invalid is reported, not fatal. */
export async function diffSuite(
  cases: readonly DiffCase[],
  targets: readonly Backend[],
  options: DiffOptions,
  onCase?: (result: ModelDiff | DiffFailure) => void,
): Promise<{ diffs: ModelDiff[]; failures: DiffFailure[] }> {
  const diffs: ModelDiff[] = [];
  const failures: DiffFailure[] = [];
  for (const c of cases) {
    try {
      const d = await diffCase(c, targets, options);
      diffs.push(d);
      onCase?.(d);
    } catch (error) {
      if (!(error instanceof LlmccError)) throw error;
      const failure = { name: c.name, error: error.message };
      failures.push(failure);
      onCase?.(failure);
    }
  }
  return { diffs, failures };
}
