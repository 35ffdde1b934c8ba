import * as fs from 'node:fs';
import * as path from 'node:path';
import { LlmccError } from '../ir/errors.js';
import type { Graph } from '../ir/graph.js';
import type { Backend } from '../targets/backend.js';
import { compareTensors, type Tolerance } from './compare.js';
import { loadModel } from './onnx/load.js';
import { bindInputs, readTestDataSet } from './testdata.js';

export type ConformanceStatus = 'PASS' | 'FAIL' | 'UNSUPPORTED';

export interface ConformanceResult {
  test: string;
  status: ConformanceStatus;
  /** The error (FAIL) or the reason (UNSUPPORTED). */
  detail?: string;
  ms: number;
}

/** The ONNX backend-test defaults (onnx/backend/test/runner). */
export const CONFORMANCE_TOLERANCE: Tolerance = { atol: 1e-7, rtol: 1e-3 };

/** Backend-test directories under `root` (those holding a model.onnx), sorted by name. */
export function findTests(root: string, filter?: RegExp): string[] {
  if (!fs.existsSync(root) || !fs.statSync(root).isDirectory()) {
    throw new LlmccError('conformance directory not found', root);
  }
  return fs.readdirSync(root)
    .filter((name) => fs.existsSync(path.join(root, name, 'model.onnx')))
    .filter((name) => !filter || filter.test(name))
    .sort();
}

function unsupportedBy(graph: Graph, backend: Backend): string[] {
  const missing = new Set<string>();
  const visit = (g: Graph): void => {
    for (const node of g.nodes) {
      if (!backend.supports(node.domain, node.op)) missing.add(node.domain ? `${node.domain}.${node.op}` : node.op);
      for (const attr of node.attributes.values()) {
        if (attr.kind === 'graph') visit(attr.value);
        if (attr.kind === 'graphs') attr.value.forEach(visit);
      }
    }
  };
  visit(graph);
  return [...missing].sort();
}

export async function runConformanceTest(testDir: string, backend: Backend): Promise<ConformanceResult> {
  const test = path.basename(testDir);
  const started = performance.now();
  const finish = (status: ConformanceStatus, detail?: string): ConformanceResult => {
    const ms = performance.now() - started;
    return detail === undefined ? { test, status, ms } : { test, status, detail, ms };
  };
  try {
    const model = await loadModel(path.join(testDir, 'model.onnx'));
    const missing = unsupportedBy(model.graph, backend);
    if (missing.length) return finish('UNSUPPORTED', `target ${backend.name} does not support ${missing.join(', ')}`);
    const session = await backend.prepare(model);
    const sets = fs.readdirSync(testDir).filter((d) => d.startsWith('test_data_set_')).sort();
    if (!sets.length) throw new LlmccError('no test_data_set_N directory', testDir);
    for (const set of sets) {
      const data = readTestDataSet(path.join(testDir, set));
      const outputs = await session.run(bindInputs(model.graph, data));
      data.outputs.forEach(({ tensor: expected }, k) => {
        const name = model.graph.outputs[k]?.name;
        const actual = name === undefined ? undefined : outputs.get(name);
        if (!actual) throw new LlmccError(`output ${k} was not produced`, set);
        const result = compareTensors(actual, expected, CONFORMANCE_TOLERANCE);
        if (!result.ok) {
          throw new LlmccError(
            `output ${k} '${name}' mismatch: ${result.reason ?? `max abs ${result.maxAbs.toExponential(3)}, max rel ${result.maxRel.toExponential(3)}`}`,
            set,
          );
        }
      });
    }
    return finish('PASS');
  } catch (error) {
    // A backend may refuse a node it claims the op of (e.g. a dtype its kernel lacks).
    if (error instanceof LlmccError && /^target \S+ does not support /.test(error.message)) return finish('UNSUPPORTED', error.message);
    return finish('FAIL', error instanceof Error ? error.message : String(error));
  }
}

export interface ConformanceSummary {
  target: string;
  dir: string;
  passed: number;
  failed: number;
  skipped: number;
  results: ConformanceResult[];
}

export async function runConformance(
  root: string,
  backend: Backend,
  options: { filter?: RegExp; onResult?: (result: ConformanceResult) => void } = {},
): Promise<ConformanceSummary> {
  const results: ConformanceResult[] = [];
  for (const test of findTests(root, options.filter)) {
    const result = await runConformanceTest(path.join(root, test), backend);
    results.push(result);
    options.onResult?.(result);
  }
  const count = (s: ConformanceStatus): number => results.filter((r) => r.status === s).length;
  return { target: backend.name, dir: root, passed: count('PASS'), failed: count('FAIL'), skipped: count('UNSUPPORTED'), results };
}
