import * as fs from 'node:fs';
import * as path from 'node:path';
import { LlmccError } from '../../ir/errors.js';
import { runLoweringPipeline } from '../../passes/pipeline.js';
import type { Backend } from '../../targets/backend.js';
import { allBackends, defaultCheckBackends, getBackend } from '../../targets/registry.js';
import { formatOpTable, formatTargetLines, rowsByOp, withinTolerance } from '../diff/report.js';
import type { DiffOptions, ModelDiff } from '../diff/run.js';
import { type DiffCase, type DiffFailure, diffSuite, findDiffCases, singleDiffCase } from '../diff/suite.js';
import { writeFileAtomic } from '../fsutil.js';
import { EXIT_INVALID, EXIT_MISMATCH, EXIT_OK, parseFilter } from './errors.js';
import { loweringFromFlags, type LoweringFlags } from './lowering-options.js';

export interface DiffCliOptions extends LoweringFlags {
  data?: string;
  targets?: string;
  atol?: number;
  rtol?: number;
  lower?: boolean;
  filter?: string;
  limit?: number;
  json?: string;
  isolate?: boolean;
}

/** The named targets, or every in-process one (the reference is always the baseline). */
function chooseTargets(list: string | undefined): Backend[] {
  const names = list ? list.split(',').map((s) => s.trim()).filter(Boolean) : defaultCheckBackends().map((b) => b.name);
  const backends = names.map(getBackend).filter((b) => b.name !== 'ref');
  if (backends.length === 0) throw new LlmccError(`--targets needs a target besides ref (available: ${allBackends().map((b) => b.name).join(', ')})`);
  return backends;
}

function diffOptions(options: DiffCliOptions): DiffOptions {
  if (!options.lower && (options.bits !== undefined || options.bitsMap || options.keep?.length)) {
    throw new LlmccError('--bits, --keep and --bits-map take effect with --lower');
  }
  const tolerance = { ...(options.atol !== undefined ? { atol: options.atol } : {}), ...(options.rtol !== undefined ? { rtol: options.rtol } : {}) };
  const isolate = options.isolate ?? false;
  if (!options.lower) return { tolerance, isolate };
  // Check the flags once up front so a bad flag is one error, not one per model.
  loweringFromFlags(options);
  return {
    tolerance,
    isolate,
    prepare: (model, target) => { runLoweringPipeline(model, loweringFromFlags(options, target)); },
    prepareKey: (target) => JSON.stringify(loweringFromFlags(options, target)),
  };
}

function isSuiteFolder(arg: string): boolean {
  return fs.existsSync(arg) && fs.statSync(arg).isDirectory() && !fs.existsSync(path.join(arg, 'model.onnx'));
}

/**
 * `llmcc diff <model.onnx | model folder | folder of models>`: runs the graph on each target
 * and the reference with every intermediate exposed; prints the largest disagreement per op.
 * Exit 0 when every value is within tolerance, 1 otherwise, 2 on invalid input.
 */
export async function diffCommand(arg: string, options: DiffCliOptions): Promise<number> {
  if (!fs.existsSync(arg)) throw new LlmccError('model or folder not found', arg);
  const targets = chooseTargets(options.targets);
  const opts = diffOptions(options);
  const suite = isSuiteFolder(arg);
  if (suite && options.data) throw new LlmccError('--data applies to one model; a folder uses each model\'s first test_data_set', arg);
  const filter = parseFilter(options.filter);
  let cases: DiffCase[] = suite ? findDiffCases(arg, filter) : [singleDiffCase(arg, options.data)];
  if (options.limit !== undefined) cases = cases.slice(0, options.limit);
  if (suite && cases.length === 0) throw new LlmccError('no model folders with a test_data_set found', arg);

  const print = (r: ModelDiff | DiffFailure): void => {
    if ('error' in r) {
      console.log(`${r.name}: error: ${r.error}`);
      return;
    }
    for (const line of formatTargetLines(r)) console.log(suite ? `${r.name}: ${line}` : line);
  };
  const { diffs, failures } = await diffSuite(cases, targets, opts, print);
  if (!suite && failures.length) throw new LlmccError(failures[0].error);
  console.log('');
  console.log(formatOpTable(rowsByOp(diffs), suite));
  if (suite) {
    const skipped = diffs.filter((d) => d.targets.every((t) => t.status === 'skipped')).length;
    console.log(`\n${diffs.length} models diffed (${skipped} skipped by every target), ${failures.length} invalid`);
  }
  if (options.json) writeFileAtomic(options.json, `${JSON.stringify({ diffs, failures }, null, 2)}\n`);
  if (failures.length && diffs.length === 0) return EXIT_INVALID;
  return withinTolerance(diffs) ? EXIT_OK : EXIT_MISMATCH;
}
