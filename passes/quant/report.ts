import type { Model } from '../../ir/graph.js';
import { interpret } from '../../ir/interpreter.js';
import { topologicalSort } from '../../ir/verify.js';
import { describeQuant, type WeightBits } from '../../ir/quant.js';
import type { Tensor } from '../../ir/tensor.js';
import { SchemeResolver, findLayers, quantizeRows, type MatMulLayer, type QuantSchemeOptions } from './layers.js';
import { dequantize, type QuantizedWeight } from './rtn.js';
import { calibrateGptq, type QuantMethod } from './gptq-layers.js';
import { gaussian, matmulNK, sqnrDb } from './sqnr.js';

/**
 * Per-layer quantization quality (`llmcc inspect --quant`): SQNR of the quantized weight
 * and of the layer's output on a calibration input, and the weight's size before and after.
 */

export interface QuantReportRow {
  /** The MatMul/Gemm node. */
  layer: string;
  weight: string;
  bits: WeightBits;
  ternary: boolean;
  groupSize: number;
  /** e.g. `int4 group=32 sym scale=f32 layout=codes-nk`. */
  scheme: string;
  /** 10·log10(‖W‖² / ‖W − Ŵ‖²); Infinity when exact. */
  weightSqnrDb: number;
  /** The same for X·Wᵀ on the calibration input. */
  outputSqnrDb: number;
  /**
   * 'gaussian' (seeded N(0,1) [16, K]), 'real' (the layer's input on the given feeds) or 'gram'
   * (GPTQ's calibration activations, through their XᵀX).
   */
  calibration: 'gaussian' | 'real' | 'gram';
  /** How the codes were chosen (absent: RTN). */
  method?: QuantMethod;
  bytesBefore: number;
  /** Packed codes (bits per weight) + scales + zero points, as a target stores them. */
  bytesAfter: number;
}

/** Rows of the seeded Gaussian calibration input. */
export const CALIBRATION_ROWS = 16;
export const CALIBRATION_SEED = 0x11cc;

/** A layer's input activations, as [rows, K]. */
export interface LayerInput {
  values: ArrayLike<number>;
  rows: number;
}

export function quantizedBytes(q: QuantizedWeight): number {
  const groups = q.scales.length;
  const codeBits = q.n * q.k * q.info.bits;
  const scaleBytes = groups * (q.info.scaleDtype === 'f16' ? 2 : 4);
  const zeroBytes = q.zeroPoints ? groups * 4 : 0;
  return Math.ceil(codeBits / 8) + scaleBytes + zeroBytes;
}

/** One report row from a layer's float rows [N, K] and their quantized form. */
export function measureLayer(layer: MatMulLayer, rows: Float32Array, q: QuantizedWeight, input?: LayerInput): QuantReportRow {
  const approx = dequantize(q);
  const x = input ?? { values: gaussian(CALIBRATION_SEED, CALIBRATION_ROWS * layer.k), rows: CALIBRATION_ROWS };
  const exactOut = matmulNK(x.values, x.rows, rows, layer.n, layer.k);
  const approxOut = matmulNK(x.values, x.rows, approx, layer.n, layer.k);
  return {
    layer: layer.node.name,
    weight: layer.weightName,
    bits: q.info.bits,
    ternary: q.info.ternary,
    groupSize: q.info.groupSize,
    scheme: describeQuant(q.info),
    weightSqnrDb: sqnrDb(rows, approx),
    outputSqnrDb: sqnrDb(exactOut, approxOut),
    calibration: input ? 'real' : 'gaussian',
    bytesBefore: layer.weightBytes,
    bytesAfter: quantizedBytes(q),
  };
}

/**
 * Runs the float model on `feeds` and returns the input activations (flattened to [rows, K])
 * of the named MatMul/Gemm nodes: the "real input" calibration.
 */
export function captureLayerInputs(model: Model, feeds: ReadonlyMap<string, Tensor>, layers: readonly MatMulLayer[]): Map<string, LayerInput> {
  const wanted = new Map<string, MatMulLayer[]>();
  for (const layer of layers) {
    const name = layer.node.inputs[0];
    wanted.set(name, [...(wanted.get(name) ?? []), layer]);
  }
  const captured = new Map<string, LayerInput>();
  const record = (name: string, tensor: Tensor) => {
    for (const layer of wanted.get(name) ?? []) {
      captured.set(layer.node.name, { values: tensor.numbers(), rows: tensor.size / layer.k });
    }
  };
  for (const [name, tensor] of feeds) record(name, tensor);
  for (const [name, weight] of model.graph.initializers) if (wanted.has(name) && !feeds.has(name)) record(name, weight.load());
  // Passes may run before verification has put the nodes in order.
  interpret({ ...model.graph, nodes: topologicalSort(model.graph) }, feeds, {
    opsets: model.opsets,
    onNode: (node, outputs) => node.outputs.forEach((name, i) => { if (outputs[i]) record(name, outputs[i]); }),
  });
  return captured;
}

/**
 * The report for quantizing `model` with `options`, without changing the model. Layers that
 * stay float (keep patterns, K not a multiple of the group) have no row.
 */
export function quantReport(model: Model, options: QuantSchemeOptions, feeds?: ReadonlyMap<string, Tensor>): QuantReportRow[] {
  const resolver = new SchemeResolver(options);
  const { layers } = findLayers(model.graph);
  const inputs = feeds ? captureLayerInputs(model, feeds, layers) : undefined;
  const gptq = options.method === 'gptq' ? calibrateGptq(model, layers, resolver, options.gptq) : undefined;
  const rows: QuantReportRow[] = [];
  for (const layer of layers) {
    const scheme = resolver.schemeFor(layer);
    if (scheme.kind === 'keep' || layer.k % scheme.groupSize !== 0) continue;
    const weightRows = layer.loadRows();
    const q = gptq ? gptq.quantize(layer, weightRows, scheme) : quantizeRows(weightRows, layer.n, layer.k, scheme);
    const row = measureLayer(layer, weightRows, q, inputs?.get(layer.node.name));
    rows.push(gptq ? gptq.reportRow(row, layer, weightRows, q) : row);
  }
  return rows;
}

function formatDb(db: number): string {
  return Number.isFinite(db) ? db.toFixed(2) : db > 0 ? 'exact' : '-inf';
}

/** The report as an aligned text table, with a total line. */
export function formatQuantReport(rows: readonly QuantReportRow[]): string {
  const header = ['layer', 'scheme', 'weight SQNR dB', 'output SQNR dB', 'bytes before', 'bytes after'];
  // GPTQ rows name their method in the scheme column (RTN is the default and stays unnamed).
  const body = rows.map((r) => [r.layer, r.method && r.method !== 'rtn' ? `${r.scheme} ${r.method}` : r.scheme, formatDb(r.weightSqnrDb), formatDb(r.outputSqnrDb), String(r.bytesBefore), String(r.bytesAfter)]);
  const before = rows.reduce((s, r) => s + r.bytesBefore, 0);
  const after = rows.reduce((s, r) => s + r.bytesAfter, 0);
  body.push(['total', `${rows.length} layers`, '', '', String(before), String(after)]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((row) => row[i].length)));
  return [header, ...body].map((row) => row.map((cell, i) => cell.padEnd(widths[i])).join('  ').trimEnd()).join('\n');
}
