import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { runConformance, type ConformanceSummary } from '../src/conformance.js';
import { referenceBackend } from '../targets/ref/backend.js';
import { CONFORMANCE_DIR, REPO_ROOT } from './helpers/paths.js';

interface Manifest {
  [test: string]: { category: 'core' | 'extra' };
}

const manifest = JSON.parse(fs.readFileSync(path.join(CONFORMANCE_DIR, 'manifest.json'), 'utf8')) as Manifest;
/** Tests that passed when the baseline was recorded (scripts/update-conformance-baseline.ts). */
const baseline = JSON.parse(
  fs.readFileSync(path.join(REPO_ROOT, 'test', 'baselines', 'conformance-ref.json'), 'utf8'),
) as { passed: string[] };

describe('ONNX conformance suite on the reference interpreter', () => {
  let summary: ConformanceSummary;

  it('runs all 986 tests', async () => {
    summary = await runConformance(CONFORMANCE_DIR, referenceBackend);
    expect(summary.results).toHaveLength(Object.keys(manifest).length);
  }, 900_000);

  it('passes at least 95% of core and 80% of all tests', () => {
    const passed = new Set(summary.results.filter((r) => r.status === 'PASS').map((r) => r.test));
    const core = Object.keys(manifest).filter((t) => manifest[t].category === 'core');
    const corePassed = core.filter((t) => passed.has(t)).length;
    expect(corePassed / core.length).toBeGreaterThanOrEqual(0.95);
    expect(passed.size / summary.results.length).toBeGreaterThanOrEqual(0.8);
  });

  it('loses none of the tests in the recorded baseline', () => {
    const passed = new Set(summary.results.filter((r) => r.status === 'PASS').map((r) => r.test));
    const regressions = baseline.passed.filter((t) => !passed.has(t));
    const details = summary.results.filter((r) => regressions.includes(r.test)).map((r) => `${r.test}: ${r.detail}`);
    expect(details).toEqual([]);
    expect(passed.size).toBeGreaterThanOrEqual(baseline.passed.length);
  });

  it('gives a reason for everything it does not pass', () => {
    const unexplained = summary.results.filter((r) => r.status !== 'PASS' && !r.detail);
    expect(unexplained).toEqual([]);
  });
});
