import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Model } from '../ir/graph.js';
import { Tensor } from '../ir/tensor.js';
import { measureValue } from '../src/diff/measure.js';
import { rowsByOp, withinTolerance } from '../src/diff/report.js';
import { type ModelDiff, firstDivergence } from '../src/diff/run.js';
import { diffCase, diffSuite, findDiffCases, singleDiffCase } from '../src/diff/suite.js';
import type { Backend } from '../targets/backend.js';
import { getBackend } from '../targets/registry.js';
import { llmcc } from './helpers/cli.js';
import { CONFORMANCE_DIR, MODELS_DIR, REPO_ROOT } from './helpers/paths.js';

const TINY = path.join(REPO_ROOT, 'examples', 'tiny-mlp', 'model.onnx');
const wasm = getBackend('wasm');

/** A target that is `base` except that every output of one op type comes back off by `delta` in its first element. */
function perturbing(base: Backend, op: string, delta: number): Backend {
  return {
    ...base,
    name: `${base.name}-perturbed`,
    async prepare(model: Model) {
      const planted = new Set(model.graph.nodes.filter((n) => n.op === op).flatMap((n) => n.outputs));
      const session = await base.prepare(model);
      return {
        inputNames: session.inputNames,
        outputNames: session.outputNames,
        async run(feeds) {
          const outputs = await session.run(feeds);
          for (const [name, t] of outputs) {
            if (!planted.has(name)) continue;
            const data = Float32Array.from(t.data as Float32Array);
            data[0] += delta;
            outputs.set(name, new Tensor(t.dtype, t.shape, data));
          }
          return outputs;
        },
      };
    },
  };
}

function targetOf(diff: ModelDiff, name: string) {
  const t = diff.targets.find((x) => x.target === name);
  expect(t, `target ${name} in the diff`).toBeDefined();
  return t!;
}

describe('measureValue', () => {
  const f32 = (values: number[]): Tensor => Tensor.fromNumbers('f32', [values.length], values);

  it('counts ulps at the reference value, and matching NaN/∞ as agreement', () => {
    const d = measureValue(f32([1 + 2 ** -23, NaN, Infinity, 0]), f32([1, NaN, Infinity, 0]));
    expect(d.maxUlp).toBe(1);
    expect(d.maxAbs).toBe(2 ** -23);
    expect(d.nonFinite).toBe(0);
    expect(d.tolUse).toBeLessThan(1);
  });

  it('flags a NaN where the reference is finite, and shape/dtype differences', () => {
    const nan = measureValue(f32([1, NaN]), f32([1, 2]));
    expect(nan.nonFinite).toBe(1);
    expect(nan.tolUse).toBe(Infinity);
    expect(measureValue(f32([1, 2]), f32([1, 2, 3])).structural).toMatch(/shape/);
    expect(measureValue(Tensor.fromNumbers('i32', [1], [1]), f32([1])).structural).toMatch(/dtype/);
  });

  it('uses atol + rtol·|ref| as the unit of tol×', () => {
    expect(measureValue(f32([100.2]), f32([100]), { atol: 0, rtol: 1e-3 }).tolUse).toBeCloseTo(2, 3);
  });
});

describe('differential harness', () => {
  it('attributes a planted disagreement to the op that has it (whole graph)', async () => {
    const diff = await diffCase(singleDiffCase(TINY), [wasm, perturbing(wasm, 'Gelu', 0.05)], {});
    expect(firstDivergence(targetOf(diff, 'wasm'))).toBeUndefined();
    const planted = targetOf(diff, 'wasm-perturbed');
    const first = firstDivergence(planted);
    expect(first?.op).toBe('Gelu');
    const rows = rowsByOp([diff]).filter((r) => r.target === 'wasm-perturbed');
    expect(rows[0].op).toBe('Gelu');
    expect(rows[0].maxAbs).toBeCloseTo(0.05, 3);
    expect(rows.filter((r) => r.op !== 'Gelu').every((r) => r.tolUse <= 1)).toBe(true);
  });

  it('attributes a planted disagreement to its op when nodes run in isolation', async () => {
    const diff = await diffCase(singleDiffCase(TINY), [perturbing(wasm, 'LayerNormalization', -0.02)], { isolate: true });
    const t = targetOf(diff, 'wasm-perturbed');
    expect(t.status).toBe('compared');
    const beyond = t.values.filter((v) => v.diff.tolUse > 1);
    expect(beyond.map((v) => v.op)).toEqual(['LayerNormalization']);
    expect(t.values.length).toBeGreaterThan(3);
  });

  it('finds every shared model within tolerance per op (isolated) and its drift bounded (whole graph)', async () => {
    const cases = findDiffCases(MODELS_DIR);
    expect(cases.length).toBeGreaterThanOrEqual(10);
    const whole = await diffSuite(cases, [wasm], { tolerance: { rtol: 1e-2 } });
    expect(whole.failures).toEqual([]);
    for (const d of whole.diffs) expect(targetOf(d, 'wasm').status, d.name).toBe('compared');
    const worst = rowsByOp(whole.diffs)[0];
    expect(withinTolerance(whole.diffs), `${worst.op}: tol× ${worst.tolUse} at ${worst.worst.value}`).toBe(true);
    // Per op, without upstream drift, at the default tolerance: the smaller decoders (time).
    const small = cases.filter((c) => /gpt2|gqa|pipeline|matmulnbits/.test(c.name));
    const isolated = await diffSuite(small, [wasm], { isolate: true });
    const compared = isolated.diffs.flatMap((d) => d.targets).flatMap((t) => t.values).length;
    expect(compared).toBeGreaterThan(80);
    expect(withinTolerance(isolated.diffs)).toBe(true);
  });

  it('finds a slice of the conformance suite within tolerance', async () => {
    const cases = findDiffCases(CONFORMANCE_DIR, /^test_(softmax_axis|gelu_default|layer_normalization_2d|matmul_|erf$|sigmoid$|tanh$)/);
    expect(cases.length).toBeGreaterThanOrEqual(12);
    const { diffs, failures } = await diffSuite(cases, [wasm], {});
    expect(failures).toEqual([]);
    expect(diffs.filter((d) => targetOf(d, 'wasm').status === 'compared').length).toBeGreaterThanOrEqual(12);
    expect(withinTolerance(diffs)).toBe(true);
  });
});

describe('llmcc diff', () => {
  it('prints the per-op table; exits 1 beyond tolerance and 2 on an unknown target', () => {
    // Zero tolerance: wasm's f32 rounding differs from the f64 reference somewhere.
    const tight = llmcc('diff', TINY, '--targets', 'wasm', '--atol', '0', '--rtol', '0');
    expect(tight.stderr).toBe('');
    expect(tight.code).toBe(1);
    expect(tight.stdout).toMatch(/wasm: \d+ values compared, first beyond tolerance: node "\w+" \(\w+\)/);
    expect(tight.stdout).toMatch(/^Gelu +wasm +1 +[01] /m);
    const bad = llmcc('diff', TINY, '--targets', 'wasm,nope');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/^llmcc: error: unknown target 'nope'/);
  });
});
