import type { Model, Node } from '../../ir/graph.js';
import { Tensor } from '../../ir/tensor.js';
import { verifyModel } from '../../ir/verify.js';
import { freshName, removeDeadCode, weightFromTensor } from '../graph-edit.js';
import type { Pass, PassResult } from '../pass.js';
import { SchemeResolver, findLayers, type QuantSchemeOptions } from '../quant/layers.js';
import { indexBytesPerRow } from './pack.js';
import { keptPerRow, type NMPattern } from './pattern.js';
import { quantizeSparse, type SparseQuantizedWeight } from './quantize.js';

/**
 * sparsify (`--sparsity N:M` with `--bits`): rewrites each MatMul / Gemm with a constant float
 * weight into llmcc.SparseQuantMatMul. Per output row and group of M consecutive k the N
 * largest magnitudes are kept (a weight that already has the pattern is kept exactly:
 * counted as `layers_detected`), the kept values quantized with the layer's scheme (the same
 * resolver as quantize-weights: --keep, --bits-map, --group, --asym) and their positions
 * packed beside them (passes/sparsity/quantize.ts). Runs before quantize-weights, which then
 * quantizes densely whatever this pass left (K or group size not a multiple of M, 8-bit
 * layers, kept layers stay float).
 *
 * Stats: achieved sparsity as `weights_total` / `weights_nonzero_before` / `weights_kept`
 * and `sparsity_permille` (zeros per thousand weights after the pass).
 */
export interface SparsifyOptions {
  pattern: NMPattern;
  quantize: QuantSchemeOptions;
}

function bump(stats: Record<string, number>, key: string, by = 1): void {
  stats[key] = (stats[key] ?? 0) + by;
}

interface Emitted {
  values: string;
  indices: string;
  scales: string;
  zeroPoints: string;
}

export const sparsifyPass: Pass<SparsifyOptions> = {
  name: 'sparsify',
  run(model: Model, options: SparsifyOptions): PassResult {
    const { pattern } = options;
    const graph = model.graph;
    const resolver = new SchemeResolver(options.quantize);
    const { layers } = findLayers(graph);
    const stats: Record<string, number> = {
      layers_sparse: 0, layers_detected: 0, layers_pruned: 0, layers_left_dense: 0,
      weights_total: 0, weights_nonzero_before: 0, weights_kept: 0, sparsity_permille: 0,
    };
    const emitted = new Map<string, Emitted>();
    const replacements = new Map<Node, Node>();
    for (const layer of layers) {
      const scheme = resolver.schemeFor(layer);
      if (scheme.kind === 'keep') continue;
      // 8-bit weights stay dense (no LUT path, little to gain); odd shapes too.
      if (scheme.bits === 8 || layer.k % pattern.m !== 0 || scheme.groupSize % pattern.m !== 0 || layer.k % scheme.groupSize !== 0) {
        bump(stats, 'layers_left_dense');
        continue;
      }
      const key = JSON.stringify([layer.weightName, layer.rowsKey, scheme]);
      let weight = emitted.get(key);
      if (!weight) {
        const sparse: SparseQuantizedWeight = quantizeSparse(layer.loadRows(), layer.n, layer.k, pattern, scheme);
        const base = layer.weightName;
        const kept = keptPerRow(layer.k, pattern);
        const values = freshName(graph, `${base}_sparse_values`);
        graph.initializers.set(values, weightFromTensor(values, new Tensor('u8', [layer.n, kept], sparse.values.codes)));
        graph.valueInfo.set(values, { dtype: 'u8', shape: [layer.n, kept], quant: sparse.values.info });
        const indices = freshName(graph, `${base}_sparse_indices`);
        const indexShape = [layer.n, indexBytesPerRow(layer.k, pattern)];
        graph.initializers.set(indices, weightFromTensor(indices, new Tensor('u8', indexShape, sparse.indices)));
        const groups = layer.k / scheme.groupSize;
        const scales = freshName(graph, `${base}_scales`);
        graph.initializers.set(scales, weightFromTensor(scales, Tensor.fromNumbers(scheme.scaleDtype, [layer.n, groups], sparse.values.scales)));
        let zeroPoints = '';
        if (sparse.values.zeroPoints) {
          zeroPoints = freshName(graph, `${base}_zero_points`);
          graph.initializers.set(zeroPoints, weightFromTensor(zeroPoints, new Tensor('f32', [layer.n, groups], sparse.values.zeroPoints)));
        }
        weight = { values, indices, scales, zeroPoints };
        emitted.set(key, weight);
        bump(stats, sparse.detected ? 'layers_detected' : 'layers_pruned');
        bump(stats, 'weights_total', layer.n * layer.k);
        bump(stats, 'weights_nonzero_before', sparse.nonzeroBefore);
        bump(stats, 'weights_kept', sparse.nonzeroAfter);
      }
      let bias = '';
      if (layer.bias) {
        bias = freshName(graph, `${layer.node.name}_bias`);
        graph.initializers.set(bias, weightFromTensor(bias, new Tensor('f32', [layer.n], layer.bias)));
      }
      // The zero-point slot stays (empty) when a bias follows it.
      const inputs = [layer.node.inputs[0], weight.values, weight.indices, weight.scales, weight.zeroPoints, bias];
      while (inputs[inputs.length - 1] === '') inputs.pop();
      replacements.set(layer.node, {
        name: layer.node.name,
        domain: 'llmcc',
        op: 'SparseQuantMatMul',
        inputs,
        outputs: [layer.node.outputs[0]],
        attributes: new Map([
          ['bits', { kind: 'int', value: scheme.bits }],
          ['ternary', { kind: 'int', value: scheme.ternary ? 1 : 0 }],
          ['group_size', { kind: 'int', value: scheme.groupSize }],
          ['K', { kind: 'int', value: layer.k }],
          ['N', { kind: 'int', value: layer.n }],
          ['sparsity_n', { kind: 'int', value: pattern.n }],
          ['sparsity_m', { kind: 'int', value: pattern.m }],
        ]),
      });
      bump(stats, 'layers_sparse');
    }
    if (stats.weights_total > 0) stats.sparsity_permille = Math.round(1000 * (1 - stats.weights_kept / stats.weights_total));
    if (replacements.size === 0) return { changed: false, stats };
    graph.nodes = graph.nodes.map((node) => replacements.get(node) ?? node);
    if (!model.opsets.has('llmcc')) model.opsets.set('llmcc', 1);
    removeDeadCode(graph);
    verifyModel(model);
    return { changed: true, stats };
  },
};

