import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { compareTensors, defaultTolerance } from '../src/compare.js';
import { loadModel } from '../src/onnx/load.js';
import { bindInputs, readTestDataSet } from '../src/testdata.js';
import { referenceBackend } from '../targets/ref/backend.js';
import { dataSets, MODELS_DIR, modelDirs } from './helpers/paths.js';

// The issue's bar: fp32 within atol 1e-4, fp16 within 1e-2 (defaultTolerance), MatMulNBits exactly.
describe('shared LLM graphs on the reference interpreter', () => {
  for (const dir of modelDirs()) {
    const name = path.relative(MODELS_DIR, dir);
    const exact = name.startsWith('matmulnbits');
    for (const set of dataSets(dir)) {
      it(`${name} ${path.basename(set)}`, async () => {
        const model = await loadModel(path.join(dir, 'model.onnx'));
        const data = readTestDataSet(set);
        const session = await referenceBackend.prepare(model);
        const outputs = await session.run(bindInputs(model.graph, data));
        expect(data.outputs.length).toBeGreaterThan(0);
        data.outputs.forEach(({ tensor: expected }, k) => {
          const output = model.graph.outputs[k];
          const actual = outputs.get(output.name);
          expect(actual, `output ${output.name}`).toBeDefined();
          const tolerance = exact ? { atol: 0, rtol: 0 } : defaultTolerance(expected.dtype);
          const result = compareTensors(actual!, expected, tolerance);
          expect(result.ok, `${output.name}: ${result.reason ?? `max abs ${result.maxAbs}`}`).toBe(true);
        });
      });
    }
  }
});
