/**
 * One fuzz case: a (mutated) model goes through everything a user can make llmcc do with
 * it — import, `inspect`, verify, `compile --emit ir` (written atomically), the low-bit
 * lowering, and a run on every registered target with the seed model's test data. The
 * case passes when it ends in an LlmccError with a one-line message, or in a result that
 * is consistent (outputs match the inferred types; other targets agree with the
 * reference — numerically only inside the f32-safe range, see extreme.ts; the unmutated
 * model reproduces its reference outputs). Anything else is a finding.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { LlmccError } from '../../ir/errors.js';
import type { Graph, Model } from '../../ir/graph.js';
import { Tensor } from '../../ir/tensor.js';
import { printModel } from '../../ir/text/print.js';
import { verifyModel } from '../../ir/verify.js';
import { runLoweringPipeline } from '../../passes/pipeline.js';
import type { Backend } from '../../targets/backend.js';
import { allBackends } from '../../targets/registry.js';
import { type Tolerance, compareTensors, defaultTolerance } from '../compare.js';
import { writeFileAtomic } from '../fsutil.js';
import { inspectModel, renderInspectReport } from '../inspect.js';
import { loadModelFromBytes } from '../onnx/load.js';
import { type TestDataSet, bindInputs } from '../testdata.js';
import { extremeValue } from './extreme.js';
import type { FeedEdit } from './mutate.js';

export type Stage = 'import' | 'inspect' | 'verify' | 'compile' | 'lower' | 'run' | 'check';

/** A target other than the reference declining a model the reference ran: a clear error, but not the case's end. */
export interface Refusal {
  target: string;
  message: string;
}

export type Outcome =
  /** `extreme`: why the targets' values were not compared with the reference's (extreme.ts). */
  | { status: 'ok'; refusals: Refusal[]; extreme?: string }
  | { status: 'error'; stage: Stage; message: string }
  | { status: 'finding'; stage: Stage; message: string; stack?: string };

/** A seed model as the harness prepared it: a private copy of its folder plus test data. */
export interface SeedModel {
  /** Short name, e.g. `genai-pipeline-model-tiny/embeds`. */
  name: string;
  /** The working copy of the model folder; mutated bytes are imported as `<dir>/model.onnx`. */
  dir: string;
  bytes: Uint8Array;
  /** The first test data set, when the model has one. */
  data?: TestDataSet;
}

export interface CaseOptions {
  /** The bytes are the unmutated seed: outputs must match the reference data too. */
  pristine: boolean;
  /** Also run the low-bit lowering pipeline (and the reference on its result). */
  lower: boolean;
  /** Targets to run besides the reference; undefined: every registered one. */
  targets?: readonly string[];
  /** Changes to the test inputs' values. */
  feedEdits?: readonly FeedEdit[];
}

/** The data set with `edits` applied (values converted to each input's dtype, as a file would hold them). */
export function editData(data: TestDataSet, edits: readonly FeedEdit[]): TestDataSet {
  if (!edits.length) return data;
  const inputs = data.inputs.map(({ name, tensor }, k) => {
    const mine = edits.filter((e) => e.input === k);
    if (!mine.length || tensor.dtype === 'string') return { name, tensor };
    const values = Float64Array.from(tensor.numbers());
    for (const e of mine) if (e.index < values.length) values[e.index] = e.value;
    return { name, tensor: Tensor.fromNumbers(tensor.dtype, tensor.shape, values) };
  });
  return { ...data, inputs };
}

/** What a run learned besides its outputs. */
interface RunNotes {
  extreme?: string;
}

class Finding extends Error {
  constructor(message: string, readonly detail?: string) {
    super(message);
  }
}

