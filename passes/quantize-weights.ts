import type { Model, Node } from '../ir/graph.js';
import { Tensor } from '../ir/tensor.js';
import { verifyModel } from '../ir/verify.js';
import { freshName, removeDeadCode, weightFromTensor } from './graph-edit.js';
import type { Pass, PassResult } from './pass.js';
import { SchemeResolver, findLayers, quantizeRows, type LayerScheme, type MatMulLayer, type QuantSchemeOptions } from './quant/layers.js';
import { captureLayerInputs, measureLayer, quantizedBytes, type LayerInput, type QuantReportRow } from './quant/report.js';
import type { QuantizedWeight } from './quant/rtn.js';
import { calibrateGptq } from './quant/gptq-layers.js';
import { PROGRESS_MIN_BYTES, type QuantProgressSink, quantProgressSink } from './quant/progress.js';

/**
 * quantize-weights: rewrites each MatMul / Gemm whose B is a constant 2-D float weight into
 * llmcc.QuantMatMul with RTN (or ternary absmean) group-wise codes; see passes/quant/rtn.ts
 * for the schemes. With `method: 'gptq'` the codes (same formats) are chosen by GPTQ on
 * calibration activations instead (passes/quant/gptq-layers.ts). Gemm is taken with transB
 * either way, alpha folded into the weight and beta·C as the bias when C is a constant vector.
 *
 * A layer whose K is not a multiple of the group size stays float and is counted under
 * `skipped_k_not_divisible` (a whole-model run should not fail on one odd layer, e.g. a
 * small classifier head); `llmcc inspect --quant` then shows it has no row.
 */
export interface QuantizeWeightsOptions extends QuantSchemeOptions {
  /** Graph feeds for "real input" calibration of the output SQNR; seeded Gaussian otherwise. */
  calibration?: ReadonlyMap<string, Tensor>;
  /** When given, one row per quantized layer is appended (weight and output SQNR, sizes). */
  report?: QuantReportRow[];
  /** Called before each layer and once at the end; default: the installed sink, on models over PROGRESS_MIN_BYTES of float weights. */
  onProgress?: QuantProgressSink;
}

type QuantScheme = Extract<LayerScheme, { kind: 'quant' }>;

interface EmittedWeight {
  codes: string;
  scales: string;
  zeroPoints: string;
  quantized: QuantizedWeight;
}

function bump(stats: Record<string, number>, key: string, by = 1): void {
  stats[key] = (stats[key] ?? 0) + by;
}

function schemeKey(layer: MatMulLayer, scheme: QuantScheme): string {
  return JSON.stringify([layer.weightName, layer.rowsKey, scheme]);
}

