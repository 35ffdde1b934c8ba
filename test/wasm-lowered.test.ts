import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Model } from '../ir/graph.js';
import type { Tensor } from '../ir/tensor.js';
import { runLoweringPipeline } from '../passes/pipeline.js';
import { loweringFromFlags, type LoweringFlags } from '../src/cli/lowering-options.js';
import { compareTensors } from '../src/compare.js';
import { loadModel } from '../src/onnx/load.js';
import { sessionFromCompiled } from '../src/runtime/index.js';
import { bindInputs, readTestDataSet } from '../src/testdata.js';
import { getBackend } from '../targets/registry.js';
import { compileWasm } from '../targets/wasm/compile.js';
import { WASM_LUT_LAYOUT } from '../targets/wasm/kernels/lut/index.js';
import { MODELS_DIR, dataSets, modelDirs } from './helpers/paths.js';

/**
 * `--lower` on wasm: the lowered graph (LUT kernels, pre-quantized weights) compiled for wasm
 * matches the reference interpreter running the same lowered graph. The int8 table codes are
 * exact by construction; what differs is f32 accumulation order and the norm statistics
 * (f32 on wasm, f64 in the reference), so outputs agree within 1e-4 of each output's scale.
 */

const RELATIVE_TO_SCALE = 1e-4;

function flags(bits?: string): LoweringFlags {
  return { ...(bits ? { bits } : {}), group: '32', table: 'i8', g: '4', fuse: true };
}

/** `packed`: two plane indices per byte whatever the model's size (the 'auto' threshold at 0). */
async function lowered(dir: string, bits?: string, packed = false): Promise<Model> {
  const model = await loadModel(path.join(dir, 'model.onnx'));
  const options = loweringFromFlags(flags(bits), 'wasm');
  if (packed) options.lut.packAbovePlaneBytes = 0;
  runLoweringPipeline(model, options);
  return model;
}

const perByte = (model: Model): number[] => model.graph.nodes.filter((n) => n.op === 'LutMatMul').map((n) => {
  const a = n.attributes.get('indices_per_byte');
  return a?.kind === 'int' ? a.value : 1;
});

function scaleOf(t: Tensor): number {
  let max = 0;
  for (const v of t.numbers()) max = Math.max(max, Math.abs(v));
  return max;
}

/** Runs every data set on wasm and on the reference; returns the mismatches. */
async function compareWithReference(model: Model, dir: string): Promise<string[]> {
  const reference = await getBackend('ref').prepare(model);
  const wasm = await sessionFromCompiled(await compileWasm(model));
  const mismatches: string[] = [];
  for (const set of dataSets(dir)) {
    const feeds = bindInputs(model.graph, readTestDataSet(set));
    const expected = await reference.run(feeds);
    const actual = await wasm.run(feeds);
    for (const { name } of model.graph.outputs) {
      const want = expected.get(name)!;
      const got = actual.get(name);
      const atol = Math.max(RELATIVE_TO_SCALE * scaleOf(want), 1e-6);
      const result = got ? compareTensors(got, want, { atol, rtol: 0 }) : undefined;
      if (!result?.ok) {
        mismatches.push(`${path.basename(set)} '${name}': ${result ? result.reason ?? `max abs ${result.maxAbs.toExponential(3)} > ${atol.toExponential(3)}` : 'not produced'}`);
      }
    }
  }
  return mismatches;
}

const lutOps = (model: Model): string[] => model.graph.nodes.filter((n) => n.domain === 'llmcc').map((n) => n.op);

describe('--lower on wasm matches the reference on the same lowered graph', () => {
  const decoder = path.join(MODELS_DIR, 'genai-static-scatter-bias-decoder');
  for (const bits of ['4', '2']) {
    it(`static-scatter decoder, --bits ${bits}`, async () => {
      const model = await lowered(decoder, bits);
      const matmuls = model.graph.nodes.filter((n) => n.op === 'LutMatMul');
      expect(matmuls.length).toBeGreaterThan(0);
      // The wasm layout: 16 interleaved rows per tile wherever N allows (the fast kernel).
      for (const node of matmuls) {
        const n = node.attributes.get('N');
        const tile = node.attributes.get('rows_per_tile');
        if (n?.kind === 'int' && n.value % WASM_LUT_LAYOUT.rowsPerTile === 0) expect(tile).toEqual({ kind: 'int', value: 16 });
      }
      // The fused norm precompute without a y output (the "remainder by zero" trap) is covered.
      expect(lutOps(model)).toContain('NormLutPrecompute');
      expect(await compareWithReference(model, decoder)).toEqual([]);
    }, 300_000);
  }

  it('static-scatter decoder, --bits 2, two plane indices per byte (small models keep one)', async () => {
    expect(new Set(perByte(await lowered(decoder, '2')))).toEqual(new Set([1]));
    const model = await lowered(decoder, '2', true);
    expect(new Set(perByte(model))).toEqual(new Set([2]));
    expect(await compareWithReference(model, decoder)).toEqual([]);
  }, 300_000);

  it('weights re-laid at run time, two plane indices per byte', async () => {
    const dir = modelDirs(path.join(MODELS_DIR, 'matmulnbits')).find((d) => d.endsWith('_inputs'))!;
    const model = await lowered(dir, undefined, true);
    const packs = model.graph.nodes.filter((n) => n.op === 'LutPackWeights');
    expect(packs.length).toBeGreaterThan(0);
    expect(packs.every((n) => n.attributes.get('indices_per_byte')?.kind === 'int')).toBe(true);
    expect(new Set(perByte(model))).toEqual(new Set([2]));
    expect(await compareWithReference(model, dir)).toEqual([]);
  }, 300_000);

  for (const dir of modelDirs(path.join(MODELS_DIR, 'matmulnbits'))) {
    const name = path.basename(dir);
    it(`${name} via --lower`, async () => {
      const model = await lowered(dir);
      const ops = lutOps(model);
      expect(ops).toContain('LutMatMul');
      // Weights fed as graph inputs are unpacked and re-laid at run time.
      if (name.endsWith('_inputs')) expect(ops).toEqual(expect.arrayContaining(['UnpackNBits', 'LutPackWeights']));
      expect(await compareWithReference(model, dir)).toEqual([]);
    }, 300_000);
  }
});
