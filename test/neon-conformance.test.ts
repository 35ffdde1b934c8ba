/**
 * The ONNX conformance suite on the neon target, batched (one C build and one run per mode),
 * under qemu-aarch64 -cpu max (+dotprod build) and -cpu cortex-a53 (armv8-a build, the path
 * without dotprod).
 *
 * The whole suite runs by default (the issue's bar, ~1.5 min on 2 cores). LLMCC_NEON_QUICK=1 runs
 * a deterministic slice instead (every 20th test, and every test of softmax, layer norm, matmul,
 * gelu, erf and equal) for quick local iterations.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import type { ConformanceSummary } from '../src/conformance.js';
import { findTests } from '../src/conformance.js';
import { runNeonConformanceModes } from '../targets/neon/conformance.js';
import type { NeonMode } from '../targets/neon/toolchain.js';
import { CONFORMANCE_DIR, REPO_ROOT } from './helpers/paths.js';

const readBaseline = (target: string): string[] => (JSON.parse(
  fs.readFileSync(path.join(REPO_ROOT, 'test', 'baselines', `conformance-${target}.json`), 'utf8'),
) as { passed: string[] }).passed;

/** Tests the reference interpreter passes (scripts/update-conformance-baseline.ts). */
const refPassed = new Set(readBaseline('ref'));
/** Tests that passed on neon in both modes when recorded (scripts/update-neon-conformance-baseline.ts). */
const neonBaseline = readBaseline('neon');

const full = process.env.LLMCC_NEON_QUICK !== '1';
const allTests = findTests(CONFORMANCE_DIR);
const VECTOR_OPS = /^test_(softmax|layer_norm|matmul|gelu|erf|equal)/;
const selected = new Set(full ? allTests : allTests.filter((t, i) => i % 20 === 0 || VECTOR_OPS.test(t)));
const filter = new RegExp(`^(${[...selected].map((t) => t.replace(/[^A-Za-z0-9_]/g, '\\$&')).join('|')})$`);

const MODES: NeonMode[] = ['qemu-max', 'qemu-a53'];
const summaries = new Map<NeonMode, ConformanceSummary>();

beforeAll(async () => {
  const results = await runNeonConformanceModes(CONFORMANCE_DIR, MODES, { filter });
  MODES.forEach((mode, i) => summaries.set(mode, results[i]));
}, 1_800_000);

describe(`ONNX conformance on the neon target (${full ? 'whole suite' : `${selected.size} of ${allTests.length} tests; LLMCC_NEON_QUICK=1`})`, () => {
  for (const mode of MODES) {
    describe(mode, () => {
      const summary = (): ConformanceSummary => summaries.get(mode)!;

      it('runs every selected test', () => {
        expect(summary().results.length).toBe(selected.size);
      });

      it('passes every test that passes on ref and whose ops neon claims (the rest are UNSUPPORTED)', () => {
        const failing = summary().results.filter((r) => r.status === 'FAIL' && refPassed.has(r.test)).map((r) => `${r.test}: ${r.detail}`);
        expect(failing).toEqual([]);
      });

      it('loses none of the tests in the recorded baseline', () => {
        const lost = summary().results.filter((r) => neonBaseline.includes(r.test) && r.status !== 'PASS').map((r) => `${r.test}: ${r.status} ${r.detail}`);
        expect(lost).toEqual([]);
        const passed = summary().results.filter((r) => r.status === 'PASS').length;
        expect(passed).toBeGreaterThanOrEqual(neonBaseline.filter((t) => selected.has(t)).length);
      });

      it('names the reason for every test it does not run', () => {
        const unexplained = summary().results.filter((r) => r.status !== 'PASS' && !r.detail);
        expect(unexplained).toEqual([]);
        for (const r of summary().results.filter((x) => x.status === 'UNSUPPORTED')) expect(r.detail).toMatch(/^target neon does not support /);
      });
    });
  }
});
