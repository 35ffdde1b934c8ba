/**
 * The fuzz run: which case runs which seed model with which mutation (all decided by the
 * run seed and the case index), the counts, and findings written so they replay.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { LlmccError } from '../../ir/errors.js';
import { type Outcome, errorKind, runCase } from './case.js';
import { type FeedEdit, mutateModel } from './mutate.js';
import { Pool, type CaseRequest, type CaseResult } from './pool.js';
import { Rng, caseSeed } from './rng.js';
import { type SeedSpec, feedInfo, prepareSeed, seedsByName } from './seeds.js';
import { readTestDataSet } from '../testdata.js';

export interface FuzzOptions {
  shared: string;
  /** `quick`, `all`, or comma-separated seed names. */
  seedSet: string;
  runSeed: number;
  /** Exactly this many cases, or as many as fit in `seconds`. */
  cases?: number;
  seconds?: number;
  workers: number;
  timeoutMs: number;
  /** Targets besides the reference; undefined: every registered one. */
  targets?: string[];
  /** Where findings are written; undefined: not written. */
  findingsDir?: string;
  onProgress?: (line: string) => void;
}

/** What a finding file holds: enough to replay the case. */
export interface FindingRecord {
  model: string;
  runSeed: number;
  index: number;
  caseSeed: number;
  pristine: boolean;
  lower: boolean;
  mutations: string[];
  /** Changed test-input values (also listed in `mutations`). */
  feedEdits: FeedEdit[];
  stage: string;
  message: string;
  stack?: string;
  /** The mutated model, next to the JSON file. */
  modelFile?: string;
  /** Only the test inputs changed: the seed model itself is replayed (keeps fixtures small). */
  modelUnchanged?: boolean;
}

export interface FuzzSummary {
  runSeed: number;
  seeds: string[];
  cases: number;
  ok: number;
  /** Of the ok cases, those outside the f32-safe range: targets checked for dtypes and shapes, not values. */
  okExtreme: number;
  errors: number;
  /** `stage: first words of the message` → count, most frequent first. */
  errorsByKind: { kind: string; count: number }[];
  findings: FindingRecord[];
  seconds: number;
}

/** Case k's request: the first case of each seed is its unmutated model, the rest mutants drawn by weight. */
function requestFor(index: number, seeds: SeedSpec[], schedule: number[], runSeed: number, targets?: string[]): CaseRequest {
  const seedOfCase = caseSeed(runSeed, index);
  const only = targets ? { targets } : {};
  if (index < seeds.length) return { index, seedIndex: index, caseSeed: seedOfCase, pristine: true, lower: true, ...only };
  return {
    ...only,
    index,
    seedIndex: schedule[(index - seeds.length) % schedule.length],
    caseSeed: seedOfCase,
    pristine: false,
    lower: (seedOfCase & 3) === 0,
  };
}

/** Seed indices repeated by weight and interleaved, so any prefix of the run covers every seed. */
function weightedSchedule(seeds: SeedSpec[]): number[] {
  const schedule: number[] = [];
  const most = Math.max(...seeds.map((s) => s.weight));
  for (let round = 0; round < most; round++) {
    seeds.forEach((s, i) => {
      if (round < s.weight) schedule.push(i);
    });
  }
  return schedule;
}

