import type { Model } from '../ir/graph.js';
import { verifyModel } from '../ir/verify.js';
import { fuseLutPrecomputePass } from './fuse-lut-precompute.js';
import { importPrequantizedPass } from './import-prequantized.js';
import { lutLowerPass, type LutLowerOptions } from './lut-lower.js';
import type { PassResult } from './pass.js';
import type { QuantSchemeOptions } from './quant/layers.js';
import { quantizeWeightsPass } from './quantize-weights.js';

export interface LoweringOptions {
  /** Quantize float MatMul/Gemm weights first (`--bits`); absent: only pre-quantized weights are lowered. */
  quantize?: QuantSchemeOptions;
  lut: LutLowerOptions;
  /** Fuse the table precompute into the preceding norm / elementwise op (default true). */
  fuse?: boolean;
}

export interface PassRecord {
  pass: string;
  result: PassResult;
}

/**
 * The low-bit lowering pipeline, in order: pre-quantized import (MatMulNBits, blocked
 * DequantizeLinear) → weight quantization (when asked) → LUT lowering → precompute fusion.
 * The model is re-verified (and its types re-inferred) after every pass that changed it.
 */
export function runLoweringPipeline(model: Model, options: LoweringOptions): PassRecord[] {
  const records: PassRecord[] = [];
  const apply = (name: string, run: () => PassResult): void => {
    const result = run();
    if (result.changed) verifyModel(model);
    records.push({ pass: name, result });
  };
  verifyModel(model);
  apply(importPrequantizedPass.name, () => importPrequantizedPass.run(model));
  const quantize = options.quantize;
  if (quantize) apply(quantizeWeightsPass.name, () => quantizeWeightsPass.run(model, quantize));
  apply(lutLowerPass.name, () => lutLowerPass.run(model, options.lut));
  if (options.fuse ?? true) apply(fuseLutPrecomputePass.name, () => fuseLutPrecomputePass.run(model));
  return records;
}

/** `--stats` output: one line per pass with its nonzero counters. */
export function formatPassRecords(records: readonly PassRecord[]): string {
  return records.map(({ pass, result }) => {
    const counters = Object.entries(result.stats).filter(([, v]) => v !== 0).map(([k, v]) => `${k}=${v}`);
    return `pass ${pass}: ${result.changed ? 'changed' : 'no change'}${counters.length ? `  ${counters.join(' ')}` : ''}`;
  }).join('\n');
}
