import type { Node } from '../../ir/graph.js';
import type { FusedActivation } from '../../ir/ops/llmcc/FusedMatMul.js';
import type { RewriteContext } from '../rewrite/context.js';
import { capture, op, type Match, type OpPattern, type Pattern } from '../rewrite/pattern.js';
import { patternRule, type RewriteRule } from '../rewrite/rewriter.js';
import { LLMCC, MS, makeNode } from './common.js';

/**
 * A float MatMul's epilogue — bias Add, then an activation (Relu, Gelu erf or tanh, FastGelu,
 * SiLU as Swish) — into one llmcc.FusedMatMul(A, B, bias?) that writes the finished value once.
 * B must be 2-D; the bias a 1-D [N] vector. Runs after quantization: quantized projections are
 * QuantMatMul/LutMatMul by then and keep their own bias input.
 */

const matmul = op('MatMul', [capture('a'), capture('b')], { name: 'matmul' });
const biased = op('Add', [matmul, capture('bias')], { commutative: true, name: 'add' });

function activationOf(node: Node): FusedActivation | undefined {
  if (node.domain === '' && node.op === 'Relu') return 'relu';
  if (node.domain === '' && node.op === 'Gelu') {
    const a = node.attributes.get('approximate');
    return a?.kind === 'string' && a.value === 'tanh' ? 'gelu_tanh' : 'gelu';
  }
  if (node.domain === MS && node.op === 'FastGelu') return 'gelu_tanh';
  if (node.domain === '' && node.op === 'Swish') {
    const alpha = node.attributes.get('alpha');
    return !alpha || (alpha.kind === 'float' && alpha.value === 1) ? 'silu' : undefined;
  }
  return undefined;
}

const activated = (input: Pattern): OpPattern[] => [
  op(['Relu', 'Gelu', 'Swish'], [input], { name: 'act' }),
  op('FastGelu', [input], { name: 'act', domain: MS }),
];

function fits(m: Match, ctx: RewriteContext): boolean {
  const a = ctx.type(m.values.get('a')!), b = ctx.type(m.values.get('b')!);
  if (!a?.shape || !b?.shape || a.dtype !== b.dtype || b.shape.length !== 2 || a.shape.length < 2) return false;
  if (!['f32', 'f16'].includes(a.dtype)) return false;
  const act = m.nodes.get('act');
  if (act && !activationOf(act)) return false;
  const bias = m.values.get('bias');
  if (bias) {
    const shape = ctx.shape(bias);
    if (!shape || shape.length !== 1 || shape[0] !== b.shape[1] || ctx.dtype(bias) !== a.dtype) return false;
  }
  return true;
}

function fused(m: Match, ctx: RewriteContext): Node[] {
  ctx.useDomain(LLMCC);
  const act = m.nodes.get('act');
  const activation = act ? activationOf(act)! : 'none';
  const inputs = [m.values.get('a')!, m.values.get('b')!, m.values.get('bias') ?? ''];
  return [makeNode(ctx, `${m.nodes.get('matmul')!.name}_fused`, 'FusedMatMul', LLMCC, inputs, [m.root.outputs[0]], { activation })];
}

const biasActivation = patternRule({ name: 'matmul-bias-activation', pattern: activated(biased), check: fits, replace: fused });
const activation = patternRule({ name: 'matmul-activation', pattern: activated(matmul), check: fits, replace: fused });
const biasOnly = patternRule({ name: 'matmul-bias', pattern: biased, check: fits, replace: fused });

/** Longest epilogue first, so a bias Add followed by an activation fuses whole. */
export const matMulEpilogueRules: RewriteRule[] = [biasActivation, activation, biasOnly];