export const quantizeWeightsPass: Pass<QuantizeWeightsOptions> = {
  name: 'quantize-weights',
  run(model: Model, options: QuantizeWeightsOptions): PassResult {
    const graph = model.graph;
    const resolver = new SchemeResolver(options);
    const { layers, skipped } = findLayers(graph);
    const stats: Record<string, number> = { layers_quantized: 0, layers_kept: 0, bytes_before: 0, bytes_after: 0 };
    for (const reason of skipped.values()) bump(stats, reason);
    const inputs: Map<string, LayerInput> | undefined = options.calibration && options.report
      ? captureLayerInputs(model, options.calibration, layers)
      : undefined;
    const gptq = options.method === 'gptq' ? calibrateGptq(model, layers, resolver, options.gptq) : undefined;
    if (gptq) {
      bump(stats, gptq.sequential ? 'gptq_sequential' : 'gptq_float_inputs');
      // Fewer rows than K leave H singular (damping only): GPTQ then fits those rows, not the data.
      bump(stats, 'gptq_calibration_rows', gptq.calibrationRows);
    }

    // Weights shared by several layers with the same scheme are quantized and stored once.
    const emitted = new Map<string, EmittedWeight>();
    const replacements = new Map<Node, Node>();
    const totalBytes = layers.reduce((sum, l) => sum + l.weightBytes, 0);
    const progress = options.onProgress ?? (totalBytes >= PROGRESS_MIN_BYTES ? quantProgressSink() : undefined);
    const started = Date.now();
    let doneBytes = 0;
    for (const [index, layer] of layers.entries()) {
      doneBytes += layer.weightBytes;
      progress?.({ done: index, total: layers.length, bytes: doneBytes - layer.weightBytes, totalBytes, layer: layer.node.name, elapsedMs: Date.now() - started });
      const scheme = resolver.schemeFor(layer);
      if (scheme.kind === 'keep') { bump(stats, 'layers_kept'); continue; }
      if (layer.k % scheme.groupSize !== 0) { bump(stats, 'skipped_k_not_divisible'); continue; }
      const key = schemeKey(layer, scheme);
      let weight = emitted.get(key);
      const rows = weight && !options.report ? undefined : layer.loadRows();
      if (!weight) {
        // Each layer's float rows are read lazily here and dropped after: peak memory is one layer's.
        const quantized = gptq ? gptq.quantize(layer, rows!, scheme) : quantizeRows(rows!, layer.n, layer.k, scheme);
        const base = layer.weightName;
        const codes = freshName(graph, `${base}_codes`);
        graph.initializers.set(codes, weightFromTensor(codes, new Tensor('u8', [layer.n, layer.k], quantized.codes)));
        graph.valueInfo.set(codes, { dtype: 'u8', shape: [layer.n, layer.k], quant: quantized.info });
        const groups = layer.k / scheme.groupSize;
        const scales = freshName(graph, `${base}_scales`);
        graph.initializers.set(scales, weightFromTensor(scales, Tensor.fromNumbers(scheme.scaleDtype, [layer.n, groups], quantized.scales)));
        let zeroPoints = '';
        if (quantized.zeroPoints) {
          zeroPoints = freshName(graph, `${base}_zero_points`);
          graph.initializers.set(zeroPoints, weightFromTensor(zeroPoints, new Tensor('f32', [layer.n, groups], quantized.zeroPoints)));
        }
        weight = { codes, scales, zeroPoints, quantized };
        emitted.set(key, weight);
        bump(stats, 'weights_quantized');
        bump(stats, 'bytes_before', layer.weightBytes);
        bump(stats, 'bytes_after', quantizedBytes(quantized));
      }
      if (options.report && rows) {
        const row = measureLayer(layer, rows, weight.quantized, inputs?.get(layer.node.name));
        options.report.push(gptq ? gptq.reportRow(row, layer, rows, weight.quantized) : row);
      }

      let bias = '';
      if (layer.bias) {
        bias = freshName(graph, `${layer.node.name}_bias`);
        graph.initializers.set(bias, weightFromTensor(bias, new Tensor('f32', [layer.n], layer.bias)));
      }
      const inputsOf = [layer.node.inputs[0], weight.codes, weight.scales, weight.zeroPoints, bias];
      while (inputsOf[inputsOf.length - 1] === '') inputsOf.pop();
      replacements.set(layer.node, {
        name: layer.node.name,
        domain: 'llmcc',
        op: 'QuantMatMul',
        inputs: inputsOf,
        outputs: [layer.node.outputs[0]],
        attributes: new Map([
          ['bits', { kind: 'int', value: scheme.bits }],
          ['group_size', { kind: 'int', value: scheme.groupSize }],
          ['ternary', { kind: 'int', value: scheme.ternary ? 1 : 0 }],
          ['K', { kind: 'int', value: layer.k }],
          ['N', { kind: 'int', value: layer.n }],
        ]),
      });
      bump(stats, 'layers_quantized');
      bump(stats, scheme.ternary ? 'layers_ternary' : `layers_int${scheme.bits}`);
    }

    progress?.({ done: layers.length, total: layers.length, bytes: totalBytes, totalBytes, layer: 'done', elapsedMs: Date.now() - started });
    if (replacements.size === 0) return { changed: false, stats };
    graph.nodes = graph.nodes.map((node) => replacements.get(node) ?? node);
    if (!model.opsets.has('llmcc')) model.opsets.set('llmcc', 1);
    // The float weights go unless something else (e.g. a tied embedding Gather) still reads them.
    removeDeadCode(graph);
    verifyModel(model); // re-infers every type, QuantMatMul's included

    return { changed: true, stats };
  },
};
