/**
 * The neon compiler's specialisation rules, on small graphs run for real (host build through
 * SIMDe, one build for all cases): a shape computed from an input's value is folded and the
 * value pinned (another value is refused at run time, by the C runtime), integer inputs that
 * feed computations run as kernels, and what would need a host at run time is refused.
 */
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { LlmccError } from '../ir/errors.js';
import type { Model } from '../ir/graph.js';
import { Tensor } from '../ir/tensor.js';
import { compileNeon } from '../targets/neon/compile.js';
import { projectFiles } from '../targets/neon/project.js';
import { runNeonCases } from '../targets/neon/run.js';
import { runLoweringPipeline } from '../passes/pipeline.js';
import { loweringFromFlags } from '../src/cli/lowering-options.js';
import { loadModel } from '../src/onnx/load.js';
import { bindInputs, readTestDataSet } from '../src/testdata.js';
import { model, node, run } from './helpers/lut-graph.js';
import { MODELS_DIR } from './helpers/paths.js';

const reshapeModel = (): Model => model({
  inputs: [{ name: 'x', dtype: 'f32', shape: [2, 3] }, { name: 's', dtype: 'i64', shape: [2] }],
  outputs: [{ name: 'y', dtype: 'f32' }],
  nodes: [node('Reshape', ['x', 's'], ['r'], {}, ''), node('Relu', ['r'], ['y'], {}, '')],
});

/** y = Gather(table, ids + 1): the integer input is computed on, so it runs as kernels. */
const gatherModel = (): Model => model({
  inputs: [{ name: 'ids', dtype: 'i64', shape: [4] }],
  outputs: [{ name: 'y', dtype: 'f32' }],
  nodes: [node('Add', ['ids', 'one'], ['next'], {}, ''), node('Gather', ['table', 'next'], ['y'], {}, '')],
  weights: { one: Tensor.fromNumbers('i64', [], [1]), table: Tensor.fromNumbers('f32', [6, 2], [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]) },
});

const x = Tensor.fromNumbers('f32', [2, 3], [1, -2, 3, -4, 5, -6]);
const feedsOf = (entries: [string, Tensor][]): Map<string, Tensor> => new Map(entries);

describe('neon specialisation', () => {
  it('pins an input whose value gives a shape, runs it, and refuses another value at run time', async () => {
    const s = Tensor.fromNumbers('i64', [2], [3, 2]);
    const feeds = feedsOf([['x', x], ['s', s]]);
    const program = await compileNeon(reshapeModel(), { shapes: new Map([['x', [2, 3]], ['s', [2]]]), values: feeds });
    expect(program.pinned.map((p) => program.inputs[p.input].name)).toEqual(['s']);
    expect(program.outputs[0].shape).toEqual([3, 2]);

    const ids = Tensor.fromNumbers('i64', [4], [0, 4, 2, 3]);
    const gather = await compileNeon(gatherModel(), { shapes: new Map([['ids', [4]]]), values: feedsOf([['ids', ids]]) });
    expect(gather.pinned).toEqual([]);
    expect(gather.launches.map((l) => l.node)).toEqual(['Add_next', 'Gather_y']);

    const other = feedsOf([['x', x], ['s', Tensor.fromNumbers('i64', [2], [6, 1])]]);
    const otherIds = Tensor.fromNumbers('i64', [4], [1, 1, 0, 4]);
    const { results } = await runNeonCases([
      { name: 'pinned', program, feeds },
      { name: 'other', program, feeds: other },
      { name: 'gather', program: gather, feeds: feedsOf([['ids', otherIds]]) },
    ], 'host');
    const want = run(reshapeModel(), { x, s }).get('y')!;
    const got = results[0];
    expect('outputs' in got && Array.from(got.outputs.get('y')!.numbers())).toEqual(Array.from(want.numbers()));
    expect(results[1]).toMatchObject({ error: expect.stringMatching(/input 's' differs from the value/) });
    const gathered = results[2];
    // Compiled with other ids: the program computes on the ids it is given.
    expect('outputs' in gathered && Array.from(gathered.outputs.get('y')!.numbers())).toEqual(Array.from(run(gatherModel(), { ids: otherIds }).get('y')!.numbers()));
  }, 300_000);

  it('refuses a shape from an input value when only shapes are given, naming the node', async () => {
    const error = await compileNeon(reshapeModel(), { shapes: new Map([['x', [2, 3]], ['s', [2]]]) }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(LlmccError);
    expect((error as Error).message).toMatch(/^target neon does not support .*Reshape/);
  });
});

describe('neon kernel knobs', () => {
  it("builds LUT matmuls with the neon target's accumulation (widening adds), not wasm's default (shift)", async () => {
    const dir = path.join(MODELS_DIR, 'genai-static-scatter-bias-decoder');
    const decoder = await loadModel(path.join(dir, 'model.onnx'));
    runLoweringPipeline(decoder, loweringFromFlags({ bits: '2', group: '32', table: 'i8', g: '4', fuse: true, matmul: 'lut' }, 'wasm'));
    const feeds = bindInputs(decoder.graph, readTestDataSet(path.join(dir, 'test_data_set_0')));
    const program = await compileNeon(decoder, { shapes: new Map([...feeds].map(([n, t]) => [n, [...t.shape]])), values: feeds });
    const source = projectFiles([{ name: 'lut', program }]).get('model.c') as string;
    const kernels = source.split(/\n(?=static )/).filter((f) => /^static void \w+_LutMatMul\(/.test(f));
    expect(kernels.length).toBeGreaterThan(0);
    for (const kernel of kernels) {
      expect(kernel).toMatch(/vaddw_u8\(/);
      expect(kernel).not.toMatch(/vsraq_n_/);
    }
  });
});
