import type { Node } from '../../ir/graph.js';
import type { RewriteContext } from '../rewrite/context.js';
import { anyOf, capture, constant, op, scalar, type Match, type OpPattern, type Pattern } from '../rewrite/pattern.js';
import { patternRule, type RewriteRule } from '../rewrite/rewriter.js';
import { MS, floatAttr, isVectorOverLastDim, makeNode, onlyFirstOutputRead, reducesLastAxisKeepingDims, scalarOf } from './common.js';

/**
 * RMSNorm and LayerNorm from primitive ops, as torch.onnx and tf2onnx export them, into the
 * ops every target implements: com.microsoft SimplifiedLayerNormalization and ai.onnx
 * LayerNormalization; then a residual Add feeding a norm into the Skip* form.
 *
 *   RMSNorm:   gamma · x / sqrt(mean(x²) + eps)     (x² as Pow(x, 2) or x·x; the division as Div,
 *              Mul by Reciprocal, or Mul by 1/…; optional Cast to f32 before and back after)
 *   LayerNorm: gamma · (x − mean(x)) / sqrt(mean((x − mean(x))²) + eps) (+ beta), or tf2onnx's
 *              x·inv + (beta − mean·inv), inv = gamma / sqrt(var + eps)
 *
 * All reductions over the last axis with keepdims; eps a one-element constant added before the
 * square root (an eps added after it is a different function and does not match).
 */

const lastAxisMean = (input: Pattern, name?: string): Pattern =>
  op('ReduceMean', [input], { extraInputs: true, name, where: reducesLastAxisKeepingDims });

const square = (x: Pattern): Pattern => anyOf(op('Pow', [x, scalar(2)]), op('Mul', [x, x]));

/** 1 / sqrt(variance + eps) applied to `numerator`, in each exported spelling. */
function divideByRootOf(numerator: Pattern, variance: Pattern): Pattern {
  const root = op('Sqrt', [op('Add', [variance, constant('eps', (t) => t.size === 1)], { commutative: true })]);
  return anyOf(
    op('Div', [numerator, root]),
    op('Mul', [numerator, op('Reciprocal', [root])], { commutative: true }),
    op('Mul', [numerator, op('Div', [scalar(1), root])], { commutative: true }),
  );
}

/** x, or x behind the exporter's upcast (kept when other nodes read it). */
const input = anyOf(op('Cast', [capture('x')], { name: 'castIn', shared: true }), capture('x'));
const downcast = (inner: Pattern): Pattern => anyOf(op('Cast', [inner], { name: 'castOut' }), inner);

function rmsNormalized(): Pattern {
  return divideByRootOf(input, lastAxisMean(square(input)));
}

function layerNormalized(): Pattern {
  const centered = op('Sub', [input, lastAxisMean(input)], { name: 'centered' });
  return divideByRootOf(centered, lastAxisMean(square(centered)));
}

/** Dtypes line up: the fused op computes in x's dtype and the match's output has that dtype. */
function dtypesAgree(m: Match, ctx: RewriteContext): boolean {
  const x = m.values.get('x')!;
  const xType = ctx.dtype(x);
  const outType = ctx.dtype(m.root.outputs[0]);
  const gamma = m.values.get('gamma');
  if (!xType || !outType || xType !== outType) return false;
  if (gamma && ctx.dtype(gamma) !== xType) return false;
  const castIn = m.nodes.get('castIn');
  if (castIn && !['f32', 'f64'].includes(ctx.dtype(castIn.outputs[0]) ?? '')) return false;
  return true;
}

function normCheck(m: Match, ctx: RewriteContext, params: string[]): boolean {
  const x = m.values.get('x')!;
  const rank = ctx.shape(x)?.length;
  if (rank === undefined || rank < 1) return false;
  if (scalarOf(m.constants.get('eps')) === undefined) return false;
  return params.every((p) => isVectorOverLastDim(ctx, m.values.get(p)!, x)) && dtypesAgree(m, ctx);
}

function epsilonOf(m: Match): number {
  return scalarOf(m.constants.get('eps'))!;
}

const rmsNorm = patternRule({
  name: 'rms-norm',
  pattern: op('Mul', [downcast(rmsNormalized()), constant('gamma')], { commutative: true }),
  check: (m, ctx) => normCheck(m, ctx, ['gamma']),
  replace: (m, ctx) => {
    ctx.useDomain(MS);
    return [makeNode(ctx, `${m.root.name}_rmsnorm`, 'SimplifiedLayerNormalization', MS,
      [m.values.get('x')!, m.values.get('gamma')!], [m.root.outputs[0]], { axis: -1, epsilon: floatAttr(epsilonOf(m)) })];
  },
});

/**
 * tf2onnx's Keras LayerNormalization (tf.nn.batch_normalization's algebra):
 * x·inv + (beta − mean·inv) with inv = gamma / sqrt(var + eps), var = mean((x − mean)²).
 */
