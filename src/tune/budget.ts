import { LlmccError } from '../../ir/errors.js';

/**
 * How much search a tune may do. The default budget keeps cold tuning of a whole decoder
 * under 10 s: no op search starts later than 7 s into the search (starting the process,
 * loading binaryen and the model take 1–2 s on an idle machine; one op's search overruns
 * by well under a second), at most 6 measured configurations per op signature (the default
 * plus the cost model's top 5) and a fixed timing slice per op. Ops are searched largest
 * estimated share first; those reached after the deadline keep their defaults and are not
 * written to the database, so the next `tune` continues with them. Every tune searches at
 * least one op, so repeated tunes finish even on a machine too loaded for the deadline.
 * Exhaustive mode measures every configuration with no deadline.
 */
export interface TuneBudget {
  mode: 'default' | 'exhaustive';
  /** No op search starts after this many wall-clock milliseconds (Infinity: no deadline). */
  totalMs: number;
  /** Configurations measured per op signature, the default included. */
  maxCandidates: number;
  /** Timing milliseconds per op signature and regime, shared by its candidates. */
  sliceMs: number;
  /** Timed rounds per regime at least (every candidate once per round). */
  minRounds: number;
}

/** The wall-clock limit the issue sets for cold tuning of a whole decoder. */
export const COLD_TUNE_LIMIT_MS = 10_000;

export const DEFAULT_BUDGET: TuneBudget = { mode: 'default', totalMs: 7_000, maxCandidates: 6, sliceMs: 60, minRounds: 5 };

export const EXHAUSTIVE_BUDGET: TuneBudget = { mode: 'exhaustive', totalMs: Infinity, maxCandidates: Infinity, sliceMs: 200, minRounds: 7 };

export function budgetFor(mode: string | undefined): TuneBudget {
  if (mode === undefined || mode === 'default' || mode === '') return DEFAULT_BUDGET;
  if (mode === 'exhaustive') return EXHAUSTIVE_BUDGET;
  throw new LlmccError(`--tune must be 'default' or 'exhaustive', got '${mode}'`);
}

/**
 * The search deadline, on an injectable clock (tests drive it by hand): time counts from the
 * start of the search.
 */
export class Deadline {
  private readonly startedAt: number;

  constructor(private readonly budget: TuneBudget, private readonly now: () => number = () => performance.now()) {
    this.startedAt = now();
  }

  elapsedMs(): number {
    return this.now() - this.startedAt;
  }

  /** Whether another op may still be searched. */
  open(): boolean {
    return this.elapsedMs() < this.budget.totalMs;
  }
}
