/**
 * Every shared model (../shared/models) on the neon target: each test data set is compiled to
 * a C program specialised on its inputs; all of them go into one project, built with -Werror
 * and run once per mode — aarch64 under qemu -cpu max (+dotprod) and -cpu cortex-a53 (no
 * dotprod), the host through SIMDe, and the host with AddressSanitizer + UBSan — and every
 * output is compared with the data set's reference output. LLMCC_NEON_QUICK=1 runs only qemu
 * -cpu max, for quick local iterations.
 */
import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { compareTensors } from '../src/compare.js';
import { loadModel } from '../src/onnx/load.js';
import { bindInputs, readTestDataSet } from '../src/testdata.js';
import type { Tensor } from '../ir/tensor.js';
import { compileNeon } from '../targets/neon/compile.js';
import { runNeonCases, type NeonCase } from '../targets/neon/run.js';
import type { NeonMode } from '../targets/neon/toolchain.js';
import { MODELS_DIR, dataSets, modelDirs } from './helpers/paths.js';

/** The issue's bar: fp32 outputs within 1e-4, fp16 within 1e-2 of the reference outputs. */
function toleranceFor(dtype: string): number {
  return dtype === 'f16' || dtype === 'bf16' ? 1e-2 : 1e-4;
}

interface ModelCase extends NeonCase {
  label: string;
  expected: { name: string; tensor: Tensor }[];
}

const cases: ModelCase[] = [];

beforeAll(async () => {
  for (const dir of modelDirs()) {
    const model = await loadModel(path.join(dir, 'model.onnx'));
    for (const set of dataSets(dir)) {
      const data = readTestDataSet(set);
      const feeds = bindInputs(model.graph, data);
      const shapes = new Map([...feeds].map(([name, t]) => [name, [...t.shape]]));
      const program = await compileNeon(model, { shapes, values: feeds });
      cases.push({
        name: `m${cases.length}`,
        label: `${path.relative(MODELS_DIR, dir)}/${path.basename(set)}`,
        program,
        feeds,
        expected: data.outputs.map(({ tensor }, k) => ({ name: model.graph.outputs[k].name, tensor })),
      });
    }
  }
}, 300_000);

describe('shared models on the neon target (one C build and one run per mode)', () => {
  it('compiles every data set of every shared model', () => {
    expect(cases.length).toBeGreaterThanOrEqual(modelDirs().length);
  });

  // Every mode by default (about 2.5 min on 2 cores); only qemu -cpu max with LLMCC_NEON_QUICK=1.
  const modes: NeonMode[] = process.env.LLMCC_NEON_QUICK !== '1' ? ['qemu-max', 'qemu-a53', 'host', 'host-sanitize'] : ['qemu-max'];
  for (const mode of modes) {
    it(`matches every reference output (${mode})`, async () => {
      const { results } = await runNeonCases(cases, mode);
      const mismatches: string[] = [];
      cases.forEach((c, i) => {
        const result = results[i];
        if ('error' in result) {
          mismatches.push(`${c.label}: ${result.error}`);
          return;
        }
        c.expected.forEach(({ name, tensor: expected }, k) => {
          const actual = result.outputs.get(name);
          const atol = toleranceFor(expected.dtype);
          const compared = actual ? compareTensors(actual, expected, { atol, rtol: 0 }) : undefined;
          if (!compared?.ok) {
            mismatches.push(`${c.label} output ${k} '${name}': ${compared ? compared.reason ?? `max abs ${compared.maxAbs.toExponential(3)} > ${atol}` : 'not produced'}`);
          }
        });
      });
      expect(mismatches).toEqual([]);
    }, 600_000);
  }
});
