import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Dim, Node } from '../ir/graph.js';
import { COLD_TUNE_LIMIT_MS, DEFAULT_BUDGET, Deadline, EXHAUSTIVE_BUDGET, budgetFor, type TuneBudget } from '../src/tune/budget.js';
import type { TunableOp } from '../src/tune/collect.js';
import { TUNING_DB_VERSION, TuningDb, tuningDbPath, type TuningEntry } from '../src/tune/db.js';
import { fingerprintKey, machineFingerprint, wasmMachine, type MachineFingerprint } from '../src/tune/fingerprint.js';
import type { MeasureRequest } from '../src/tune/measure.js';
import { concreteShape, opSignature, regimesOf } from '../src/tune/signature.js';
import { defaultKnobs, enumerateSpace } from '../src/tune/space.js';
import { chooseCandidate, rankCandidates, tuneOps } from '../src/tune/tuner.js';
import type { KernelBuildContext, TuningKnob } from '../targets/wasm/kernel-def.js';
import { matMulKernel } from '../targets/wasm/kernels/MatMul.js';
import { wasmKernelCost } from '../targets/wasm/tuning.js';
import { node } from './helpers/lut-graph.js';

let root: string;
beforeAll(() => { root = fs.mkdtempSync(path.join(os.tmpdir(), 'llmcc-tune-')); });
afterAll(() => { fs.rmSync(root, { recursive: true, force: true }); });

const SPACE: TuningKnob[] = [{ name: 'x', values: [1, 2], default: 1 }, { name: 'y', values: [4, 8], default: 8 }];

function matMulCtx(a: Dim[], b: Dim[], out: Dim[], name = 'mm', attrs: Record<string, number> = {}): KernelBuildContext {
  const n: Node = node('MatMul', ['a', 'b'], ['c'], attrs, '', name);
  return { node: n, inputs: [{ dtype: 'f32', shape: a }, { dtype: 'f32', shape: b }], outputs: [{ dtype: 'f32', shape: out }], constant: () => undefined, name };
}

describe('op signatures', () => {
  it('are stable strings that ignore node names and symbol spellings', () => {
    const one = opSignature(matMulCtx(['batch', 'seq', 64], [64, 128], ['batch', 'seq', 128], 'layers.0.q'), SPACE);
    const two = opSignature(matMulCtx(['batch_size', 'sequence_length', 64], [64, 128], ['batch_size', 'sequence_length', 128], 'other'), SPACE);
    expect(one).toBe(two);
    expect(one).toBe('ai.onnx::MatMul in(f32[B,S,64],f32[64,128]) out(f32[B,S,128]) attrs() knobs(x=1|2@1;y=4|8@8)');
  });

  it('differ by shape, dtype, attributes and knob space, not by attribute order', () => {
    const base = opSignature(matMulCtx([1, 64], [64, 128], [1, 128]), SPACE);
    expect(opSignature(matMulCtx([1, 64], [64, 256], [1, 256]), SPACE)).not.toBe(base);
    expect(opSignature(matMulCtx([1, 64], [64, 128], [1, 128], 'mm', { alpha: 2 }), SPACE)).not.toBe(base);
    expect(opSignature(matMulCtx([1, 64], [64, 128], [1, 128]), [SPACE[0]])).not.toBe(base);
    const f16 = matMulCtx([1, 64], [64, 128], [1, 128]);
    f16.inputs[1] = { dtype: 'f16', shape: [64, 128] };
    expect(opSignature(f16, SPACE)).not.toBe(base);
    const ab = opSignature(matMulCtx([1, 64], [64, 128], [1, 128], 'mm', { a: 1, b: 2 }), SPACE);
    const ctx = matMulCtx([1, 64], [64, 128], [1, 128], 'mm', { b: 2 });
    ctx.node.attributes.set('a', { kind: 'int', value: 1 });
    expect(opSignature(ctx, SPACE)).toBe(ab);
  });

  it('measure symbolic shapes at decode (S = 1) and prefill, static ones once; batch dims are 1', () => {
    const ctx = matMulCtx(['batch', 'seq', 64], [64, 128], ['batch', 'seq', 128]);
    const regimes = regimesOf(ctx);
    expect(regimes.map((r) => r.name)).toEqual(['decode', 'prefill']);
    expect(concreteShape(['batch', 'seq', 64], regimes[0])).toEqual([1, 1, 64]);
    expect(concreteShape(['batch', 'seq', 64], regimes[1])).toEqual([1, regimes[1].seq, 64]);
    expect(regimesOf(matMulCtx([2, 64], [64, 8], [2, 8])).map((r) => r.name)).toEqual(['static']);
  });
});

describe('machine fingerprint', () => {
  it('names the target, CPU, cores and engine', () => {
    const f = wasmMachine();
    expect(f.target).toBe('wasm');
    expect(f.cores).toBe(os.cpus().length);
    const key = fingerprintKey(f);
    for (const part of ['wasm/simd128', f.cpu, process.version]) expect(key).toContain(part);
    expect(fingerprintKey(machineFingerprint('webgpu', 'none'))).not.toBe(key);
  });
});

