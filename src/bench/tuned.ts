/**
 * `llmcc bench tuned`: the tuned kernels against the defaults, per tuned op of a model, in one
 * run. Both configurations of an op are built into one module and timed round-robin at the
 * same representative shapes the tuner used (decode S = 1 and prefill for symbolic shapes),
 * each figure the fastest of its samples (see src/tune/measure.ts), then summed over the
 * model's nodes (nodes × time) per regime.
 */
import type { Model } from '../../ir/graph.js';
import { collectTunableOps } from '../tune/collect.js';
import type { TuningDb } from '../tune/db.js';
import { opLabel } from '../tune/describe.js';
import type { MachineFingerprint } from '../tune/fingerprint.js';
import { measureCandidates, type MeasureFn } from '../tune/measure.js';
import { regimesOf } from '../tune/signature.js';
import { defaultKnobs, knobsText, sameKnobs } from '../tune/space.js';

export interface TunedBenchRow {
  op: string;
  nodes: number;
  knobs: Record<string, number>;
  regime: string;
  seq: number;
  default_ms: number;
  tuned_ms: number;
  /** default_ms / tuned_ms. */
  speedup: number;
}

export interface TunedBenchReport {
  rows: TunedBenchRow[];
  /** Per regime: Σ nodes × time over the tuned ops. */
  totals: { regime: string; default_ms: number; tuned_ms: number; speedup: number }[];
  /** Tunable op signatures the database lacks (benchmarked nowhere). */
  untuned: string[];
}

export interface TunedBenchOptions {
  db: TuningDb;
  machine: MachineFingerprint;
  /** Timing milliseconds per op and regime. */
  budgetMs: number;
  log: (line: string) => void;
  measure?: MeasureFn;
}

function round(x: number, digits = 5): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

export async function runTunedBench(model: Model, options: TunedBenchOptions): Promise<TunedBenchReport> {
  const measure = options.measure ?? measureCandidates;
  const rows: TunedBenchRow[] = [];
  const untuned: string[] = [];
  for (const op of await collectTunableOps(model)) {
    const entry = options.db.get(options.machine, op.signature);
    const label = opLabel(op.ctx);
    if (!entry) {
      untuned.push(label);
      continue;
    }
    const base = defaultKnobs(op.space);
    const regimes = regimesOf(op.ctx);
    // Identical knobs build the identical kernel: time it once and report it as both.
    const candidates = sameKnobs(entry.knobs, base) ? [base] : [base, entry.knobs];
    const ms = await measure({ def: op.def, ctx: op.ctx, candidates, regimes, sliceMs: options.budgetMs, minRounds: 15 });
    regimes.forEach((r, i) => {
      const defaultMs = ms[0][i], tunedMs = ms[candidates.length - 1][i];
      const row: TunedBenchRow = {
        op: label, nodes: op.nodes, knobs: entry.knobs, regime: r.name, seq: r.seq,
        default_ms: round(defaultMs), tuned_ms: round(tunedMs), speedup: round(defaultMs / tunedMs, 3),
      };
      rows.push(row);
      options.log(`${`${label} ×${op.nodes}`.padEnd(34)} ${r.name.padEnd(8)} default ${defaultMs.toFixed(4).padStart(9)} ms  ` +
        `tuned ${tunedMs.toFixed(4).padStart(9)} ms  ×${(defaultMs / tunedMs).toFixed(2)}  ${knobsText(entry.knobs)}`);
    });
  }
  const regimesSeen = [...new Set(rows.map((r) => r.regime))];
  const totals = regimesSeen.map((regime) => {
    const these = rows.filter((r) => r.regime === regime);
    const d = these.reduce((s, r) => s + r.nodes * r.default_ms, 0);
    const t = these.reduce((s, r) => s + r.nodes * r.tuned_ms, 0);
    return { regime, default_ms: round(d), tuned_ms: round(t), speedup: round(d / t, 3) };
  });
  return { rows, totals, untuned };
}
