import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { runConformance, type ConformanceSummary } from '../src/conformance.js';
import { wasmBackend } from '../targets/wasm/backend.js';
import { CONFORMANCE_DIR, REPO_ROOT } from './helpers/paths.js';

const readBaseline = (target: string): string[] => (JSON.parse(
  fs.readFileSync(path.join(REPO_ROOT, 'test', 'baselines', `conformance-${target}.json`), 'utf8'),
) as { passed: string[] }).passed;

/** Tests the reference interpreter passes (scripts/update-conformance-baseline.ts). */
const refPassed = new Set(readBaseline('ref'));
/** Tests that passed on wasm when recorded (scripts/update-wasm-conformance-baseline.ts). */
const wasmBaseline = readBaseline('wasm');

describe('ONNX conformance suite on the wasm target', () => {
  let summary: ConformanceSummary;
  const byStatus = (status: string): string[] => summary.results.filter((r) => r.status === status).map((r) => r.test);

  it('runs every test (ops the target does not claim are UNSUPPORTED)', async () => {
    summary = await runConformance(CONFORMANCE_DIR, wasmBackend);
    expect(summary.results.length).toBeGreaterThan(900);
  }, 1_800_000);

  it('passes every test that passes on ref and whose ops wasm claims', () => {
    const failing = summary.results
      .filter((r) => r.status === 'FAIL' && refPassed.has(r.test))
      .map((r) => `${r.test}: ${r.detail}`);
    expect(failing).toEqual([]);
  });

  it('loses none of the tests in the recorded baseline and passes at least as many', () => {
    const passed = new Set(byStatus('PASS'));
    const lost = summary.results.filter((r) => wasmBaseline.includes(r.test) && r.status !== 'PASS').map((r) => `${r.test}: ${r.status} ${r.detail}`);
    expect(lost).toEqual([]);
    expect(passed.size).toBeGreaterThanOrEqual(wasmBaseline.length);
  });

  it('names the reason for every test it does not run', () => {
    const unexplained = summary.results.filter((r) => r.status !== 'PASS' && !r.detail);
    expect(unexplained).toEqual([]);
    for (const r of summary.results.filter((x) => x.status === 'UNSUPPORTED')) expect(r.detail).toMatch(/^target wasm does not support /);
  });
});
