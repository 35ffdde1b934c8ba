import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { compareTensors } from '../src/compare.js';
import { readTensorFile } from '../src/onnx/tensor-proto.js';
import { llmcc } from './helpers/cli.js';
import { loadModel } from '../src/onnx/load.js';
import { runLoweringPipeline } from '../passes/pipeline.js';
import { printModel } from '../ir/text/print.js';
import { bindInputs, readTestDataSet } from '../src/testdata.js';
import { getBackend } from '../targets/registry.js';
import { MODELS_DIR } from './helpers/paths.js';

/**
 * `--sparsity 2:4` end to end on a small real decoder: the 4-bit 2:4 model lowered to the
 * sparse LUT ops runs on wasm through the CLI (fast sparse LUT kernel, 16-row tiles) and agrees
 * with the reference interpreter on the same lowered model; the printed IR shows the sparse
 * ops and the sparsity on the weight types.
 */

const DECODER = path.join(MODELS_DIR, 'genai-static-scatter-bias-decoder');
const temp = fs.mkdtempSync(path.join(os.tmpdir(), 'llmcc-sparse-'));
afterAll(() => fs.rmSync(temp, { recursive: true, force: true }));

const QUANT = { bits: 4 as const, groupSize: 32, symmetric: true, ternary: false, keep: [] };

describe('llmcc run --lower --bits 4 --sparsity 2:4', () => {
  it('prunes every projection to 50% zeros; wasm (CLI) gives the reference interpreter\'s outputs', async () => {
    const out = path.join(temp, 'wasm');
    const r = llmcc('run', path.join(DECODER, 'model.onnx'), '--data', path.join(DECODER, 'test_data_set_0'), '--lower',
      '--bits', '4', '--sparsity', '2:4', '--target', 'wasm', '--stats', '--out', out);
    // Exit 1 is the comparison with the dense fp32 outputs (half the weights are gone); 2+ is a failure.
    expect(r.stderr).toBe('');
    expect(r.code === 0 || r.code === 1, r.stdout).toBe(true);
    expect(r.stdout).toMatch(/pass sparsify: changed\s+layers_sparse=15 layers_pruned=15 .*sparsity_permille=500/);
    expect(r.stdout).toMatch(/pass sparse-lut-lower: changed\s+lowered=15/);

    const model = await loadModel(path.join(DECODER, 'model.onnx'));
    runLoweringPipeline(model, { quantize: QUANT, sparsity: { n: 2, m: 4 }, lut: { rowsPerTile: 16, rowsPerTileFallback: true } });
    const feeds = bindInputs(model.graph, readTestDataSet(path.join(DECODER, 'test_data_set_0')));
    const reference = await (await getBackend('ref').prepare(model)).run(feeds);
    model.graph.outputs.forEach(({ name }, k) => {
      const want = reference.get(name)!;
      const got = readTensorFile(path.join(out, `output_${k}.pb`)).tensor;
      const scale = want.numbers().reduce((m: number, v: number) => Math.max(m, Math.abs(v)), 0);
      const result = compareTensors(got, want, { atol: 1e-4 * scale, rtol: 0 });
      expect(result.ok, `${name}: ${result.reason ?? `max abs ${result.maxAbs}`}`).toBe(true);
    });
  });

  it('the lowered IR has the sparse LUT ops and sparsity=2:4 on the weights (what --emit ir prints)', async () => {
    const model = await loadModel(path.join(DECODER, 'model.onnx'));
    runLoweringPipeline(model, { quantize: { ...QUANT, bits: 2 }, sparsity: { n: 2, m: 4 }, lut: {} });
    const text = printModel(model);
    expect(text.match(/llmcc\.SparseLutPrecompute\(/g)?.length).toBe(9);
    expect(text.match(/llmcc\.SparseLutMatMul\(/g)?.length).toBe(15);
    expect(text).not.toMatch(/llmcc\.(LutMatMul|QuantMatMul|SparseQuantMatMul)\(/);
    expect(text).toMatch(/sparsity=2:4/);
  });
});
