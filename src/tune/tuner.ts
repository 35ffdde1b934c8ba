/**
 * The tiling search: for each tunable op signature not yet in the database, rank its knob
 * configurations with the target's cost model, measure the default and the best-ranked few
 * (all of them with --tune=exhaustive) at representative shapes, and store the fastest — the
 * default unless another is faster by more than the noise margin — with its figures.
 */
import os from 'node:os';
import { LlmccError } from '../../ir/errors.js';
import { wasmKernelCost } from '../../targets/wasm/tuning.js';
import { Deadline, type TuneBudget } from './budget.js';
import type { TunableOp } from './collect.js';
import type { TuningDb, TuningEntry } from './db.js';
import { opLabel } from './describe.js';
import type { MachineFingerprint } from './fingerprint.js';
import { launchShapes, measureCandidates, type MeasureFn } from './measure.js';
import { hasStaticRanks, regimesOf } from './signature.js';
import { defaultKnobs, distanceFromDefault, enumerateSpace, sameKnobs, type Knobs } from './space.js';

/** A candidate must beat the default by this fraction to replace it (timing noise). */
export const MIN_GAIN = 0.03;

export interface TuneProgress {
  start(total: number): void;
  tick(done: number, label: string): void;
  stop(): void;
}

export interface TuneOptions {
  db: TuningDb;
  machine: MachineFingerprint;
  budget: TuneBudget;
  /** Search again even where the database has an entry. */
  force?: boolean;
  measure?: MeasureFn;
  /** The deadline's clock (default performance.now()). */
  now?: () => number;
  progress?: TuneProgress;
}

export interface TuneOpResult {
  signature: string;
  /** The op and its input shapes, for reports. */
  op: string;
  nodes: number;
  status: 'hit' | 'tuned' | 'skipped';
  reason?: string;
  entry?: TuningEntry;
}

export interface TuneReport {
  ops: TuneOpResult[];
  /** Kernel configurations timed (candidate × regime). */
  measurements: number;
  elapsedMs: number;
}

function geomean(values: readonly number[]): number {
  return Math.exp(values.reduce((s, v) => s + Math.log(Math.max(v, 1e-9)), 0) / values.length);
}

/**
 * The configurations to measure, in order: the default, then alternately the cheapest
 * single-knob change of the default and the cheapest configuration overall by the cost model
 * (geometric mean over the regimes; ties and unmodelled kernels by distance from the
 * default). The single-knob moves keep the search useful where the analytic model misranks
 * (knobs are nearly separable: row_vecs drives decode, rows x vecs prefill).
 */
export function rankCandidates(op: TunableOp, limit: number, arch: string = os.arch()): Knobs[] {
  const base = defaultKnobs(op.space);
  const regimes = regimesOf(op.ctx);
  const scored = enumerateSpace(op.space)
    .filter((knobs) => !sameKnobs(knobs, base))
    .map((knobs) => {
      const costs = regimes.map((r) => wasmKernelCost(op.def, op.ctx, launchShapes(op.ctx, r), knobs, arch));
      const cost = costs.every((c): c is number => c !== undefined) ? geomean(costs) : Infinity;
      return { knobs, cost, distance: distanceFromDefault(op.space, knobs) };
    })
    .sort((a, b) => a.cost - b.cost || a.distance - b.distance);
  const moves = scored.filter((s) => s.distance === 1);
  const chosen = new Set<(typeof scored)[number]>();
  for (let i = 0; chosen.size < scored.length && chosen.size + 1 < limit; i++) {
    const next = (i % 2 === 0 ? moves : scored).find((s) => !chosen.has(s)) ?? scored.find((s) => !chosen.has(s))!;
    chosen.add(next);
  }
  return [base, ...[...chosen].map((s) => s.knobs)];
}

/**
 * Picks among the measured configurations ([candidate][regime] ms, the default first): the
 * fastest by geometric mean over the regimes among those no slower than the default in any
 * regime (beyond MIN_GAIN of noise), so decode is never traded for prefill or back; the
 * default unless that one beats it by more than MIN_GAIN.
 */
