/**
 * Seed models for the fuzzer and the private working folders they are fuzzed in. Each
 * working folder is a copy of the model folder plus hostile neighbours that mutated
 * external-data records point at: a file one level up, symlinks leaving the folder, a
 * subfolder. Whatever the importer wrongly accepted would then really be readable.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { type TestDataSet, readTestDataSet } from '../testdata.js';
import type { SeedModel } from './case.js';
import type { FeedInfo } from './mutate.js';

export interface SeedSpec {
  /** Name relative to the shared folder, e.g. `models/matmulnbits/…` or `conformance/onnx-node/test_if`. */
  name: string;
  /** Relative share of the cases this seed gets (heavier models get less). */
  weight: number;
}

/** Small, varied seeds: three pipeline graphs, MatMulNBits, GQA, external data, a Loop subgraph. */
export const QUICK_SEEDS: SeedSpec[] = [
  { name: 'models/genai-pipeline-model-tiny/embeds', weight: 2 },
  { name: 'models/genai-pipeline-model-tiny/transformer', weight: 3 },
  { name: 'models/genai-pipeline-model-tiny/lm_head', weight: 2 },
  { name: 'models/matmulnbits/matmulnbits_case2_asym_N16_initializers', weight: 2 },
  { name: 'models/matmulnbits/matmulnbits_case0_sym_N8_inputs', weight: 1 },
  { name: 'models/genai-webgpu-tiny-gqa-fp16', weight: 2 },
  { name: 'models/genai-tiny-random-llama-fp16', weight: 1 },
  { name: 'conformance/onnx-node/test_range_int32_type_negative_delta_expanded', weight: 1 },
  { name: 'conformance/onnx-node/test_top_k', weight: 1 },
  { name: 'conformance/onnx-node/test_range_float_type_positive_delta_expanded', weight: 1 },
  { name: 'conformance/onnx-node/test_expand_dim_changed', weight: 1 },
  { name: 'conformance/onnx-node/test_reshape_negative_extended_dims', weight: 1 },
  { name: 'conformance/onnx-node/test_constantofshape_int_zeros', weight: 1 },
  { name: 'conformance/onnx-node/test_slice_neg_steps', weight: 1 },
  { name: 'conformance/onnx-node/test_gather_elements_negative_indices', weight: 1 },
];

/** Every shared model plus more conformance graphs: the long run. */
export function allSeeds(shared: string): SeedSpec[] {
  const seeds: SeedSpec[] = [];
  const walk = (dir: string): void => {
    if (fs.existsSync(path.join(dir, 'model.onnx'))) {
      const size = fs.statSync(path.join(dir, 'model.onnx')).size;
      seeds.push({ name: path.relative(shared, dir), weight: size > 200_000 ? 1 : 2 });
    }
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      if (entry.isDirectory() && !entry.name.startsWith('test_data_set')) walk(path.join(dir, entry.name));
    }
  };
  walk(path.join(shared, 'models'));
  const extra = [
    'test_range_float16_type_positive_delta_expanded', 'test_attention_4d_gqa', 'test_layer_normalization_4d_axis0', 'test_rotary_embedding',
    'test_split_variable_parts_2d_opset18', 'test_top_k_uint64',
    'test_cast_FLOAT_to_FLOAT16', 'test_dequantizelinear', 'test_einsum_batch_matmul',
    'test_tile', 'test_transpose_all_permutations_0', 'test_softmax_axis_0_expanded', 'test_where_example',
  ];
  for (const spec of QUICK_SEEDS) if (spec.name.startsWith('conformance/')) seeds.push(spec);
  for (const test of extra) {
    const name = `conformance/onnx-node/${test}`;
    if (fs.existsSync(path.join(shared, name, 'model.onnx'))) seeds.push({ name, weight: 1 });
  }
  return seeds;
}

/** The seed list by its command-line name. */
export function seedsByName(which: string, shared: string): SeedSpec[] {
  if (which === 'quick') return QUICK_SEEDS;
  if (which === 'all') return allSeeds(shared);
  return which.split(',').map((name) => ({ name, weight: 1 }));
}

/** Copies a seed's folder into `workDir` with its hostile neighbours and loads it. */
export function prepareSeed(shared: string, spec: SeedSpec, workDir: string): SeedModel {
  const source = path.join(shared, spec.name);
  const dir = path.join(workDir, 'model');
  fs.mkdirSync(path.join(dir, 'sub'), { recursive: true });
  for (const entry of fs.readdirSync(source, { withFileTypes: true })) {
    if (entry.isFile()) fs.copyFileSync(path.join(source, entry.name), path.join(dir, entry.name));
  }
  // Writable copies: the shared files are read-only.
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) if (entry.isFile()) fs.chmodSync(path.join(dir, entry.name), 0o644);
  fs.writeFileSync(path.join(workDir, 'outside.bin'), new Uint8Array(1 << 18).fill(0x3f));
  fs.writeFileSync(path.join(dir, 'inner.bin'), new Uint8Array(1 << 18).fill(0x3c));
  const link = (target: string, name: string): void => {
    const at = path.join(dir, name);
    if (!fs.existsSync(at)) fs.symlinkSync(target, at);
  };
  link('../outside.bin', 'escape-link.bin');
  link('/etc/hostname', 'escape-abs-link.bin');
  link('inner.bin', 'inner-link.bin');
  const sets = fs.readdirSync(source).filter((d) => d.startsWith('test_data_set_')).sort();
  const data: TestDataSet | undefined = sets.length ? readTestDataSet(path.join(source, sets[0])) : undefined;
  return {
    name: spec.name,
    dir,
    bytes: new Uint8Array(fs.readFileSync(path.join(dir, 'model.onnx'))),
    ...(data ? { data } : {}),
  };
}

/** The seed's test inputs as the mutator sees them. */
export function feedInfo(data: TestDataSet | undefined): FeedInfo[] {
  return (data?.inputs ?? []).map(({ tensor }) => ({ dtype: tensor.dtype, size: tensor.shape.reduce((a, b) => a * b, 1) }));
}
