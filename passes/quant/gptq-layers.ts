import { LlmccError } from '../../ir/errors.js';
import type { Model } from '../../ir/graph.js';
import { batchAxes, batchFeeds, calibrationFeeds, captureGrams, type CalibrationOptions, type InputGram } from './calibrate.js';
import { factorHessian, hessianSqnrDb, quantizeGptq, type GptqFactor, type GptqOptions } from './gptq.js';
import { layerError, type LayerScheme, type MatMulLayer, type SchemeResolver } from './layers.js';
import { dequantize, type QuantizedWeight } from './rtn.js';
import type { QuantReportRow } from './report.js';

/**
 * GPTQ over a model's layers (`--quant-method gptq`): calibrates once (passes/quant/calibrate.ts),
 * factors each distinct layer input's H once (q/k/v share theirs), and quantizes each layer
 * with passes/quant/gptq.ts.
 *
 * Sequential by default, as in the paper: the calibration sets run as one batch, each layer is
 * quantized when the run reaches it and its output recomputed with the quantized weight, so a
 * layer's H comes from the activations the quantized layers before it produce. When the sets
 * cannot be batched (different shapes) or `sequential` is false, every layer's H comes from
 * the float model's activations.
 */

export type QuantMethod = 'rtn' | 'gptq';
export const QUANT_METHODS: readonly QuantMethod[] = ['rtn', 'gptq'];

export interface GptqModelOptions extends GptqOptions {
  calibration?: CalibrationOptions;
  /** Quantize layer by layer during the calibration run (default true, when the sets batch). */
  sequential?: boolean;
}

type QuantScheme = Extract<LayerScheme, { kind: 'quant' }>;

export class GptqLayers {
  private readonly factors = new Map<string, GptqFactor>();
  /** Layers quantized during a sequential calibration run. */
  private readonly quantized = new Map<MatMulLayer, QuantizedWeight>();
  private grams = new Map<string, InputGram>();
  private readonly options: GptqOptions;
  /** Whether the layers were quantized during the calibration run (sequential mode). */
  sequential = false;

  private constructor(options: GptqOptions) {
    // Act-order (AutoGPTQ's desc_act with static groups) by default: on the static-scatter
    // decoder it raised the mean held-out logits cosine more than the natural order did.
    this.options = { ...options, actOrder: options.actOrder ?? true };
  }

  /**
   * Calibrates `model` for `layers` (quantizing them on the way in sequential mode); throws
   * LlmccError when no calibration input can be made (data-free calibration needs a decoder
   * with input_ids and logits).
   */
  static calibrate(model: Model, layers: readonly MatMulLayer[], schemeOf: (layer: MatMulLayer) => QuantScheme, options: GptqModelOptions = {}): GptqLayers {
    const feeds = calibrationFeeds(model, options.calibration ?? {});
    const gptq = new GptqLayers(options);
    const batch = options.sequential === false ? undefined : feeds.length === 1 ? new Map(feeds[0]) : batchFeeds(feeds, batchAxes(model.graph));
    if (!batch) {
      gptq.grams = captureGrams(model, feeds, layers);
      return gptq;
    }
    gptq.sequential = true;
    gptq.grams = captureGrams(model, [batch], layers, (layer, gram) => {
      const q = gptq.quantizeFor(layer, layer.loadRows(), schemeOf(layer), gram);
      gptq.quantized.set(layer, q);
      return dequantize(q);
    });
    return gptq;
  }

  /** Activation rows behind each H (the fewest over the layer inputs; 0 when none was reached). */
  get calibrationRows(): number {
    let fewest = Infinity;
    for (const gram of this.grams.values()) fewest = Math.min(fewest, gram.rows);
    return Number.isFinite(fewest) ? fewest : 0;
  }

  private gramOf(layer: MatMulLayer): InputGram {
    const gram = this.grams.get(layer.node.inputs[0]);
    if (!gram || gram.rows === 0) throw layerError(layer, 'GPTQ: the calibration run never reached this layer');
    return gram;
  }

  private quantizeFor(layer: MatMulLayer, rows: Float32Array, scheme: QuantScheme, gram: InputGram): QuantizedWeight {
    const input = layer.node.inputs[0];
    let factor = this.factors.get(input);
    if (!factor) {
      factor = factorHessian(gram.gram, layer.k, this.options);
      this.factors.set(input, factor);
    }
    return quantizeGptq(rows, layer.n, layer.k, factor, scheme, this.options);
  }

  quantize(layer: MatMulLayer, rows: Float32Array, scheme: QuantScheme): QuantizedWeight {
    return this.quantized.get(layer) ?? this.quantizeFor(layer, rows, scheme, this.gramOf(layer));
  }

  /** The layer's output SQNR (dB) on the calibration activations. */
  outputSqnrDb(layer: MatMulLayer, rows: Float32Array, q: QuantizedWeight): number {
    return hessianSqnrDb(rows, dequantize(q), layer.n, layer.k, this.gramOf(layer).gram);
  }

  /** A report row of a GPTQ layer: the method, and the output SQNR on the calibration activations unless real inputs were measured. */
  reportRow(measured: QuantReportRow, layer: MatMulLayer, rows: Float32Array, q: QuantizedWeight): QuantReportRow {
    return measured.calibration === 'real'
      ? { ...measured, method: 'gptq' }
      : { ...measured, method: 'gptq', calibration: 'gram', outputSqnrDb: this.outputSqnrDb(layer, rows, q) };
  }
}

/** GPTQ for the layers `resolver` quantizes (K a multiple of the group); the others stay as they are. */
export function calibrateGptq(model: Model, layers: readonly MatMulLayer[], resolver: SchemeResolver, options?: GptqModelOptions): GptqLayers {
  const schemes = new Map<MatMulLayer, QuantScheme>();
  for (const layer of layers) {
    const scheme = resolver.schemeFor(layer);
    if (scheme.kind === 'quant' && layer.k % scheme.groupSize === 0) schemes.set(layer, scheme);
  }
  return GptqLayers.calibrate(model, [...schemes.keys()], (layer) => schemes.get(layer)!, options);
}

export function parseQuantMethod(value: string): QuantMethod {
  if ((QUANT_METHODS as readonly string[]).includes(value)) return value as QuantMethod;
  throw new LlmccError(`--quant-method must be one of ${QUANT_METHODS.join(', ')}, got '${value}'`);
}
