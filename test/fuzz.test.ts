import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { FuzzSummary } from '../src/fuzz/harness.js';
import { replayFinding } from '../src/fuzz/harness.js';
import { errorKind } from '../src/fuzz/case.js';
import { mutateModel } from '../src/fuzz/mutate.js';
import { Rng, caseSeed } from '../src/fuzz/rng.js';
import type { Graph, Node } from '../ir/graph.js';
import { Tensor } from '../ir/tensor.js';
import { F32_SAFE_MAGNITUDE, extremeValue } from '../src/fuzz/extreme.js';
import { runCase } from '../src/fuzz/case.js';
import { prepareSeed } from '../src/fuzz/seeds.js';
import type { TestDataSet } from '../src/testdata.js';
import { REPO_ROOT, SHARED } from './helpers/paths.js';

const FIXTURES = path.join(REPO_ROOT, 'test', 'fixtures', 'fuzz-regressions');

describe('fuzz harness', () => {
  it('mutates deterministically: the same case seed gives the same bytes and description', () => {
    const bytes = new Uint8Array(fs.readFileSync(path.join(SHARED, 'models', 'genai-pipeline-model-tiny', 'transformer', 'model.onnx')));
    for (let k = 0; k < 20; k++) {
      const a = mutateModel(bytes, new Rng(caseSeed(9, k)), [{ dtype: 'f32', size: 8 }]);
      const b = mutateModel(bytes, new Rng(caseSeed(9, k)), [{ dtype: 'f32', size: 8 }]);
      expect(a.mutations.length).toBeGreaterThan(0);
      expect(b).toEqual(a);
    }
  });

  it('names error kinds by their first words, without names and numbers', () => {
    expect(errorKind('tensor has 12 bytes of raw_data but f32[4] needs 16, initializer "w"')).toBe('tensor has N bytes');
    expect(errorKind("graph output 'y' is never produced")).toBe('graph output _ is');
  });

  // The fixed-seed run of the issue: ≥ 2,000 cases over ≥ 3 seed models, zero findings, on
  // the reference and wasm (values compared inside the f32-safe range, src/fuzz/extreme.ts).
  it('fixed-seed run: 2000 cases over the quick seeds end in clear errors or correct results', () => {
    const json = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'llmcc-fuzz-test-')), 'summary.json');
    const findings = path.join(path.dirname(json), 'findings');
    const result = spawnSync(process.execPath, [
      '--import', 'tsx', path.join(REPO_ROOT, 'src', 'fuzz', 'main.ts'),
      '--cases', '2000', '--seed', '1', '--seeds', 'quick', '--targets', 'wasm', '--workers', '2',
      '--timeout', '20000', '--json', json, '--findings', findings,
    ], { cwd: REPO_ROOT, encoding: 'utf8', timeout: 240_000 });
    expect(fs.existsSync(json), `no summary: ${result.stderr}`).toBe(true);
    const summary = JSON.parse(fs.readFileSync(json, 'utf8')) as FuzzSummary;
    const report = summary.findings.map((f) => `${f.model} case ${f.index} [${f.mutations.join('; ')}]: ${f.message}`).join('\n');
    expect(report).toBe('');
    expect(result.status).toBe(0);
    expect(summary.cases).toBe(2000);
    expect(summary.seeds.length).toBeGreaterThanOrEqual(3);
    expect(summary.ok + summary.errors).toBe(2000);
    // The unmutated seeds and some mutants run to the end; most mutants are refused.
    expect(summary.ok).toBeGreaterThan(100);
    expect(summary.errorsByKind.length).toBeGreaterThan(20);
  }, 300_000);
});

describe('fuzz comparison semantics: f32 targets against the f64 reference', () => {
  const transformer = 'models/genai-pipeline-model-tiny/transformer';

  it('calls a case extreme when a float input, weight or attribute leaves the f32-safe range', () => {
    const data = (values: number[]): TestDataSet => ({ dir: 'd', inputs: [{ name: 'x', tensor: Tensor.fromNumbers('f32', [values.length], values) }], outputs: [] });
    const graph: Graph = { name: 'g', inputs: [], outputs: [], nodes: [], initializers: new Map(), valueInfo: new Map() };
    expect(extremeValue(graph, data([1, -F32_SAFE_MAGNITUDE]))).toBeUndefined();
    expect(extremeValue(graph, data([1, 1e30]))).toMatch(/^input_0\.pb holds 1(\.\d+)?e\+30$/);
    expect(extremeValue(graph, data([NaN]))).toMatch(/NaN/);
    expect(extremeValue(graph, { ...data([1]), inputs: [{ name: 'i', tensor: Tensor.fromNumbers('i64', [1], [2 ** 40]) }] })).toBeUndefined();
    const node: Node = { name: 'n', domain: '', op: 'LeakyRelu', inputs: ['x'], outputs: ['y'], attributes: new Map([['alpha', { kind: 'float', value: Infinity }]]) };
    expect(extremeValue({ ...graph, nodes: [node] }, data([1]))).toMatch(/attribute alpha of node "n"/);
  });

  it('an extreme input that overflows f32 inside a norm is checked for shapes, not values, on wasm', async () => {
    const work = fs.mkdtempSync(path.join(os.tmpdir(), 'llmcc-fuzz-extreme-'));
    try {
      const seed = prepareSeed(SHARED, { name: transformer, weight: 1 }, work);
      // 1e30 squared is ∞ in f32 (the wasm row turns NaN) but 1e60 in f64 (the reference's stays finite).
      const extreme = await runCase(seed, seed.bytes, { pristine: false, lower: false, targets: ['wasm'], feedEdits: [{ input: 0, index: 29, value: 1e30 }] });
      expect(extreme).toMatchObject({ status: 'ok', extreme: expect.stringMatching(/^input_0\.pb holds 1(\.\d+)?e\+30$/) });
      // Inside the range the values are compared, and agree.
      const large = await runCase(seed, seed.bytes, { pristine: false, lower: false, targets: ['wasm'], feedEdits: [{ input: 0, index: 29, value: 1e6 }] });
      expect(large).toEqual({ status: 'ok', refusals: [] });
    } finally {
      fs.rmSync(work, { recursive: true, force: true });
    }
  });
});

describe('fuzz regressions (crashers found by fuzzing, kept tiny)', () => {
  const fixtures = fs.readdirSync(FIXTURES).filter((f) => f.endsWith('.json')).sort();
  it('has fixtures', () => expect(fixtures.length).toBeGreaterThan(0));
  for (const file of fixtures) {
    it(file.replace(/\.json$/, ''), async () => {
      const { outcome } = await replayFinding(path.join(FIXTURES, file), SHARED);
      expect(outcome.status === 'finding' ? `${outcome.stage}: ${outcome.message}` : '').toBe('');
      expect(outcome.status).toBe('error');
      if (outcome.status === 'error') expect(outcome.message).not.toMatch(/[\u0000-\u001f]/);
    });
  }
});
