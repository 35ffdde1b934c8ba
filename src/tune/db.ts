/**
 * The persistent tuning database: one JSON file, keyed by machine fingerprint (which names
 * the target) and op signature, holding the chosen knobs and the figures that chose them.
 *
 * Format (version 1):
 *   { "format": "llmcc-tuning", "version": 1,
 *     "machines": { "<fingerprint key>": { "fingerprint": {...},
 *       "ops": { "<op signature>": TuningEntry } } } }
 *
 * Written atomically (temp file + rename). A file that cannot be read as this format (corrupt
 * JSON, another version) gives one warning and the database starts empty; the next save
 * replaces it.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { LlmccError } from '../../ir/errors.js';
import { writeFileAtomic } from '../fsutil.js';
import { fingerprintKey, type MachineFingerprint } from './fingerprint.js';

export const TUNING_DB_FORMAT = 'llmcc-tuning';
export const TUNING_DB_VERSION = 1;

/** One regime's figures, milliseconds per kernel call (fastest sample). */
export interface RegimeFigures {
  regime: string;
  seq: number;
  defaultMs: number;
  tunedMs: number;
}

export interface TuningEntry {
  op: string;
  /** The chosen knob values (the defaults when nothing measured beat them). */
  knobs: Record<string, number>;
  defaultKnobs: Record<string, number>;
  figures: RegimeFigures[];
  /** Configurations measured, out of the space's size. */
  measured: number;
  spaceSize: number;
  mode: 'default' | 'exhaustive';
  tunedAt: string;
}

interface MachineSection {
  fingerprint: MachineFingerprint;
  ops: Record<string, TuningEntry>;
}

interface TuningDbFile {
  format: typeof TUNING_DB_FORMAT;
  version: number;
  machines: Record<string, MachineSection>;
}

/** The database path: `explicit`, else $LLMCC_TUNING_DB, else the user's cache folder. */
export function tuningDbPath(explicit?: string): string {
  if (explicit) return explicit;
  const env = process.env.LLMCC_TUNING_DB;
  if (env) return env;
  const cache = process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache');
  return path.join(cache, 'llmcc', 'tuning.json');
}

function isRecord(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

function isEntry(x: unknown): x is TuningEntry {
  if (!isRecord(x) || typeof x.op !== 'string' || !isRecord(x.knobs) || !isRecord(x.defaultKnobs) || !Array.isArray(x.figures)) return false;
  return Object.values(x.knobs).every((v) => typeof v === 'number');
}

/** Why `json` is not a version-1 database (undefined: it is). */
function formatProblem(json: unknown): string | undefined {
  if (!isRecord(json) || json.format !== TUNING_DB_FORMAT) return 'not an llmcc tuning database';
  if (json.version !== TUNING_DB_VERSION) return `version ${String(json.version)}, this llmcc reads version ${TUNING_DB_VERSION}`;
  if (!isRecord(json.machines)) return 'no machines section';
  for (const [key, section] of Object.entries(json.machines)) {
    if (!isRecord(section) || !isRecord(section.fingerprint) || !isRecord(section.ops)) return `machine '${key}' is malformed`;
    for (const [sig, entry] of Object.entries(section.ops)) if (!isEntry(entry)) return `entry '${sig}' is malformed`;
  }
  return undefined;
}

export class TuningDb {
  readonly path: string;
  private data: TuningDbFile;
  /** Set when the file existed but could not be read (the database then started empty). */
  readonly problem: string | undefined;

  private constructor(file: string, data: TuningDbFile, problem?: string) {
    this.path = file;
    this.data = data;
    this.problem = problem;
  }

  static empty(file: string): TuningDb {
    return new TuningDb(file, { format: TUNING_DB_FORMAT, version: TUNING_DB_VERSION, machines: {} });
  }

  /**
   * Opens the database at `file` (missing: empty). An unreadable file is not an error: `warn`
   * gets one line and the database starts empty.
   */
  static open(file: string, warn: (line: string) => void = (line) => process.stderr.write(`${line}\n`)): TuningDb {
    let text: string;
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return TuningDb.empty(file);
      const problem = `cannot read it (${(error as NodeJS.ErrnoException).code ?? String(error)})`;
      warn(`llmcc: warning: tuning database ${file}: ${problem}; using an empty one`);
      return new TuningDb(file, TuningDb.empty(file).data, problem);
    }
    let json: unknown;
    let problem: string | undefined;
    try {
      json = JSON.parse(text);
      problem = formatProblem(json);
    } catch (error) {
      problem = `corrupt JSON (${error instanceof Error ? error.message : String(error)})`;
    }
    if (problem) {
      warn(`llmcc: warning: tuning database ${file}: ${problem}; starting a fresh one (the next tune overwrites it)`);
      return new TuningDb(file, TuningDb.empty(file).data, problem);
    }
    return new TuningDb(file, json as TuningDbFile);
  }

  get(machine: MachineFingerprint, signature: string): TuningEntry | undefined {
    return this.data.machines[fingerprintKey(machine)]?.ops[signature];
  }

  set(machine: MachineFingerprint, signature: string, entry: TuningEntry): void {
    const key = fingerprintKey(machine);
    const section = this.data.machines[key] ??= { fingerprint: machine, ops: {} };
    section.ops[signature] = entry;
  }

  /** Entries for one machine. */
  entries(machine: MachineFingerprint): [string, TuningEntry][] {
    return Object.entries(this.data.machines[fingerprintKey(machine)]?.ops ?? {});
  }

  /** Writes the whole database atomically, creating its folder. */
  save(): void {
    try {
      fs.mkdirSync(path.dirname(path.resolve(this.path)), { recursive: true });
    } catch (error) {
      throw new LlmccError(`cannot create the tuning database's folder: ${error instanceof Error ? error.message : String(error)}`, this.path);
    }
    writeFileAtomic(this.path, `${JSON.stringify(this.data, null, 1)}\n`);
  }
}
