import type { Model } from '../../ir/graph.js';
import { verifyModel } from '../../ir/verify.js';
import { removeDeadCode } from '../graph-edit.js';
import type { Pass, PassResult } from '../pass.js';
import { rewriteToFixedPoint, type RewriteRule } from '../rewrite/rewriter.js';
import { activationRules } from './activations.js';
import { attentionRules } from './attention.js';
import { matMulEpilogueRules } from './matmul-epilogue.js';
import { normRules } from './norms.js';
import { mergeParallelMatMuls } from './parallel-matmuls.js';

/**
 * Graph fusions, in two stages:
 *  - 'graph' (before quantization): primitive-op norms, activations, SwiGLU, parallel
 *    projections merged into one weight, attention into one op;
 *  - 'epilogue' (after quantization / LUT lowering): a float MatMul's bias and activation
 *    folded into llmcc.FusedMatMul (run last, so quantization still sees the plain MatMuls).
 * Each rule's firings are the pass's stats (`--stats`).
 */
export type FusionStage = 'graph' | 'epilogue';

export interface FusionOptions {
  stage: FusionStage;
}

export const graphFusionRules: readonly RewriteRule[] = [...activationRules, ...normRules, mergeParallelMatMuls, ...attentionRules];
export const epilogueFusionRules: readonly RewriteRule[] = matMulEpilogueRules;

function runRules(model: Model, rules: readonly RewriteRule[]): PassResult {
  const report = rewriteToFixedPoint(model, rules);
  const total = Object.values(report.fired).reduce((a, b) => a + b, 0);
  const stats: Record<string, number> = { ...report.fired };
  if (total > 0) {
    stats.deadNodesRemoved = removeDeadCode(model.graph);
    verifyModel(model);
  }
  if (!report.converged) stats.sweepLimitReached = 1;
  return { changed: total > 0, stats };
}

export const fusionPass: Pass<FusionOptions> = {
  name: 'fusion',
  run(model: Model, options: FusionOptions): PassResult {
    return runRules(model, options.stage === 'graph' ? graphFusionRules : epilogueFusionRules);
  },
};
