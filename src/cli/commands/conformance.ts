import { LlmccError } from '../../../ir/errors.js';
import { getBackend } from '../../../targets/registry.js';
import { neonModeFromFlags, type NeonModeFlags } from '../../../targets/neon/cli.js';
import { runNeonConformance } from '../../../targets/neon/conformance.js';
import { runConformance, type ConformanceResult } from '../../conformance.js';
import { writeFileAtomic } from '../../fsutil.js';
import { EXIT_MISMATCH, EXIT_OK, parseFilter } from '../errors.js';

export interface ConformanceOptions extends NeonModeFlags {
  target: string;
  filter?: string;
  json?: string;
}

/** `llmcc conformance`: one line per backend test, then `N passed, N failed, N skipped`. */
export async function conformanceCommand(dir: string, options: ConformanceOptions): Promise<number> {
  const backend = getBackend(options.target);
  const filter = parseFilter(options.filter);
  const onResult = (r: ConformanceResult): void => {
    const detail = r.detail ? `: ${r.detail.replace(/\s*\n\s*/g, ' ')}` : '';
    console.log(`${r.status} ${r.test}${detail}`);
  };
  if (options.target !== 'neon' && (options.host || options.cpu || options.sanitize)) {
    throw new LlmccError('--host, --cpu and --sanitize apply to --target neon');
  }
  // neon batches every case into one C build and one run.
  const summary = options.target === 'neon'
    ? await runNeonConformance(dir, neonModeFromFlags(options), { ...(filter ? { filter } : {}), onResult })
    : await runConformance(dir, backend, { ...(filter ? { filter } : {}), onResult });
  if (options.json) writeFileAtomic(options.json, `${JSON.stringify(summary, null, 2)}\n`);
  console.log(`${summary.passed} passed, ${summary.failed} failed, ${summary.skipped} skipped`);
  return summary.failed ? EXIT_MISMATCH : EXIT_OK;
}
