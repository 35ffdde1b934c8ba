/**
 * The int8-activation dot path on the neon target, on a real decoder: the shared
 * genai-static-scatter-bias-decoder lowered with `--matmul dot` at 4, 2 and 3 bits (QuantizeActQ8 +
 * QuantMatMulQ8 for every quantized layer), compiled once per width, run under qemu -cpu max
 * (+dotprod: SDOT) and -cpu cortex-a53 (armv8-a: the widening fallback), and compared with
 * the reference interpreter on the same lowered graph. The +dotprod binary's dot kernel is
 * disassembled to show SDOT is really executed code, and the armv8-a one has none.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { compareTensors } from '../src/compare.js';
import { loadModel } from '../src/onnx/load.js';
import { bindInputs, readTestDataSet } from '../src/testdata.js';
import { interpret } from '../ir/interpreter.js';
import type { Tensor } from '../ir/tensor.js';
import { runLoweringPipeline } from '../passes/pipeline.js';
import { loweringFromFlags } from '../src/cli/lowering-options.js';
import { compileNeon } from '../targets/neon/compile.js';
import { MAKE_TARGETS, projectFiles } from '../targets/neon/project.js';
import { runNeonCases, type NeonCase } from '../targets/neon/run.js';
import { runProcess, type NeonMode } from '../targets/neon/toolchain.js';
import { MODELS_DIR } from './helpers/paths.js';

const MODEL_DIR = path.join(MODELS_DIR, 'genai-static-scatter-bias-decoder');
// 3-bit adds the two-segment unpack with accumulators of several powers of two.
const WIDTHS = ['4', '2', '3'];

interface DotCase extends NeonCase {
  expected: Map<string, Tensor>;
  dotLayers: number;
}

const cases: DotCase[] = [];

beforeAll(async () => {
  const data = readTestDataSet(path.join(MODEL_DIR, 'test_data_set_0'));
  for (const bits of WIDTHS) {
    const model = await loadModel(path.join(MODEL_DIR, 'model.onnx'));
    runLoweringPipeline(model, loweringFromFlags({ bits, group: '32', table: 'i8', g: '4', fuse: true, matmul: 'dot' }, 'wasm'));
    const feeds = bindInputs(model.graph, data);
    const expected = interpret(model.graph, feeds, { opsets: model.opsets });
    const shapes = new Map([...feeds].map(([name, t]) => [name, [...t.shape]]));
    const program = await compileNeon(model, { shapes, values: feeds });
    const dotLayers = model.graph.nodes.filter((n) => n.op === 'QuantMatMulQ8').length;
    cases.push({ name: `dot${bits}`, program, feeds, expected, dotLayers });
  }
}, 300_000);

async function objdump(file: string): Promise<string> {
  const dump = await runProcess('aarch64-linux-gnu-objdump', ['-d', '--no-show-raw-insn', file], { timeoutMs: 120_000 });
  expect(dump.code, dump.stderr).toBe(0);
  return dump.stdout;
}

/**
 * The dot kernel of a project's model.c compiled alone for `march` (the build's flags, plus
 * -fno-inline so the static kernel keeps its own symbol) and disassembled.
 */
async function dotKernelAsm(dir: string, march: string): Promise<string> {
  const modelC = fs.readFileSync(path.join(dir, 'model.c'), 'utf8');
  const kernel = /\bvoid (\w+)\([^)]*\bv_packed\b/.exec(modelC)?.[1];
  expect(kernel, 'the QuantMatMulQ8 kernel in model.c').toBeDefined();
  const object = path.join(dir, `dot-${march}.o`);
  const cc = await runProcess('aarch64-linux-gnu-gcc', ['-std=c99', '-O2', `-march=${march}`, '-fno-ipa-icf', '-fno-inline-functions-called-once', '-I', dir, '-c', path.join(dir, 'model.c'), '-o', object], { timeoutMs: 300_000 });
  expect(cc.code, cc.stderr).toBe(0);
  const asm = await objdump(object);
  // GCC may clone it with constants propagated (name.constprop.N).
  const start = asm.search(new RegExp(`<${kernel}(\\.[a-z]+\\.\\d+)?>:`));
  expect(start, `${kernel} in the disassembly`).toBeGreaterThan(-1);
  const end = asm.indexOf('\n\n', start);
  return asm.slice(start, end < 0 ? undefined : end);
}

describe('--matmul dot on the neon target (vdotq_s32)', () => {
  it('lowers every quantized layer of the decoder to the dot kernels and prints them with the dot op', () => {
    for (const c of cases) {
      expect(c.dotLayers, c.name).toBeGreaterThan(0);
      const modelC = projectFiles([{ name: c.name, program: c.program }]).get('model.c') as string;
      expect(modelC).toMatch(/llmcc_dot_lane_s8\(/);
    }
  });

  for (const mode of ['qemu-max', 'qemu-a53'] as NeonMode[]) {
    it(`matches the reference interpreter on the lowered graph (${mode}), with SDOT ${mode === 'qemu-max' ? 'in' : 'absent from'} the dot kernel`, async () => {
      const { results, dir } = await runNeonCases(cases, mode, { keep: true });
      try {
        const mismatches: string[] = [];
        cases.forEach((c, i) => {
          const result = results[i];
          if ('error' in result) {
            mismatches.push(`${c.name}: ${result.error}`);
            return;
          }
          for (const [name, want] of c.expected) {
            if (!c.program.outputs.some((o) => o.name === name)) continue;
            const got = result.outputs.get(name);
            const compared = got ? compareTensors(got, want, { atol: 1e-4, rtol: 1e-4 }) : undefined;
            if (!compared?.ok) mismatches.push(`${c.name} '${name}': ${compared ? compared.reason ?? `max abs ${compared.maxAbs.toExponential(3)}` : 'not produced'}`);
          }
        });
        expect(mismatches).toEqual([]);
        // SDOT in the binary that ran only with +dotprod, and inside the dot kernel itself.
        const binarySdots = (await objdump(path.join(dir, MAKE_TARGETS[mode]))).match(/\bsdot\b/g)?.length ?? 0;
        const asm = await dotKernelAsm(dir, mode === 'qemu-max' ? 'armv8.2-a+dotprod' : 'armv8-a');
        const kernelSdots = asm.match(/\bsdot\b/g)?.length ?? 0;
        if (mode === 'qemu-max') {
          expect(binarySdots).toBeGreaterThan(0);
          expect(kernelSdots).toBeGreaterThan(0);
        } else {
          expect(binarySdots).toBe(0);
          expect(kernelSdots).toBe(0);
          expect(asm).toMatch(/\bsmull2?\b/);
        }
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    }, 600_000);
  }
});
