import { anyOf, capture, op, scalar, type OpPattern, type Pattern } from '../rewrite/pattern.js';
import { patternRule, type RewriteRule } from '../rewrite/rewriter.js';
import { MS, floatAttr, makeNode } from './common.js';

/**
 * Activations written out in primitive ops, as torch.onnx and tf2onnx export them:
 *   Gelu (erf):  0.5 · x · (1 + erf(x / √2))               → ai.onnx Gelu
 *   Gelu (tanh): 0.5 · x · (1 + tanh(√(2/π) · (x + 0.044715 · x³))) → com.microsoft FastGelu
 *   SiLU:        x · sigmoid(x)                              → ai.onnx Swish (alpha 1)
 *   SwiGLU:      Swish(g) · u, g and u of one shape          → ai.onnx SwiGLU
 * Constants match to 1e-4 relative (exporters round √2 and √(2/π) differently).
 */

const x = capture('x');
const TOL = 1e-4;

/** 0.5 · x · inner, in the three association orders exporters produce. */
function halfXTimes(inner: Pattern): OpPattern[] {
  const half = scalar(0.5, undefined, TOL);
  return [
    op('Mul', [op('Mul', [x, half], { commutative: true }), inner], { commutative: true }),
    op('Mul', [op('Mul', [x, inner], { commutative: true }), half], { commutative: true }),
    op('Mul', [x, op('Mul', [inner, half], { commutative: true })], { commutative: true }),
  ];
}

const onePlus = (p: Pattern): Pattern => op('Add', [p, scalar(1, undefined, TOL)], { commutative: true });

const erfInner = onePlus(op('Erf', [anyOf(
  op('Div', [x, scalar(Math.SQRT2, undefined, TOL)]),
  op('Mul', [x, scalar(Math.SQRT1_2, undefined, TOL)], { commutative: true }),
)]));

const cube = anyOf(
  op('Pow', [x, scalar(3)]),
  op('Mul', [x, op('Mul', [x, x])], { commutative: true }),
);
const tanhInner = onePlus(op('Tanh', [op('Mul', [
  op('Add', [x, op('Mul', [cube, scalar(0.044715, undefined, TOL)], { commutative: true })], { commutative: true }),
  scalar(Math.sqrt(2 / Math.PI), undefined, TOL),
], { commutative: true })]));

function floatOnly(value: string, dtype: string | undefined): boolean {
  return !!value && (dtype === 'f32' || dtype === 'f16' || dtype === 'bf16');
}

const geluErf = patternRule({
  name: 'gelu-erf',
  pattern: halfXTimes(erfInner),
  check: (m, ctx) => floatOnly(m.values.get('x')!, ctx.dtype(m.values.get('x')!)),
  replace: (m, ctx) => [makeNode(ctx, `${m.root.name}_gelu`, 'Gelu', '', [m.values.get('x')!], [m.root.outputs[0]])],
});

const geluTanh = patternRule({
  name: 'gelu-tanh',
  pattern: halfXTimes(tanhInner),
  check: (m, ctx) => floatOnly(m.values.get('x')!, ctx.dtype(m.values.get('x')!)),
  replace: (m, ctx) => {
    ctx.useDomain(MS);
    return [makeNode(ctx, `${m.root.name}_fastgelu`, 'FastGelu', MS, [m.values.get('x')!], [m.root.outputs[0]])];
  },
});

const silu = patternRule({
  name: 'silu',
  pattern: op('Mul', [x, op('Sigmoid', [x])], { commutative: true }),
  check: (m, ctx) => floatOnly(m.values.get('x')!, ctx.dtype(m.values.get('x')!)),
  replace: (m, ctx) => [makeNode(ctx, `${m.root.name}_silu`, 'Swish', '', [m.values.get('x')!], [m.root.outputs[0]], { alpha: floatAttr(1) })],
});

const swiglu = patternRule({
  name: 'swiglu',
  pattern: op('Mul', [op('Swish', [capture('gate')], { name: 'swish' }), capture('up')], { commutative: true }),
  check: (m, ctx) => {
    const gate = ctx.type(m.values.get('gate')!), up = ctx.type(m.values.get('up')!);
    if (!gate?.shape || !up?.shape || gate.dtype !== up.dtype || !floatOnly('g', gate.dtype)) return false;
    return gate.shape.length === up.shape.length && gate.shape.every((d, i) => d === up.shape![i]);
  },
  replace: (m, ctx) => {
    const alpha = m.nodes.get('swish')!.attributes.get('alpha');
    return [makeNode(ctx, `${m.root.name}_swiglu`, 'SwiGLU', '', [m.values.get('gate')!, m.values.get('up')!], [m.root.outputs[0]],
      { alpha: floatAttr(alpha?.kind === 'float' ? alpha.value : 1) })];
  },
});

/** SiLU before SwiGLU: the SwiGLU pattern reads the Swish the SiLU rule makes. */
export const activationRules: RewriteRule[] = [geluErf, geluTanh, silu, swiglu];