function entry(knobs: Record<string, number>): TuningEntry {
  return {
    op: 'MatMul', knobs, defaultKnobs: { x: 1, y: 8 }, figures: [{ regime: 'static', seq: 1, defaultMs: 2, tunedMs: 1 }],
    measured: 4, spaceSize: 4, mode: 'default', tunedAt: '2026-01-01T00:00:00.000Z',
  };
}

describe('tuning database', () => {
  const machine = wasmMachine();
  const other: MachineFingerprint = { ...machine, cores: machine.cores + 1 };

  it('round-trips through its file, per machine, written atomically', () => {
    const file = path.join(root, 'nested', 'db.json');
    const db = TuningDb.open(file);
    expect(db.get(machine, 'sig')).toBeUndefined();
    db.set(machine, 'sig', entry({ x: 2, y: 4 }));
    db.save();
    expect(fs.readdirSync(path.dirname(file))).toEqual(['db.json']);
    const json = JSON.parse(fs.readFileSync(file, 'utf8'));
    expect(json.version).toBe(TUNING_DB_VERSION);
    const again = TuningDb.open(file);
    expect(again.get(machine, 'sig')).toEqual(entry({ x: 2, y: 4 }));
    expect(again.get(other, 'sig')).toBeUndefined();
    expect(again.problem).toBeUndefined();
  });

  for (const [what, text] of [['corrupt JSON', '{"format": "llmcc-tuning", "vers'], ['another version', '{"format":"llmcc-tuning","version":99,"machines":{}}'],
    ['a malformed entry', '{"format":"llmcc-tuning","version":1,"machines":{"m":{"fingerprint":{},"ops":{"s":{"op":1}}}}}']] as const) {
    it(`warns once and starts fresh on ${what}`, () => {
      const file = path.join(root, `bad-${what.replace(/\W/g, '')}.json`);
      fs.writeFileSync(file, text);
      const warnings: string[] = [];
      const db = TuningDb.open(file, (line) => warnings.push(line));
      expect(warnings).toHaveLength(1);
      expect(warnings[0]).toContain(file);
      expect(db.problem).toBeDefined();
      expect(db.entries(machine)).toEqual([]);
      db.set(machine, 'sig', entry({ x: 1, y: 8 }));
      db.save();
      expect(TuningDb.open(file, (line) => warnings.push(line)).get(machine, 'sig')?.knobs).toEqual({ x: 1, y: 8 });
      expect(warnings).toHaveLength(1);
    });
  }

  it('lives at --tuning-db, else $LLMCC_TUNING_DB, else the user cache folder', () => {
    const saved = { db: process.env.LLMCC_TUNING_DB, xdg: process.env.XDG_CACHE_HOME };
    try {
      process.env.LLMCC_TUNING_DB = '/tmp/env.json';
      expect(tuningDbPath('/tmp/flag.json')).toBe('/tmp/flag.json');
      expect(tuningDbPath()).toBe('/tmp/env.json');
      delete process.env.LLMCC_TUNING_DB;
      process.env.XDG_CACHE_HOME = '/tmp/xdg';
      expect(tuningDbPath()).toBe(path.join('/tmp/xdg', 'llmcc', 'tuning.json'));
      delete process.env.XDG_CACHE_HOME;
      expect(tuningDbPath()).toBe(path.join(os.homedir(), '.cache', 'llmcc', 'tuning.json'));
    } finally {
      for (const [key, value] of [['LLMCC_TUNING_DB', saved.db], ['XDG_CACHE_HOME', saved.xdg]] as const) {
        if (value === undefined) delete process.env[key];
        else process.env[key] = value;
      }
    }
  });
});

