import type { Model } from '../ir/graph.js';
import { LlmccError } from '../ir/errors.js';
import { verifyModel } from '../ir/verify.js';
import { fuseLutPrecomputePass } from './fuse-lut-precompute.js';
import { fusionPass } from './fusions/index.js';
import { importPrequantizedPass } from './import-prequantized.js';
import { lutLowerPass, type LutLowerOptions } from './lut-lower.js';
import { dotLowerPass, type DotLowerOptions } from './dot-lower.js';
import type { PassResult } from './pass.js';
import type { QuantSchemeOptions } from './quant/layers.js';
import { quantizeWeightsPass } from './quantize-weights.js';
import type { NMPattern } from './sparsity/pattern.js';
import { sparsifyPass } from './sparsity/sparsify.js';
import { sparseLutLowerPass } from './sparsity/lut-lower.js';

export interface LoweringOptions {
  /** Quantize float MatMul/Gemm weights first (`--bits`); absent: only pre-quantized weights are lowered. */
  quantize?: QuantSchemeOptions;
  /** N:M-prune (or keep a detected pattern) and pack the quantized weights (`--sparsity`; needs `quantize`). */
  sparsity?: NMPattern;
  lut: LutLowerOptions;
  /** Widths lowered to the int8-activation dot path before the LUT lowering (`--matmul`; passes/dot-lower.ts). */
  dot?: DotLowerOptions;
  /** Fuse the table precompute into the preceding norm / elementwise op (default true). */
  fuse?: boolean;
  /**
   * Graph fusions (passes/fusions): primitive-op norms, activations, attention and parallel
   * projections first, the float MatMul bias/activation epilogue last (default true; `--no-fusion`).
   */
  fusion?: boolean;
}

export interface PassRecord {
  pass: string;
  result: PassResult;
}

/**
 * The low-bit lowering pipeline, in order: graph fusion (passes/fusions) → pre-quantized import
 * (MatMulNBits, blocked DequantizeLinear) → weight quantization (when asked) → dot lowering
 * (the widths `dot` names) → LUT lowering →
 * precompute fusion → MatMul epilogue fusion.
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
  const fusion = options.fusion ?? true;
  if (fusion) apply(GRAPH_FUSION, () => fusionPass.run(model, { stage: 'graph' }));
  apply(importPrequantizedPass.name, () => importPrequantizedPass.run(model));
  const quantize = options.quantize;
  if (options.sparsity && !quantize) throw new LlmccError('--sparsity needs --bits (the kept weights are quantized)');
  const sparsity = options.sparsity;
  if (sparsity && quantize) apply(sparsifyPass.name, () => sparsifyPass.run(model, { pattern: sparsity, quantize }));
  if (quantize) apply(quantizeWeightsPass.name, () => quantizeWeightsPass.run(model, quantize));
  const dot = options.dot;
  if (dot && dot.widths.length > 0) apply(dotLowerPass.name, () => dotLowerPass.run(model, dot));
  apply(lutLowerPass.name, () => lutLowerPass.run(model, options.lut));
  if (sparsity) apply(sparseLutLowerPass.name, () => sparseLutLowerPass.run(model, { table: options.lut.table, rowsPerTile: options.lut.rowsPerTile }));
  if (options.fuse ?? true) apply(fuseLutPrecomputePass.name, () => fuseLutPrecomputePass.run(model));
  if (fusion) apply(EPILOGUE_FUSION, () => fusionPass.run(model, { stage: 'epilogue' }));
  return records;
}

const GRAPH_FUSION = 'fusion';
const EPILOGUE_FUSION = 'fusion-epilogue';

/**
 * What `compile`, `run` and `tune` do to an imported model before a target builds it: the
 * lowering pipeline with `--lower`; otherwise, on a compiling target (wasm), the graph fusions
 * unless `fusion` is false; on the reference interpreter, nothing (the graph's own semantics).
 */
export function prepareModel(model: Model, lowering: LoweringOptions | undefined, target: string | undefined, fusion = true): PassRecord[] {
  if (lowering) return runLoweringPipeline(model, lowering);
  if (target === 'wasm' && fusion) return runFusionPipeline(model);
  return [];
}

/** The graph fusions alone (both stages), for compiling or running a float model on a target. */
export function runFusionPipeline(model: Model): PassRecord[] {
  verifyModel(model);
  return [
    { pass: GRAPH_FUSION, result: fusionPass.run(model, { stage: 'graph' }) },
    { pass: EPILOGUE_FUSION, result: fusionPass.run(model, { stage: 'epilogue' }) },
  ];
}

/** `--stats` output: one line per pass with its nonzero counters. */
export function formatPassRecords(records: readonly PassRecord[]): string {
  return records.map(({ pass, result }) => {
    const counters = Object.entries(result.stats).filter(([, v]) => v !== 0).map(([k, v]) => `${k}=${v}`);
    return `pass ${pass}: ${result.changed ? 'changed' : 'no change'}${counters.length ? `  ${counters.join(' ')}` : ''}`;
  }).join('\n');
}
