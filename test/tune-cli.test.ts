import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Tensor } from '../ir/tensor.js';
import { decodeBundle } from '../src/bundle/format.js';
import { loadModel } from '../src/onnx/load.js';
import { load } from '../src/runtime/index.js';
import { TuningDb } from '../src/tune/db.js';
import { wasmMachine } from '../src/tune/fingerprint.js';
import { referenceBackend } from '../targets/ref/backend.js';
import { llmcc } from './helpers/cli.js';
import { buildModel } from './helpers/onnx-builder.js';
import { randomTensor, rng } from './helpers/lut-graph.js';

/**
 * `llmcc tune` then `llmcc compile`: compile reuses the database (no measurement), builds the
 * stored knobs into the kernels (recorded in the bundle manifest), and the bundle still
 * computes the model. Every run uses a temporary database, never the user's cache.
 */

let root: string;
let modelPath: string;
const savedEnv = process.env.LLMCC_TUNING_DB;

/** Two projections with an activation between (symbolic batch and sequence, like a decoder's MLP). */
function mlpModel(): Uint8Array {
  const random = rng(9);
  return buildModel({
    inputs: [{ name: 'x', dtype: 'f32', shape: ['batch', 'seq', 40] }],
    outputs: [{ name: 'y', dtype: 'f32', shape: ['batch', 'seq', 24] }],
    initializers: { w_up: randomTensor('f32', [40, 56], random, 0.5), w_down: randomTensor('f32', [56, 24], random, 0.5) },
    nodes: [
      { op: 'MatMul', inputs: ['x', 'w_up'], outputs: ['h'] },
      { op: 'Tanh', inputs: ['h'], outputs: ['t'] },
      { op: 'MatMul', inputs: ['t', 'w_down'], outputs: ['y'] },
    ],
  });
}

beforeAll(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'llmcc-tune-cli-'));
  // Anything that forgets --tuning-db still stays out of the user's cache.
  process.env.LLMCC_TUNING_DB = path.join(root, 'env-db.json');
  modelPath = path.join(root, 'mlp.onnx');
  fs.writeFileSync(modelPath, mlpModel());
});
afterAll(() => {
  if (savedEnv === undefined) delete process.env.LLMCC_TUNING_DB;
  else process.env.LLMCC_TUNING_DB = savedEnv;
  fs.rmSync(root, { recursive: true, force: true });
});

async function checkBundle(bundle: string): Promise<Record<string, number>[]> {
  const decoded = await decodeBundle(new Uint8Array(fs.readFileSync(bundle)), { target: 'wasm' });
  const program = decoded.manifest.program;
  const matmuls = program.steps.filter((s) => s.kind === 'kernel' && program.nodes[s.node].op === 'MatMul');
  // The bundle still computes the model.
  const x = randomTensor('f32', [1, 3, 40], rng(4));
  const session = await load(bundle);
  const got = (await session.run({ x })).get('y')!;
  const reference = await referenceBackend.prepare(await loadModel(modelPath));
  const want = (await reference.run(new Map([['x', x]]))).get('y')! as Tensor;
  const g = got.numbers(), w = want.numbers();
  for (let i = 0; i < w.length; i++) expect(Math.abs(g[i] - w[i])).toBeLessThanOrEqual(1e-4);
  return matmuls.map((s) => (s.kind === 'kernel' ? s.tuning ?? {} : {}));
}

describe('llmcc tune → compile', () => {
  it('compile reuses the tuned knobs without measuring, and builds them into the kernels', async () => {
    const db = path.join(root, 'db.json');
    // A machine too loaded for the deadline tunes the rest on the next run (each run tunes one at least).
    let tunedCount = 0;
    for (let run = 0; run < 2 && tunedCount < 2; run++) {
      const tuned = llmcc('tune', modelPath, '--target', 'wasm', '--tuning-db', db);
      expect(tuned.stderr).not.toMatch(/error/);
      expect(tuned.code).toBe(0);
      const counts = /2 op signatures \(2 nodes\): (\d) tuned, (\d) reused/.exec(tuned.stdout);
      expect(counts, tuned.stdout).not.toBeNull();
      expect(Number(counts![1])).toBeGreaterThanOrEqual(1);
      expect(Number(counts![2])).toBe(tunedCount);
      tunedCount += Number(counts![1]);
    }
    const machine = wasmMachine();
    const entries = TuningDb.open(db).entries(machine);
    expect(entries).toHaveLength(2);
    expect(fs.existsSync(process.env.LLMCC_TUNING_DB!)).toBe(false);

    // Store non-default knobs, so that the bundle shows they were used (and still computes right).
    const stored = TuningDb.open(db);
    const chosen = [{ rows: 6, vecs: 3, row_vecs: 4, k_unroll: 4 }, { rows: 2, vecs: 1, row_vecs: 6, k_unroll: 2 }];
    entries.forEach(([signature, entry], i) => stored.set(machine, signature, { ...entry, knobs: chosen[i] }));
    stored.save();

    const bundle = path.join(root, 'mlp.llmcc');
    const compiled = llmcc('compile', modelPath, '--target', 'wasm', '-o', bundle, '--tuning-db', db, '--stats');
    expect(compiled.code).toBe(0);
    expect(compiled.stderr).toContain('tuning: 2 tuned kernel nodes from the database, 0 with default knobs; 0 measurements');
    const used = await checkBundle(bundle);
    expect(used).toHaveLength(2);
    expect([...used].sort((a, b) => a.rows - b.rows)).toEqual([...chosen].sort((a, b) => a.rows - b.rows));

  });

  it('compile --tune over a corrupt database warns, tunes afresh and uses the result', async () => {
    const db = path.join(root, 'corrupt.json');
    fs.writeFileSync(db, '{"format": "llmcc-tun');
    const bundle = path.join(root, 'mlp2.llmcc');
    const result = llmcc('compile', modelPath, '--target', 'wasm', '-o', bundle, '--tuning-db', db, '--tune', '--stats');
    expect(result.code).toBe(0);
    expect(result.stderr).toMatch(/warning: tuning database .*corrupt\.json: corrupt JSON/);
    const counts = /tuning: (\d) tuned kernel nodes from the database, (\d) with default knobs; ([1-9]\d*) measurements/.exec(result.stderr);
    expect(counts, result.stderr).not.toBeNull();
    const hits = Number(counts![1]);
    expect(hits).toBeGreaterThanOrEqual(1);
    expect(hits + Number(counts![2])).toBe(2);
    expect(TuningDb.open(db).entries(wasmMachine())).toHaveLength(hits);
    const used = await checkBundle(bundle);
    expect(used.filter((knobs) => Object.keys(knobs).length > 0)).toHaveLength(hits);
  });
});
