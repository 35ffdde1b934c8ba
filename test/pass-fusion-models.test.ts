import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { runFusionPipeline } from '../passes/pipeline.js';
import { compareTensors, defaultTolerance } from '../src/compare.js';
import { loadModel } from '../src/onnx/load.js';
import { bindInputs, readTestDataSet } from '../src/testdata.js';
import { referenceBackend } from '../targets/ref/backend.js';
import { compileWasm } from '../targets/wasm/compile.js';
import { sessionFromCompiled } from '../src/runtime/index.js';
import { dataSets, MODELS_DIR, modelDirs } from './helpers/paths.js';

/**
 * The graph fusions over every real exporter graph in ../shared/models: whatever fires, the
 * fused graph still matches the upstream reference outputs at the models' own bar (fp32 1e-4,
 * fp16 1e-2, MatMulNBits exactly), on the reference and, where a rule changed ops, on wasm.
 * What fired per model is printed.
 */
describe('fusions on the shared LLM graphs', () => {
  for (const dir of modelDirs()) {
    const name = path.relative(MODELS_DIR, dir);
    const exact = name.startsWith('matmulnbits');
    it(name, async () => {
      const model = await loadModel(path.join(dir, 'model.onnx'));
      const records = runFusionPipeline(model);
      const fired = records.flatMap((r) => Object.entries(r.result.stats).filter(([k, v]) => v && k !== 'deadNodesRemoved').map(([k, v]) => `${k}=${v}`));
      console.log(`fusion ${name}: ${fired.join(' ') || 'nothing fired'}`);
      // The reference always; wasm too where an op-changing rule fired (what compile --target wasm
      // builds; merged projections alone are MatMul + Split, covered by the decoder fixtures).
      const sessions = [['ref', await referenceBackend.prepare(model)] as const];
      if (fired.some((f) => !f.startsWith('merge-parallel-matmuls'))) sessions.push(['wasm', await sessionFromCompiled(await compileWasm(model))] as const);
      for (const [target, session] of sessions) {
        for (const set of dataSets(dir)) {
          const data = readTestDataSet(set);
          const outputs = await session.run(bindInputs(model.graph, data));
          data.outputs.forEach(({ tensor: expected }, k) => {
            const output = model.graph.outputs[k];
            const tolerance = exact ? { atol: 0, rtol: 0 } : defaultTolerance(expected.dtype);
            const result = compareTensors(outputs.get(output.name)!, expected, tolerance);
            expect(result.ok, `${target} ${path.basename(set)} ${output.name}: ${result.reason ?? `max abs ${result.maxAbs}`}`).toBe(true);
          });
        }
      }
    }, 120_000);
  }
});