export function chooseCandidate(ms: readonly (readonly number[])[]): number {
  const scores = ms.map(geomean);
  let best = 0;
  ms.forEach((times, i) => {
    const noWorse = times.every((t, r) => t <= ms[0][r] * (1 + MIN_GAIN));
    if (noWorse && scores[i] < scores[best]) best = i;
  });
  return scores[best] < scores[0] * (1 - MIN_GAIN) ? best : 0;
}

async function searchOp(op: TunableOp, options: TuneOptions): Promise<{ entry: TuningEntry; measurements: number }> {
  const { budget } = options;
  const regimes = regimesOf(op.ctx);
  const candidates = rankCandidates(op, budget.maxCandidates);
  const measure = options.measure ?? measureCandidates;
  const ms = await measure({ def: op.def, ctx: op.ctx, candidates, regimes, sliceMs: budget.sliceMs, minRounds: budget.minRounds });
  const chosen = chooseCandidate(ms);
  const entry: TuningEntry = {
    op: op.ctx.node.domain ? `${op.ctx.node.domain}.${op.ctx.node.op}` : op.ctx.node.op,
    knobs: candidates[chosen],
    defaultKnobs: candidates[0],
    figures: regimes.map((r, i) => ({ regime: r.name, seq: r.seq, defaultMs: ms[0][i], tunedMs: ms[chosen][i] })),
    measured: candidates.length,
    spaceSize: enumerateSpace(op.space).length,
    mode: budget.mode,
    tunedAt: new Date().toISOString(),
  };
  return { entry, measurements: candidates.length * regimes.length };
}

/**
 * The order to search in: the largest estimated share of the model's time first (default
 * knobs' cost x nodes), so that a search cut short by the deadline has done what matters.
 */
export function searchOrder(ops: readonly TunableOp[], arch: string = os.arch()): TunableOp[] {
  const share = (op: TunableOp): number => {
    if (!hasStaticRanks(op.ctx)) return 0;
    const base = defaultKnobs(op.space);
    const costs = regimesOf(op.ctx).map((r) => wasmKernelCost(op.def, op.ctx, launchShapes(op.ctx, r), base, arch) ?? 0);
    return op.nodes * costs.reduce((a, b) => a + b, 0);
  };
  return ops.map((op) => ({ op, share: share(op) })).sort((a, b) => b.share - a.share).map((x) => x.op);
}

/** Tunes `ops` into `options.db` (the caller saves it). */
export async function tuneOps(ops: readonly TunableOp[], options: TuneOptions): Promise<TuneReport> {
  const deadline = new Deadline(options.budget, options.now);
  const results: TuneOpResult[] = [];
  let measurements = 0;
  options.progress?.start(ops.length);
  for (const op of searchOrder(ops)) {
    const base = { signature: op.signature, op: opLabel(op.ctx), nodes: op.nodes };
    const known = options.db.get(options.machine, op.signature);
    if (known && !options.force) {
      results.push({ ...base, status: 'hit', entry: known });
    } else if (!deadline.open() && results.some((r) => r.status === 'tuned')) {
      results.push({ ...base, status: 'skipped', reason: 'search budget spent (run tune again to continue)' });
    } else if (!hasStaticRanks(op.ctx)) {
      results.push({ ...base, status: 'skipped', reason: 'shapes of unknown rank' });
    } else {
      try {
        const { entry, measurements: count } = await searchOp(op, options);
        measurements += count;
        options.db.set(options.machine, op.signature, entry);
        results.push({ ...base, status: 'tuned', entry });
      } catch (error) {
        // Shapes the representative values cannot satisfy trap in wasm: keep the default.
        if (!(error instanceof LlmccError || error instanceof WebAssembly.RuntimeError)) throw error;
        results.push({ ...base, status: 'skipped', reason: error.message });
      }
    }
    options.progress?.tick(results.length, `${op.ctx.node.op} ×${op.nodes}`);
  }
  options.progress?.stop();
  return { ops: results, measurements, elapsedMs: deadline.elapsedMs() };
}