describe('search', () => {
  it('keeps the default unless a candidate is faster beyond noise and no slower in any regime', () => {
    expect(chooseCandidate([[1, 1], [0.99, 0.99]])).toBe(0);
    expect(chooseCandidate([[1, 1], [0.8, 0.9], [0.7, 0.95]])).toBe(2);
    // Much faster at decode but slower at prefill: not taken.
    expect(chooseCandidate([[1, 1], [0.3, 1.2]])).toBe(0);
  });

  it('ranks the default first, then by the cost model, within the candidate limit', () => {
    const ctx = matMulCtx(['batch', 'seq', 512], [512, 512], ['batch', 'seq', 512]);
    const op: TunableOp = { signature: 's', def: matMulKernel, ctx, space: matMulKernel.tuningSpace!(ctx), nodes: 1 };
    const ranked = rankCandidates(op, 6, 'x64');
    expect(ranked).toHaveLength(6);
    expect(ranked[0]).toEqual(defaultKnobs(op.space));
    expect(rankCandidates(op, Infinity, 'x64')).toHaveLength(enumerateSpace(op.space).length);
    // The model charges register spills: a 6 x 4 tile (24 accumulators) costs more than 4 x 2.
    const shapes = { inputs: [[1, 16, 512], [512, 512]], outputs: [[1, 16, 512]] };
    const cost = (rows: number, vecs: number) => wasmKernelCost(matMulKernel, ctx, shapes, { rows, vecs, row_vecs: 2, k_unroll: 1 }, 'x64')!;
    expect(cost(6, 4)).toBeGreaterThan(cost(4, 2));
  });

  function fakeOps(count: number): TunableOp[] {
    return Array.from({ length: count }, (_, i) => {
      const ctx = matMulCtx([1, 64 + 16 * i], [64 + 16 * i, 64], [1, 64], `mm${i}`);
      return { signature: `sig${i}`, def: matMulKernel, ctx, space: matMulKernel.tuningSpace!(ctx), nodes: 1 };
    });
  }

  it('stops searching at the deadline, measures at most maxCandidates per op, and reuses hits', async () => {
    let clock = 0;
    const requests: MeasureRequest[] = [];
    // Each search "takes" 3 s on the fake clock; the candidate at index 1 is always fastest.
    const measure = async (request: MeasureRequest) => {
      requests.push(request);
      clock += 3000;
      return request.candidates.map((_, c) => request.regimes.map(() => (c === 1 ? 0.5 : 1)));
    };
    const budget: TuneBudget = { ...DEFAULT_BUDGET, totalMs: 8000 };
    const db = TuningDb.empty(path.join(root, 'unused.json'));
    const machine = wasmMachine();
    const report = await tuneOps(fakeOps(5), { db, machine, budget, measure, now: () => clock });
    // Searches start at t = 0, 3 and 6 s; at 9 s the deadline has passed.
    expect(report.ops.map((o) => o.status)).toEqual(['tuned', 'tuned', 'tuned', 'skipped', 'skipped']);
    expect(requests.every((r) => r.candidates.length <= DEFAULT_BUDGET.maxCandidates)).toBe(true);
    expect(report.measurements).toBe(requests.reduce((n, r) => n + r.candidates.length * r.regimes.length, 0));
    const tuned = report.ops.filter((o) => o.status === 'tuned');
    for (const o of tuned) expect(db.get(machine, o.signature)?.knobs).toEqual(requests[0].candidates[1]);
    for (const o of report.ops.filter((x) => x.status === 'skipped')) expect(db.get(machine, o.signature)).toBeUndefined();

    // A second run: hits are not measured, the rest continue.
    requests.length = 0;
    clock = 0;
    const second = await tuneOps(fakeOps(5), { db, machine, budget, measure, now: () => clock });
    expect(second.ops.filter((o) => o.status === 'hit')).toHaveLength(3);
    expect(second.ops.filter((o) => o.status === 'tuned')).toHaveLength(2);
    expect(requests).toHaveLength(2);

    // Even with no time at all, every tune searches one op (repeated tunes always finish).
    const none = await tuneOps(fakeOps(2), { db: TuningDb.empty(path.join(root, 'x.json')), machine, budget: { ...budget, totalMs: 0 }, measure, now: () => clock });
    expect(none.ops.map((o) => o.status)).toEqual(['tuned', 'skipped']);
  });

  it('has a default budget under the 10 s cold-tuning limit and an exhaustive mode that measures everything', async () => {
    expect(DEFAULT_BUDGET.totalMs).toBeLessThan(COLD_TUNE_LIMIT_MS);
    expect(Number.isFinite(DEFAULT_BUDGET.maxCandidates)).toBe(true);
    expect(budgetFor(undefined)).toBe(DEFAULT_BUDGET);
    expect(budgetFor('exhaustive')).toBe(EXHAUSTIVE_BUDGET);
    expect(() => budgetFor('fast')).toThrow(/default.*exhaustive/);
    let t = 100;
    const deadline = new Deadline(DEFAULT_BUDGET, () => t);
    expect(deadline.open()).toBe(true);
    t += DEFAULT_BUDGET.totalMs;
    expect(deadline.open()).toBe(false);

    const requests: MeasureRequest[] = [];
    let clock = 0;
    const measure = async (request: MeasureRequest) => {
      requests.push(request);
      clock += 60_000;
      return request.candidates.map(() => request.regimes.map(() => 1));
    };
    const db = TuningDb.empty(path.join(root, 'unused.json'));
    const report = await tuneOps(fakeOps(2), { db, machine: wasmMachine(), budget: EXHAUSTIVE_BUDGET, measure, now: () => clock });
    expect(report.ops.map((o) => o.status)).toEqual(['tuned', 'tuned']);
    const everything = enumerateSpace(fakeOps(1)[0].space).length;
    expect(requests.map((r) => r.candidates.length)).toEqual([everything, everything]);
  });
});
