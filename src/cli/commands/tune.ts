import type { Model } from '../../../ir/graph.js';
import { LlmccError } from '../../../ir/errors.js';
import { verifyModel } from '../../../ir/verify.js';
import { formatPassRecords, prepareModel } from '../../../passes/pipeline.js';
import type { KernelBuildContext, WasmKernelDef } from '../../../targets/wasm/kernel-def.js';
import { writeFile } from 'node:fs/promises';
import { runTunedBench } from '../../bench/tuned.js';
import { loadModel } from '../../onnx/load.js';
import { budgetFor } from '../../tune/budget.js';
import { collectTunableOps } from '../../tune/collect.js';
import { TuningDb, tuningDbPath } from '../../tune/db.js';
import { entryText } from '../../tune/describe.js';
import { wasmMachine } from '../../tune/fingerprint.js';
import { tuningLookup } from '../../tune/lookup.js';
import { stderrProgress } from '../../tune/progress.js';
import { tuneOps, type TuneReport } from '../../tune/tuner.js';
import { EXIT_OK } from '../errors.js';
import { loweringFromFlags, type LoweringFlags } from '../lowering-options.js';

export interface TuneCliOptions extends LoweringFlags {
  target: 'wasm';
  lower?: boolean;
  stats?: boolean;
  tuningDb?: string;
  /** 'default' or 'exhaustive'. */
  tune?: string;
  force?: boolean;
}

/** Options `compile` shares with `tune`. */
export interface CompileTuningFlags {
  tuningDb?: string;
  /** `--tune [mode]`: search the database's misses before compiling (true: default mode). */
  tune?: string | boolean;
  /** `--no-tuning`: ignore the database. */
  tuning?: boolean;
}

export async function loadLowered(modelPath: string, options: LoweringFlags & { lower?: boolean; stats?: boolean; target?: string }): Promise<Model> {
  if (!options.lower && (options.bits !== undefined || options.bitsMap || options.keep?.length)) {
    throw new LlmccError('--bits, --keep and --bits-map take effect with --lower');
  }
  const lowering = options.lower ? loweringFromFlags(options, options.target) : undefined;
  const model = await loadModel(modelPath);
  verifyModel(model);
  // Exactly what compile does, so the tuned signatures are the ones compile will look up.
  const records = prepareModel(model, lowering, options.target, options.fusion ?? true);
  if (options.stats && records.length) process.stderr.write(`${formatPassRecords(records)}\n`);
  return model;
}

/** Searches the model's tunable ops into the database at `dbPath` and saves it. */
export async function tuneModel(model: Model, dbPath: string, mode: string | undefined, force = false): Promise<{ report: TuneReport; db: TuningDb }> {
  const budget = budgetFor(mode);
  const db = TuningDb.open(dbPath);
  const ops = await collectTunableOps(model);
  const machine = wasmMachine();
  const report = await tuneOps(ops, { db, machine, budget, force, progress: stderrProgress() });
  if (report.ops.some((o) => o.status === 'tuned') || db.problem) db.save();
  return { report, db };
}

function reportLines(report: TuneReport, dbPath: string): string[] {
  const lines = report.ops.map((o) => {
    const head = `${o.status.padEnd(7)} ${o.op} ×${o.nodes}`;
    if (o.status === 'skipped') return `${head}: ${o.reason}`;
    return `${head}: ${entryText(o.entry!)}`;
  });
  const count = (s: string): number => report.ops.filter((o) => o.status === s).length;
  lines.push(
    `tune: ${report.ops.length} op signatures (${report.ops.reduce((n, o) => n + o.nodes, 0)} nodes): ` +
    `${count('tuned')} tuned, ${count('hit')} reused, ${count('skipped')} skipped; ` +
    `${report.measurements} measurements, search ${(report.elapsedMs / 1000).toFixed(2)} s ` +
    `(${(performance.now() / 1000).toFixed(2)} s since start); database ${dbPath}`);
  return lines;
}

/** `llmcc tune model.onnx --target wasm [--lower ...] [--tuning-db F] [--tune exhaustive] [--force]`. */
export async function tuneCommand(modelPath: string, options: TuneCliOptions): Promise<number> {
  const model = await loadLowered(modelPath, options);
  const dbPath = tuningDbPath(options.tuningDb);
  const { report } = await tuneModel(model, dbPath, options.tune, options.force);
  for (const line of reportLines(report, dbPath)) process.stdout.write(`${line}\n`);
  return EXIT_OK;
}

/**
 * The tuning `compile` applies: database hits become the kernels' knobs, misses keep the
 * defaults; with `--tune` the misses are searched (and saved) first. Counts what it did.
 */
export async function compileTuning(model: Model, flags: CompileTuningFlags): Promise<{
  knobsFor?: (def: WasmKernelDef, ctx: KernelBuildContext) => Readonly<Record<string, number>> | undefined;
  summary(): string;
}> {
  if (flags.tuning === false) return { summary: () => 'tuning: off (--no-tuning)' };
  const dbPath = tuningDbPath(flags.tuningDb);
  let measurements = 0;
  let db: TuningDb;
  if (flags.tune) {
    const tuned = await tuneModel(model, dbPath, flags.tune === true ? undefined : flags.tune);
    measurements = tuned.report.measurements;
    db = tuned.db;
  } else {
    db = TuningDb.open(dbPath);
  }
  const lookup = tuningLookup(db, wasmMachine());
  return {
    knobsFor: (def, ctx) => lookup.knobsFor(def, ctx),
    summary: () => `tuning: ${lookup.stats.hits} tuned kernel nodes from the database, ${lookup.stats.misses} with default knobs; ` +
      `${measurements} measurements; database ${dbPath}`,
  };
}

export interface BenchTunedOptions extends LoweringFlags {
  lower?: boolean;
  tuningDb?: string;
  budget?: number;
  json?: string;
}

/** `llmcc bench tuned model.onnx [--lower ...] [--tuning-db F]`: tuned vs default kernels, one run. */
export async function benchTunedCommand(modelPath: string, options: BenchTunedOptions): Promise<number> {
  const model = await loadLowered(modelPath, { ...options, target: 'wasm' });
  const dbPath = tuningDbPath(options.tuningDb);
  const log = (line: string): void => { process.stdout.write(`${line}\n`); };
  log(`tuned vs default kernels (database ${dbPath}; single thread; fastest of round-robin samples)`);
  const report = await runTunedBench(model, { db: TuningDb.open(dbPath), machine: wasmMachine(), budgetMs: options.budget ?? 300, log });
  for (const t of report.totals) {
    log(`total ${t.regime}: default ${t.default_ms.toFixed(4)} ms, tuned ${t.tuned_ms.toFixed(4)} ms (×${t.speedup.toFixed(2)}) over the tuned ops' nodes`);
  }
  if (report.untuned.length) log(`not in the database (run llmcc tune first): ${report.untuned.join(', ')}`);
  if (options.json) {
    await writeFile(options.json, `${JSON.stringify({ machine: wasmMachine(), ...report }, null, 2)}\n`);
    log(`wrote ${options.json}`);
  }
  return EXIT_OK;
}
