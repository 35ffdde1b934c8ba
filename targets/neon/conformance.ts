/**
 * The ONNX backend-test suite on the neon target, batched: every test data set is compiled
 * to a program, all programs go into one C project (kernels shared between cases), one
 * compiler call builds it, one run (under qemu for aarch64) executes every case, and the
 * outputs are compared here. Same results and report as src/conformance.ts, at a fraction of
 * the cost of one build and one qemu start per test.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { LlmccError } from '../../ir/errors.js';
import type { Graph } from '../../ir/graph.js';
import type { Tensor } from '../../ir/tensor.js';
import { compareTensors } from '../../src/compare.js';
import { CONFORMANCE_TOLERANCE, findTests, type ConformanceResult, type ConformanceStatus, type ConformanceSummary } from '../../src/conformance.js';
import { loadModel } from '../../src/onnx/load.js';
import { bindInputs, readTestDataSet } from '../../src/testdata.js';
import { wasmClaims } from '../wasm/compile.js';
import { compileNeon } from './compile.js';
import { runNeonCases, type NeonCase } from './run.js';
import type { NeonMode } from './toolchain.js';

export interface NeonConformanceOptions {
  filter?: RegExp;
  onResult?: (result: ConformanceResult) => void;
  /** Programs per C build (bounds one compiler call's memory and time). Default 400. */
  batchSize?: number;
}

interface PendingTest {
  test: string;
  /** Milliseconds spent loading and compiling it. */
  compiledMs: number;
  /** Set once decided without running (UNSUPPORTED, or FAIL while compiling). */
  result?: { status: ConformanceStatus; detail?: string };
  cases: { name: string; expected: { name: string; tensor: Tensor }[]; set: string }[];
}

function unsupportedOps(graph: Graph): string[] {
  const missing = new Set<string>();
  const visit = (g: Graph): void => {
    for (const node of g.nodes) {
      if (!wasmClaims(node.domain, node.op)) missing.add(node.domain ? `${node.domain}.${node.op}` : node.op);
      for (const attr of node.attributes.values()) {
        if (attr.kind === 'graph') visit(attr.value);
        if (attr.kind === 'graphs') attr.value.forEach(visit);
      }
    }
  };
  visit(graph);
  return [...missing].sort();
}

type CaseOutcome = Awaited<ReturnType<typeof runNeonCases>>['results'][number];

/** Runs a batch; when it does not build, halves it until the cases that break the build are alone. */
async function runBisecting(batch: readonly NeonCase[], mode: NeonMode): Promise<CaseOutcome[]> {
  try {
    return (await runNeonCases(batch, mode)).results;
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    if (batch.length === 1 || !message.startsWith('building the neon program failed')) return batch.map(() => ({ error: message }));
    const half = Math.ceil(batch.length / 2);
    return [...await runBisecting(batch.slice(0, half), mode), ...await runBisecting(batch.slice(half), mode)];
  }
}

/** Runs the suite in one mode (see runNeonConformanceModes). */
export async function runNeonConformance(root: string, mode: NeonMode, options: NeonConformanceOptions = {}): Promise<ConformanceSummary> {
  return (await runNeonConformanceModes(root, [mode], options))[0];
}

/**
 * Compiles every test once, then builds and runs the batch in each mode (e.g. qemu -cpu max
 * with dotprod and -cpu cortex-a53 without); one summary per mode.
 */
export async function runNeonConformanceModes(root: string, modes: readonly NeonMode[], options: NeonConformanceOptions = {}): Promise<ConformanceSummary[]> {
  const pending: PendingTest[] = [];
  const cases: NeonCase[] = [];
  for (const test of findTests(root, options.filter)) {
    const started = performance.now();
    const entry: PendingTest = { test, compiledMs: 0, cases: [] };
    pending.push(entry);
    const testCases: NeonCase[] = [];
    try {
      const model = await loadModel(path.join(root, test, 'model.onnx'));
      const missing = unsupportedOps(model.graph);
      if (missing.length) {
        entry.result = { status: 'UNSUPPORTED', detail: `target neon does not support ${missing.join(', ')}` };
        continue;
      }
      const sets = fs.readdirSync(path.join(root, test)).filter((d) => d.startsWith('test_data_set_')).sort();
      if (!sets.length) throw new LlmccError('no test_data_set_N directory', path.join(root, test));
      for (const set of sets) {
        const data = readTestDataSet(path.join(root, test, set));
        const feeds = bindInputs(model.graph, data);
        const shapes = new Map([...feeds].map(([name, t]) => [name, [...t.shape]]));
        const program = await compileNeon(model, { shapes, values: feeds });
        const name = `t${pending.length - 1}_${testCases.length}`;
        testCases.push({ name, program, feeds });
        entry.cases.push({
          name, set,
          expected: data.outputs.map(({ tensor }, k) => ({ name: model.graph.outputs[k]?.name ?? `#${k}`, tensor })),
        });
      }
      cases.push(...testCases);
      entry.compiledMs = performance.now() - started;
    } catch (error) {
      entry.compiledMs = performance.now() - started;
      entry.cases = [];
      const message = error instanceof Error ? error.message : String(error);
      const unsupported = error instanceof LlmccError && /^target \S+ does not support /.test(error.message);
      entry.result = { status: unsupported ? 'UNSUPPORTED' : 'FAIL', detail: message };
    }
  }

  const summaries: ConformanceSummary[] = [];
  for (const mode of modes) {
    const modeStarted = performance.now();
    const outcomes = new Map<string, CaseOutcome>();
    const batchSize = options.batchSize ?? 400;
    for (let i = 0; i < cases.length; i += batchSize) {
      const batch = cases.slice(i, i + batchSize);
      const results = await runBisecting(batch, mode);
      batch.forEach((c, k) => outcomes.set(c.name, results[k]));
    }
    // Each test's time: its compile, plus its share of this mode's build and run.
    const share = (performance.now() - modeStarted) / Math.max(1, pending.length);
    const results = pending.map((entry) => {
      const r = judge(entry, outcomes, entry.compiledMs + share);
      options.onResult?.(r);
      return r;
    });
    const count = (s: ConformanceStatus): number => results.filter((r) => r.status === s).length;
    summaries.push({ target: 'neon', dir: root, passed: count('PASS'), failed: count('FAIL'), skipped: count('UNSUPPORTED'), results });
  }
  return summaries;
}

function judge(entry: PendingTest, outcomes: ReadonlyMap<string, CaseOutcome>, ms: number): ConformanceResult {
  let status: ConformanceStatus = entry.result?.status ?? 'PASS';
  let detail = entry.result?.detail;
  for (const c of entry.cases) {
    if (status !== 'PASS') break;
    const outcome = outcomes.get(c.name)!;
    if ('error' in outcome) {
      status = 'FAIL';
      detail = `${outcome.error}, ${c.set}`;
      break;
    }
    for (const [k, { name, tensor: expected }] of c.expected.entries()) {
      const actual = outcome.outputs.get(name);
      if (!actual) {
        status = 'FAIL';
        detail = `output ${k} was not produced, ${c.set}`;
        break;
      }
      const result = compareTensors(actual, expected, CONFORMANCE_TOLERANCE);
      if (!result.ok) {
        status = 'FAIL';
        detail = `output ${k} '${name}' mismatch: ${result.reason ?? `max abs ${result.maxAbs.toExponential(3)}, max rel ${result.maxRel.toExponential(3)}`}, ${c.set}`;
        break;
      }
    }
  }
  return detail === undefined ? { test: entry.test, status, ms } : { test: entry.test, status, detail, ms };
}