export async function runFuzz(options: FuzzOptions): Promise<FuzzSummary> {
  const seeds = seedsByName(options.seedSet, options.shared);
  for (const s of seeds) {
    if (!fs.existsSync(path.join(options.shared, s.name, 'model.onnx'))) throw new LlmccError(`seed model not found: ${s.name}`, options.shared);
  }
  const schedule = weightedSchedule(seeds);
  const workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'llmcc-fuzz-'));
  const pool = new Pool({
    shared: options.shared, workDir, seeds, workers: options.workers, timeoutMs: options.timeoutMs, heapMb: 2048,
    ...(options.targets ? { targets: options.targets } : {}),
  });
  const started = performance.now();
  const deadline = options.cases === undefined ? started + (options.seconds ?? 60) * 1000 : Infinity;
  const seedBytes = new Map<number, Uint8Array>();
  const summary: FuzzSummary = {
    runSeed: options.runSeed, seeds: seeds.map((s) => s.name), cases: 0, ok: 0, okExtreme: 0, errors: 0, errorsByKind: [], findings: [], seconds: 0,
  };
  const kinds = new Map<string, number>();
  let nextIndex = 0;
  let lastProgress = started;
  const next = (): CaseRequest | undefined => {
    if (options.cases !== undefined ? nextIndex >= options.cases : performance.now() >= deadline) return undefined;
    return requestFor(nextIndex++, seeds, schedule, options.runSeed, options.targets);
  };
  const onResult = (result: CaseResult): void => {
    summary.cases++;
    const { outcome } = result;
    if (outcome.status === 'ok') {
      summary.ok++;
      if (outcome.extreme) summary.okExtreme++;
      for (const refusal of outcome.refusals) {
        const kind = `target ${refusal.target}: ${errorKind(refusal.message)}`;
        kinds.set(kind, (kinds.get(kind) ?? 0) + 1);
      }
    } else if (outcome.status === 'error') {
      summary.errors++;
      const kind = `${outcome.stage}: ${errorKind(outcome.message)}`;
      kinds.set(kind, (kinds.get(kind) ?? 0) + 1);
    } else {
      const request = requestFor(result.index, seeds, schedule, options.runSeed, options.targets);
      const spec = seeds[request.seedIndex];
      let bytes = seedBytes.get(request.seedIndex);
      if (!bytes) {
        bytes = new Uint8Array(fs.readFileSync(path.join(options.shared, spec.name, 'model.onnx')));
        seedBytes.set(request.seedIndex, bytes);
      }
      // A crashed or timed-out worker sent no mutation list: the seed regenerates it.
      const mutant = request.pristine
        ? { bytes, mutations: [], feedEdits: [] }
        : mutateModel(bytes, new Rng(request.caseSeed), feedInfo(firstDataSet(path.join(options.shared, spec.name))));
      const record: FindingRecord = {
        model: spec.name, runSeed: options.runSeed, index: result.index, caseSeed: request.caseSeed,
        pristine: request.pristine, lower: request.lower, mutations: mutant.mutations, feedEdits: mutant.feedEdits,
        stage: outcome.stage, message: outcome.message, ...(outcome.stack ? { stack: outcome.stack } : {}),
      };
      if (options.findingsDir) writeFinding(options.findingsDir, record, mutant.bytes);
      summary.findings.push(record);
      options.onProgress?.(`FINDING case ${result.index} (${spec.name}, seed ${request.caseSeed}): ${outcome.stage}: ${outcome.message}`);
    }
    const now = performance.now();
    if (now - lastProgress > 10_000) {
      lastProgress = now;
      options.onProgress?.(`${summary.cases} cases, ${summary.findings.length} findings, ${((now - started) / 1000).toFixed(0)} s`);
    }
  };
  try {
    await pool.drain(next, onResult);
  } finally {
    await pool.close();
    fs.rmSync(workDir, { recursive: true, force: true });
  }
  summary.errorsByKind = [...kinds.entries()].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])).map(([kind, count]) => ({ kind, count }));
  summary.findings.sort((a, b) => a.index - b.index);
  summary.seconds = (performance.now() - started) / 1000;
  return summary;
}

function firstDataSet(dir: string): ReturnType<typeof readTestDataSet> | undefined {
  const sets = fs.readdirSync(dir).filter((d) => d.startsWith('test_data_set_')).sort();
  return sets.length ? readTestDataSet(path.join(dir, sets[0])) : undefined;
}

function writeFinding(dir: string, record: FindingRecord, bytes: Uint8Array): void {
  fs.mkdirSync(dir, { recursive: true });
  const base = `${record.model.replace(/[^A-Za-z0-9_-]+/g, '_')}-${record.runSeed}-${record.index}`;
  record.modelFile = `${base}.onnx`;
  fs.writeFileSync(path.join(dir, record.modelFile), bytes);
  fs.writeFileSync(path.join(dir, `${base}.json`), `${JSON.stringify(record, null, 2)}\n`);
}

export function formatSummary(s: FuzzSummary): string {
  const lines = [
    `fuzz seed ${s.runSeed}: ${s.cases} cases over ${s.seeds.length} seed models in ${s.seconds.toFixed(1)} s`,
    `  ok ${s.ok} (${s.okExtreme} with extreme values: targets' outputs checked for dtype and shape only), clear errors ${s.errors}, findings ${s.findings.length}`,
    '  errors by kind (stage: first words; "target X" = a target declined a model the reference ran):',
    ...s.errorsByKind.map((k) => `    ${String(k.count).padStart(6)}  ${k.kind}`),
  ];
  if (s.findings.length) {
    lines.push('  findings:');
    for (const f of s.findings) lines.push(`    case ${f.index} ${f.model} [${f.mutations.join('; ')}]: ${f.stage}: ${f.message}`);
  }
  return lines.join('\n');
}

/**
 * Replays a finding or regression fixture in this process: its model file when present
 * (next to the JSON), else the mutation regenerated from its case seed.
 */
export async function replayFinding(file: string, shared: string): Promise<{ record: FindingRecord; outcome: Outcome }> {
  let record: FindingRecord;
  try {
    record = JSON.parse(fs.readFileSync(file, 'utf8')) as FindingRecord;
  } catch (error) {
    throw new LlmccError(`cannot read finding: ${error instanceof Error ? error.message : String(error)}`, file);
  }
  const workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'llmcc-fuzz-replay-'));
  try {
    const seed = prepareSeed(shared, { name: record.model, weight: 1 }, workDir);
    const modelFile = record.modelFile ? path.join(path.dirname(file), record.modelFile) : undefined;
    const regenerated = record.pristine ? undefined : mutateModel(seed.bytes, new Rng(record.caseSeed), feedInfo(seed.data));
    const bytes = record.modelUnchanged ? seed.bytes
      : modelFile && fs.existsSync(modelFile) ? new Uint8Array(fs.readFileSync(modelFile))
        : regenerated?.bytes ?? seed.bytes;
    const feedEdits = record.feedEdits ?? regenerated?.feedEdits ?? [];
    const outcome = await runCase(seed, bytes, { pristine: record.pristine, lower: record.lower, feedEdits });
    return { record, outcome };
  } finally {
    fs.rmSync(workDir, { recursive: true, force: true });
  }
}
