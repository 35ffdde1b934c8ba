#!/usr/bin/env node
/**
 * `npm run fuzz -- --seconds N [--seed S]`: mutates the shared models and feeds every case
 * to import → inspect → verify → compile → lowering → every target. Prints the counts
 * (cases, ok, errors by kind, findings); each finding is written as JSON (seed, mutation
 * list, message) plus the mutated model, and replays with `--replay <finding.json>`.
 * Exit status: 0 without findings, 1 with findings, 2 for bad arguments.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command, InvalidArgumentError } from 'commander';
import { LlmccError } from '../../ir/errors.js';
import { type FuzzSummary, formatSummary, runFuzz, replayFinding } from './harness.js';

function integer(value: string): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 0) throw new InvalidArgumentError('expected a non-negative integer');
  return n;
}

/** The repository root, from src/fuzz (tsx) or dist/src/fuzz (built). */
function repoRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  while (!fs.existsSync(path.join(dir, 'package.json'))) dir = path.dirname(dir);
  return dir;
}

interface Options {
  seconds?: number;
  cases?: number;
  seed: number;
  seeds: string;
  workers: number;
  timeout: number;
  findings: string;
  json?: string;
  replay?: string;
  shared: string;
  targets?: string;
}

const root = repoRoot();
const program = new Command('llmcc-fuzz')
  .description('deterministic fuzzing of the importer, verifier, compiler and targets')
  .option('--seconds <n>', 'run for this long (default 60 unless --cases)', integer)
  .option('--cases <n>', 'run exactly this many cases', integer)
  .option('--seed <s>', 'run seed: case k of seed s is always the same mutation', integer, 1)
  .option('--seeds <set>', 'seed models: quick, all, or comma-separated names under the shared folder', 'all')
  .option('--workers <n>', 'worker threads', integer, Math.max(1, Math.min(4, os.availableParallelism())))
  .option('--targets <names>', 'targets besides ref, comma-separated (default: every in-process target: wasm; name neon to include it)')
  .option('--timeout <ms>', 'time bound per case', integer, 20_000)
  .option('--findings <dir>', 'where findings are written', path.join(root, 'tmp', 'fuzz-findings'))
  .option('--json <file>', 'also write the summary as JSON')
  .option('--replay <finding.json>', 'replay one finding (or a regression fixture) and print its outcome')
  .option('--shared <dir>', 'the shared data folder', path.resolve(root, '..', 'shared'))
  .showHelpAfterError();

async function main(): Promise<number> {
  program.parse(process.argv);
  const options = program.opts<Options>();
  if (options.replay) {
    const result = await replayFinding(options.replay, options.shared);
    console.log(`${result.outcome.status}${'stage' in result.outcome ? ` at ${result.outcome.stage}` : ''}: ${'message' in result.outcome ? result.outcome.message : 'ok'}`);
    if (result.outcome.status === 'finding' && result.outcome.stack) console.log(result.outcome.stack);
    return result.outcome.status === 'finding' ? 1 : 0;
  }
  const summary: FuzzSummary = await runFuzz({
    shared: options.shared,
    seedSet: options.seeds,
    runSeed: options.seed,
    ...(options.cases !== undefined ? { cases: options.cases } : { seconds: options.seconds ?? 60 }),
    workers: options.workers,
    ...(options.targets !== undefined ? { targets: options.targets.split(',').filter(Boolean) } : {}),
    timeoutMs: options.timeout,
    findingsDir: options.findings,
    onProgress: (line) => process.stderr.write(`${line}\n`),
  });
  console.log(formatSummary(summary));
  if (options.json) fs.writeFileSync(options.json, `${JSON.stringify(summary, null, 2)}\n`);
  return summary.findings.length ? 1 : 0;
}

try {
  process.exitCode = await main();
} catch (error) {
  const message = error instanceof LlmccError ? error.message : error instanceof Error ? error.stack ?? error.message : String(error);
  process.stderr.write(`llmcc-fuzz: error: ${message}\n`);
  process.exitCode = 2;
}