/** The kind of an error for the summary: its first words, with names and numbers blanked. */
export function errorKind(message: string): string {
  const words = message
    .replace(/"[^"]*"|'[^']*'|`[^`]*`/g, '_')
    .replace(/-?\d[\d.e+-]*/g, 'N')
    .split(/[\s,:;(]+/)
    .filter(Boolean)
    .slice(0, 4);
  return words.join(' ');
}

/** Runs one case; never throws. */
export async function runCase(seed: SeedModel, bytes: Uint8Array, options: CaseOptions): Promise<Outcome> {
  const outDir = path.join(seed.dir, 'out');
  const outcome = await runStages(seed, bytes, options, outDir);
  const leftovers = removeOutput(outDir);
  if (leftovers.length) return { status: 'finding', stage: 'compile', message: `partial output left behind: ${leftovers.join(', ')}` };
  return outcome;
}

async function runStages(seed: SeedModel, bytes: Uint8Array, options: CaseOptions, outDir: string): Promise<Outcome> {
  let stage: Stage = 'import';
  const refusals: Refusal[] = [];
  const notes: RunNotes = {};
  const backends = allBackends().filter((b) => b.name === 'ref' || (options.targets ? options.targets.includes(b.name) : !b.external));
  try {
    const model = loadModelFromBytes(bytes, { path: path.join(seed.dir, 'model.onnx') });
    checkExternalInside(model.graph, seed.dir);

    stage = 'inspect';
    const report = inspectModel(model, allBackends());
    renderInspectReport(report);
    JSON.stringify(report);

    stage = 'verify';
    verifyModel(model);

    stage = 'compile';
    compileToFile(model, outDir);

    let reference: Map<string, Tensor> | undefined;
    const data = seed.data && editData(seed.data, options.feedEdits ?? []);
    if (data) {
      stage = 'run';
      reference = await runOnTargets(model, data, options.pristine, backends, refusals, notes);
    }

    if (options.lower) {
      stage = 'lower';
      runLoweringPipeline(model, {
        quantize: { bits: 2, groupSize: 32, symmetric: true, ternary: false, keep: [] },
        lut: { g: 4, table: 'i8' },
        fuse: true,
      });
      printModel(model);
      if (data && reference) {
        stage = 'run';
        await runOnTargets(model, data, false, backends, refusals, notes);
      }
    }
    return { status: 'ok', refusals, ...(notes.extreme ? { extreme: notes.extreme } : {}) };
  } catch (error) {
    const problem = classify(error);
    return problem.clear
      ? { status: 'error', stage, message: problem.message }
      : { status: 'finding', stage, message: problem.message, ...(problem.stack ? { stack: problem.stack } : {}) };
  }
}

/** Whether a thrown value is the clear one-line error llmcc promises, and its message. */
function classify(error: unknown): { clear: boolean; message: string; stack?: string } {
  if (error instanceof Finding) return { clear: false, message: error.message, ...(error.detail ? { stack: error.detail } : {}) };
  if (error instanceof LlmccError) {
    const message = error.message;
    if (!message.trim() || message.includes('\n')) {
      return { clear: false, message: `LlmccError message is not one non-empty line: ${JSON.stringify(message)}` };
    }
    // An op threw something other than LlmccError and the interpreter wrapped it.
    if (/internal error/i.test(message)) return { clear: false, message, ...(error.stack ? { stack: error.stack } : {}) };
    return { clear: true, message };
  }
  const e = error instanceof Error ? error : new Error(String(error));
  return { clear: false, message: `${e.name}: ${e.message}`, ...(e.stack ? { stack: e.stack } : {}) };
}

/** `compile --emit ir -o`: the text is complete before anything is written, and the write is atomic. */
function compileToFile(model: Model, outDir: string): void {
  const text = printModel(model);
  fs.mkdirSync(outDir, { recursive: true });
  const file = path.join(outDir, 'model.ir');
  writeFileAtomic(file, text);
  if (fs.readFileSync(file, 'utf8') !== text) throw new Finding('compile output file differs from the printed IR');
}

/** Clears the output folder; returns what it held besides the finished file (temp files are partial output). */
function removeOutput(outDir: string): string[] {
  if (!fs.existsSync(outDir)) return [];
  const leftovers = fs.readdirSync(outDir).filter((f) => f !== 'model.ir');
  fs.rmSync(outDir, { recursive: true, force: true });
  return leftovers;
}

/** The importer must never accept external data outside the model folder. */
function checkExternalInside(graph: Graph, dir: string): void {
  const folder = fs.realpathSync(dir);
  for (const weight of graph.initializers.values()) {
    if (weight.location.kind !== 'external') continue;
    const resolved = fs.realpathSync(path.resolve(folder, weight.location.file));
    const rel = path.relative(folder, resolved);
    if (rel.startsWith('..') || path.isAbsolute(rel)) {
      throw new Finding(`external data "${weight.location.file}" of "${weight.name}" was accepted outside the model folder`);
    }
  }
  for (const node of graph.nodes) {
    for (const attr of node.attributes.values()) {
      if (attr.kind === 'graph') checkExternalInside(attr.value, dir);
      if (attr.kind === 'graphs') for (const g of attr.value) checkExternalInside(g, dir);
    }
  }
}

/**
 * Runs the data set on every target. The reference's outputs must have the inferred types;
 * other targets must agree with the reference; a pristine model must reproduce its data.
 */
async function runOnTargets(
  model: Model, data: TestDataSet, pristine: boolean, backends: readonly Backend[], refusals: Refusal[], notes: RunNotes,
): Promise<Map<string, Tensor>> {
  const feeds = bindInputs(model.graph, data);
  const ref = backends.find((b) => b.name === 'ref');
  if (!ref) throw new Finding('no reference target registered');
  const reference = await runOn(ref, model, feeds);
  model.graph.outputs.forEach((output, k) => {
    const actual = reference.get(output.name);
    if (!actual) throw new Finding(`reference produced no value for output "${output.name}"`);
    const inferred = model.graph.valueInfo.get(output.name) ?? output.type;
    if (!inferred) throw new Finding(`output "${output.name}" has no type after verification`);
    if (inferred.dtype !== actual.dtype) {
      throw new Finding(`output "${output.name}": inferred dtype ${inferred.dtype}, reference produced ${actual.dtype}`);
    }
    if (inferred.shape) {
      const shape = inferred.shape;
      const bad = shape.length !== actual.shape.length || shape.some((d, i) => typeof d === 'number' && d !== actual.shape[i]);
      if (bad) {
        throw new Finding(`output "${output.name}": inferred shape [${shape.join(',')}], reference produced [${actual.shape.join(',')}]`);
      }
    }
    const expected = data.outputs[k]?.tensor;
    if (pristine && expected) {
      const result = compareTensors(actual, expected, defaultTolerance(expected.dtype));
      if (!result.ok) throw new Finding(`unmutated model: output "${output.name}" differs from its reference data: ${result.reason ?? `max abs ${result.maxAbs}`}`);
    }
  });
  // Outside the f32-safe range f32 and f64 evaluations may rightly differ (extreme.ts).
  const extreme = backends.length > 1 ? extremeValue(model.graph, data) : undefined;
  if (extreme) notes.extreme ??= extreme;
  for (const backend of backends) {
    if (backend === ref) continue;
    let outputs: Map<string, Tensor>;
    try {
      outputs = await runOn(backend, model, feeds);
    } catch (error) {
      const problem = classify(error);
      if (!problem.clear) throw error instanceof Finding ? error : new Finding(`target ${backend.name}: ${problem.message}`, problem.stack);
      refusals.push({ target: backend.name, message: problem.message });
      continue;
    }
    for (const output of model.graph.outputs) {
      const actual = outputs.get(output.name);
      const expected = reference.get(output.name)!;
      if (!actual) throw new Finding(`target ${backend.name} produced no value for output "${output.name}"`);
      if (extreme) {
        const same = actual.dtype === expected.dtype && actual.shape.length === expected.shape.length &&
          actual.shape.every((d, i) => d === expected.shape[i]);
        if (!same) {
          throw new Finding(`target ${backend.name} output "${output.name}" is ${actual.dtype}[${actual.shape.join(',')}], ` +
            `the reference's ${expected.dtype}[${expected.shape.join(',')}]`);
        }
        continue;
      }
      const result = compareTensors(actual, expected, crossTargetTolerance(expected));
      if (!result.ok) {
        throw new Finding(`target ${backend.name} disagrees with the reference on "${output.name}": ${result.reason ?? `max abs ${result.maxAbs}`}`);
      }
    }
  }
  return reference;
}

/**
 * How far another target may be from the reference: the dtype's tolerance plus a few units
 * of rounding at the output's largest magnitude, since a target may sum in another order
 * (a fuzzed input of 1e4 makes every sum's last-bit differences exceed a fixed atol).
 */
function crossTargetTolerance(expected: Tensor): Tolerance {
  const base = defaultTolerance(expected.dtype);
  const epsilon = expected.dtype === 'f32' ? 2 ** -23 : expected.dtype === 'f16' ? 2 ** -10 : expected.dtype === 'bf16' ? 2 ** -7 : 0;
  if (epsilon === 0 || Array.isArray(expected.data)) return base;
  let largest = 0;
  for (const x of expected.data) if (Number.isFinite(x) && Math.abs(x) > largest) largest = Math.abs(x);
  return { atol: base.atol + 16 * epsilon * largest, rtol: base.rtol };
}

async function runOn(backend: Backend, model: Model, feeds: ReadonlyMap<string, Tensor>): Promise<Map<string, Tensor>> {
  const session = await backend.prepare(model);
  return session.run(feeds);
}
