import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { LlmccError } from '../ir/errors.js';
import { compareTensors } from '../src/compare.js';
import { encodeBundle } from '../src/bundle/format.js';
import { loadModel } from '../src/onnx/load.js';
import { load } from '../src/runtime/index.js';
import { bindInputs, readTestDataSet } from '../src/testdata.js';
import { UNSUPPORTED_PREFIX, compileWasm } from '../targets/wasm/compile.js';
import { MODELS_DIR, dataSets, modelDirs } from './helpers/paths.js';

/** The issue's bar: fp32 outputs within 1e-4, fp16 within 1e-2 of the reference outputs. */
function toleranceFor(dtype: string): number {
  return dtype === 'f16' || dtype === 'bf16' ? 1e-2 : 1e-4;
}

describe('shared models compile to wasm bundles, load and match their reference outputs', () => {
  for (const dir of modelDirs()) {
    const name = path.relative(MODELS_DIR, dir);
    it(name, async () => {
      const model = await loadModel(path.join(dir, 'model.onnx'));
      let bundle: Uint8Array;
      try {
        bundle = await encodeBundle(await compileWasm(model));
      } catch (error) {
        // Name exactly which ops (and nodes) are missing on wasm.
        if (error instanceof LlmccError && error.message.startsWith(UNSUPPORTED_PREFIX)) expect.fail(`${name}: ${error.message}`);
        throw error;
      }
      const session = await load(bundle);
      const mismatches: string[] = [];
      for (const set of dataSets(dir)) {
        const data = readTestDataSet(set);
        const outputs = await session.run(bindInputs(model.graph, data));
        data.outputs.forEach(({ tensor: expected }, k) => {
          const outName = model.graph.outputs[k].name;
          const actual = outputs.get(outName);
          const atol = toleranceFor(expected.dtype);
          const result = actual ? compareTensors(actual, expected, { atol, rtol: 0 }) : undefined;
          if (!result?.ok) {
            mismatches.push(`${path.basename(set)} output ${k} '${outName}': ${result ? result.reason ?? `max abs ${result.maxAbs.toExponential(3)} > ${atol}` : 'not produced'}`);
          }
        });
      }
      expect(mismatches).toEqual([]);
    }, 300_000);
  }
});
