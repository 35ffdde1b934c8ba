/**
 * What `compile` does with the tuning database: look each tunable node up by its op
 * signature and hand the stored knobs to the kernel template. It never searches.
 */
import type { KernelBuildContext, WasmKernelDef } from '../../targets/wasm/kernel-def.js';
import { tuningSpaceOf } from './collect.js';
import type { TuningDb } from './db.js';
import type { MachineFingerprint } from './fingerprint.js';
import { opSignature } from './signature.js';

export interface TuningLookupStats {
  /** Tunable kernel nodes whose knobs came from the database. */
  hits: number;
  /** Tunable kernel nodes built with their defaults (no entry). */
  misses: number;
}

export interface TuningLookup {
  knobsFor(def: WasmKernelDef, ctx: KernelBuildContext): Readonly<Record<string, number>> | undefined;
  stats: TuningLookupStats;
}

export function tuningLookup(db: TuningDb, machine: MachineFingerprint): TuningLookup {
  const stats: TuningLookupStats = { hits: 0, misses: 0 };
  return {
    stats,
    knobsFor(def, ctx) {
      const space = tuningSpaceOf(def, ctx);
      if (!space.length) return undefined;
      const entry = db.get(machine, opSignature(ctx, space));
      if (entry) stats.hits++;
      else stats.misses++;
      return entry?.knobs;
    },
  };
}