function tfLayerNorm(): OpPattern {
  const mean = lastAxisMean(input, 'mean');
  const variance = lastAxisMean(square(op('Sub', [input, mean])));
  const root = op('Sqrt', [op('Add', [variance, constant('eps', (t) => t.size === 1)], { commutative: true })]);
  const inv = op('Mul', [anyOf(op('Reciprocal', [root]), op('Div', [scalar(1), root])), constant('gamma')], { commutative: true, name: 'inv' });
  return op('Add', [
    op('Mul', [input, inv], { commutative: true }),
    op('Sub', [constant('beta'), op('Mul', [mean, inv], { commutative: true })]),
  ], { commutative: true });
}

const layerNormWithBias = patternRule({
  name: 'layer-norm',
  pattern: [
    op('Add', [op('Mul', [downcast(layerNormalized()), constant('gamma')], { commutative: true }), constant('beta')], { commutative: true }),
    tfLayerNorm(),
  ],
  check: (m, ctx) => normCheck(m, ctx, ['gamma', 'beta']),
  replace: (m, ctx) => [makeNode(ctx, `${m.root.name}_layernorm`, 'LayerNormalization', '',
    [m.values.get('x')!, m.values.get('gamma')!, m.values.get('beta')!], [m.root.outputs[0]], { axis: -1, epsilon: floatAttr(epsilonOf(m)) })],
});

const layerNormNoBias = patternRule({
  name: 'layer-norm-no-bias',
  pattern: op('Mul', [downcast(layerNormalized()), constant('gamma')], { commutative: true }),
  check: (m, ctx) => normCheck(m, ctx, ['gamma']),
  replace: (m, ctx) => [makeNode(ctx, `${m.root.name}_layernorm`, 'LayerNormalization', '',
    [m.values.get('x')!, m.values.get('gamma')!], [m.root.outputs[0]], { axis: -1, epsilon: floatAttr(epsilonOf(m)) })],
});

/** Norm ops the Skip fusion turns into their Skip* form: where gamma/beta sit and the default eps. */
function skipTarget(node: Node): { op: string; simplified: boolean } | undefined {
  if (node.op === 'SimplifiedLayerNormalization' && (node.domain === MS || node.domain === '')) return { op: 'SkipSimplifiedLayerNormalization', simplified: true };
  if (node.op === 'LayerNormalization' && node.domain === '') return { op: 'SkipLayerNormalization', simplified: false };
  return undefined;
}

function floatOf(node: Node, name: string, fallback: number): number {
  const a = node.attributes.get(name);
  return a?.kind === 'float' ? a.value : fallback;
}

/**
 * Residual Add → norm becomes Skip(Simplified)LayerNormalization; the Add's sum stays
 * available as the fused op's output 3 for the next residual connection.
 */
const skipNorm = patternRule({
  name: 'skip-norm',
  pattern: op(['SimplifiedLayerNormalization', 'LayerNormalization'], [
    op('Add', [capture('input'), capture('skip')], { name: 'sum', shared: true }),
    capture('gamma'),
  ], { extraInputs: true, domain: ['', MS] }),
  check: (m, ctx) => {
    const norm = m.root;
    const target = skipTarget(norm);
    const input = m.values.get('input')!, skip = m.values.get('skip')!;
    const shape = ctx.shape(input), skipShape = ctx.shape(skip);
    if (!target || !onlyFirstOutputRead(ctx, norm)) return false;
    if (intAxis(norm) !== -1 && intAxis(norm) !== (shape?.length ?? 0) - 1) return false;
    if (!shape || !skipShape || (shape.length !== 2 && shape.length !== 3)) return false;
    if (shape.length !== skipShape.length || shape.some((d, i) => d !== skipShape[i])) return false;
    if (ctx.isConstant(input) || ctx.isConstant(skip)) return false;
    const params = norm.inputs.slice(1).filter((p) => p);
    return params.every((p) => ctx.isConstant(p) && isVectorOverLastDim(ctx, p, input)) &&
      ctx.dtype(input) === ctx.dtype(skip) && ctx.dtype(input) === ctx.dtype(norm.outputs[0]);
  },
  replace: (m, ctx) => {
    const norm = m.root;
    const target = skipTarget(norm)!;
    const sum = m.nodes.get('sum')!;
    const sumRead = ctx.isGraphOutput(sum.outputs[0]) || ctx.readers(sum.outputs[0]).some((r) => r !== norm);
    const inputs = [m.values.get('input')!, m.values.get('skip')!, norm.inputs[1]];
    if (!target.simplified && norm.inputs[2]) inputs.push(norm.inputs[2]);
    ctx.useDomain(MS);
    return [makeNode(ctx, `${norm.name}_skip`, target.op, MS, inputs,
      [norm.outputs[0], '', '', sumRead ? sum.outputs[0] : ''], { epsilon: floatAttr(floatOf(norm, 'epsilon', 1e-5)) })];
  },
});

function intAxis(node: Node): number {
  const a = node.attributes.get('axis');
  return a?.kind === 'int' ? a.value : -1;
}

/** In order: full LayerNorm before its bias-less prefix, then Skip on the fused norms. */
export const normRules: RewriteRule[] = [layerNormWithBias, layerNormNoBias, rmsNorm, skipNorm];
