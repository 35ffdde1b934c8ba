import { describe, expect, it } from 'vitest';
import type { Model, Node } from '../ir/graph.js';
import { Tensor } from '../ir/tensor.js';
import { RewriteContext } from '../passes/rewrite/context.js';
import { anyOf, capture, constant, matchAt, matchesAt, op, scalar } from '../passes/rewrite/pattern.js';
import { defineRule, patternRule, replaceMatch, rewriteToFixedPoint } from '../passes/rewrite/rewriter.js';
import { model, node, randomTensor, rng, run } from './helpers/lut-graph.js';

/** The rewrite infrastructure (passes/rewrite): matching, constraints, replacement, fixed point. */

const H = 8;
const x = { name: 'x', dtype: 'f32' as const, shape: [2, H] };

function graphOf(nodes: Node[], outputs: string[], weights: Record<string, Tensor> = {}): Model {
  return model({ inputs: [x, { name: 'y', dtype: 'f32', shape: [2, H] }], outputs: outputs.map((name) => ({ name, dtype: 'f32' })), nodes, weights });
}

const silu = op('Mul', [capture('x'), op('Sigmoid', [capture('x')])], { commutative: true });

function rootOf(m: Model, output: string): Node {
  return m.graph.nodes.find((n) => n.outputs.includes(output))!;
}

describe('pattern matching', () => {
  it('matches commutative inputs in either order and binds captures', () => {
    for (const inputs of [['x', 's'], ['s', 'x']]) {
      const m = graphOf([node('Sigmoid', ['x'], ['s'], {}, ''), node('Mul', inputs, ['out'], {}, '')], ['out']);
      const match = matchAt(silu, rootOf(m, 'out'), new RewriteContext(m));
      expect(match?.values.get('x')).toBe('x');
      expect(match?.matched.length).toBe(2);
    }
  });

  it('does not match without commutativity when the order differs', () => {
    const ordered = op('Mul', [capture('x'), op('Sigmoid', [capture('x')])]);
    const m = graphOf([node('Sigmoid', ['x'], ['s'], {}, ''), node('Mul', ['s', 'x'], ['out'], {}, '')], ['out']);
    expect(matchAt(ordered, rootOf(m, 'out'), new RewriteContext(m))).toBeUndefined();
  });

  it('requires a name captured twice to bind the same value', () => {
    const m = graphOf([node('Sigmoid', ['x'], ['s'], {}, ''), node('Mul', ['y', 's'], ['out'], {}, '')], ['out']);
    expect(matchAt(silu, rootOf(m, 'out'), new RewriteContext(m))).toBeUndefined();
  });

  it('refuses an intermediate read outside the match unless it is shared', () => {
    const nodes = [node('Sigmoid', ['x'], ['s'], {}, ''), node('Mul', ['x', 's'], ['out'], {}, ''), node('Neg', ['s'], ['other'], {}, '')];
    const m = graphOf(nodes, ['out', 'other']);
    const ctx = new RewriteContext(m);
    expect(matchAt(silu, rootOf(m, 'out'), ctx)).toBeUndefined();
    const sharedSigmoid = op('Mul', [capture('x'), op('Sigmoid', [capture('x')], { shared: true })], { commutative: true });
    expect(matchAt(sharedSigmoid, rootOf(m, 'out'), ctx)?.sharedNodes.size).toBe(1);
    // A graph output is a reader outside the match too.
    const m2 = graphOf([node('Sigmoid', ['x'], ['s'], {}, ''), node('Mul', ['x', 's'], ['out'], {}, '')], ['out', 's']);
    expect(matchAt(silu, rootOf(m2, 'out'), new RewriteContext(m2))).toBeUndefined();
  });

  it('checks constants: initializers and Constant nodes, by value, not graph inputs', () => {
    const half = Tensor.fromNumbers('f32', [], [0.5]);
    const pattern = op('Mul', [capture('x'), scalar(0.5, 'c')], { commutative: true });
    const fromInit = graphOf([node('Mul', ['c', 'x'], ['out'], {}, '')], ['out'], { c: half });
    expect(matchAt(pattern, rootOf(fromInit, 'out'), new RewriteContext(fromInit))?.constants.get('c')?.numbers()[0]).toBe(0.5);
    const fromNode = graphOf([node('Constant', [], ['c'], { value: { kind: 'tensor', value: half } }, ''), node('Mul', ['x', 'c'], ['out'], {}, '')], ['out']);
    expect(matchAt(pattern, rootOf(fromNode, 'out'), new RewriteContext(fromNode))).toBeDefined();
    const wrongValue = graphOf([node('Mul', ['x', 'c'], ['out'], {}, '')], ['out'], { c: Tensor.fromNumbers('f32', [], [0.25]) });
    expect(matchAt(pattern, rootOf(wrongValue, 'out'), new RewriteContext(wrongValue))).toBeUndefined();
    const overridable = graphOf([node('Mul', ['x', 'y'], ['out'], {}, '')], ['out'], { y: half });
    expect(matchAt(op('Mul', [capture('x'), constant('c')]), rootOf(overridable, 'out'), new RewriteContext(overridable))).toBeUndefined();
  });

  it('backtracks into later alternatives when the rule check refuses the first match', () => {
    // x is itself a Cast from int32: the "upcast" alternative matches first (x = the int), the
    // plain one second; a rule wanting a float x must still fire, through the second.
    const input = anyOf(op('Cast', [capture('x')], { name: 'cast', shared: true }), capture('x'));
    const pattern = op('Mul', [input, op('Sigmoid', [input])], { commutative: true });
    const m = model({
      inputs: [{ name: 'i', dtype: 'i32', shape: [2, H] }],
      outputs: [{ name: 'out', dtype: 'f32' }],
      nodes: [node('Cast', ['i'], ['c'], { to: 1 }, ''), node('Sigmoid', ['c'], ['s'], {}, ''), node('Mul', ['c', 's'], ['out'], {}, '')],
    });
    const ctx = new RewriteContext(m);
    expect([...matchesAt(pattern, rootOf(m, 'out'), ctx)].map((mm) => mm.values.get('x'))).toEqual(['i', 'c']);
    const rule = patternRule({
      name: 'float-silu',
      pattern,
      check: (mm, c) => c.dtype(mm.values.get('x')!) === 'f32',
      replace: (mm) => [node('Swish', [mm.values.get('x')!], [mm.root.outputs[0]], {}, '', 'swish')],
    });
    expect(rewriteToFixedPoint(m, [rule]).fired).toEqual({ 'float-silu': 1 });
    expect(m.graph.nodes.find((n) => n.op === 'Swish')?.inputs).toEqual(['c']);
  });

  it('tries alternatives in order (anyOf) and op alternatives', () => {
    const pattern = op(['Relu', 'Neg'], [anyOf(op('Cast', [capture('x')], { name: 'cast' }), capture('x'))]);
    const casted = graphOf([node('Cast', ['x'], ['c'], { to: 1 }, ''), node('Neg', ['c'], ['out'], {}, '')], ['out']);
    const m1 = matchAt(pattern, rootOf(casted, 'out'), new RewriteContext(casted));
    expect(m1?.values.get('x')).toBe('x');
    expect(m1?.nodes.has('cast')).toBe(true);
    const plain = graphOf([node('Relu', ['x'], ['out'], {}, '')], ['out']);
    expect(matchAt(pattern, rootOf(plain, 'out'), new RewriteContext(plain))?.nodes.has('cast')).toBe(false);
  });
});

describe('rewriter', () => {
  const toSwish = patternRule({
    name: 'silu',
    pattern: silu,
    replace: (m) => [node('Swish', [m.values.get('x')!], [m.root.outputs[0]], {}, '', 'swish')],
  });

  it('replaces the match, counts firings per rule, and keeps the outputs', () => {
    const make = (): Model => graphOf([
      node('Sigmoid', ['x'], ['s1'], {}, ''), node('Mul', ['s1', 'x'], ['a'], {}, ''),
      node('Sigmoid', ['y'], ['s2'], {}, ''), node('Mul', ['y', 's2'], ['b'], {}, ''),
      node('Add', ['a', 'b'], ['out'], {}, ''),
    ], ['out']);
    const feeds = { x: randomTensor('f32', [2, H], rng(1)), y: randomTensor('f32', [2, H], rng(2)) };
    const m = make();
    const report = rewriteToFixedPoint(m, [toSwish]);
    expect(report.fired).toEqual({ silu: 2 });
    expect(report.converged).toBe(true);
    expect(m.graph.nodes.map((n) => n.op)).toEqual(['Swish', 'Swish', 'Add']);
    const want = run(make(), feeds).get('out')!.numbers();
    const got = run(m, feeds).get('out')!.numbers();
    got.forEach((v, i) => expect(Math.abs(v - want[i])).toBeLessThan(1e-6));
  });

  it('reaches a fixed point across sweeps: a rewrite enabling another fires on a later sweep', () => {
    // Neg(Neg(v)) → Identity-free v; applied to Neg(Neg(Neg(Neg(x)))) it needs two firings.
    const doubleNeg = patternRule({
      name: 'double-neg',
      pattern: op('Neg', [op('Neg', [capture('v')])]),
      replace: (m) => [node('Identity', [m.values.get('v')!], [m.root.outputs[0]], {}, '', `id_${m.root.outputs[0]}`)],
    });
    const identityOfIdentity = patternRule({
      name: 'identity-chain',
      pattern: op('Identity', [op('Identity', [capture('v')])]),
      replace: (m) => [node('Identity', [m.values.get('v')!], [m.root.outputs[0]], {}, '', `id2_${m.root.outputs[0]}`)],
    });
    const m = graphOf([
      node('Neg', ['x'], ['n1'], {}, ''), node('Neg', ['n1'], ['n2'], {}, ''),
      node('Neg', ['n2'], ['n3'], {}, ''), node('Neg', ['n3'], ['out'], {}, ''),
    ], ['out']);
    const report = rewriteToFixedPoint(m, [doubleNeg, identityOfIdentity]);
    expect(report.fired).toEqual({ 'double-neg': 2, 'identity-chain': 1 });
    expect(m.graph.nodes.map((n) => n.op)).toEqual(['Identity']);
  });

  it('stops at the sweep bound when rules keep firing', () => {
    let flips = 0;
    const flip = defineRule('flip', (n) => (n.op === 'Relu' ? n : undefined), (n) => {
      flips++;
      n.op = 'Relu';
    });
    const m = graphOf([node('Relu', ['x'], ['out'], {}, '')], ['out']);
    const report = rewriteToFixedPoint(m, [flip], { maxSweeps: 3 });
    expect(report).toMatchObject({ converged: false, sweeps: 3 });
    expect(flips).toBe(3);
  });

  it('refuses a replacement that does not define the root output', () => {
    const m = graphOf([node('Sigmoid', ['x'], ['s'], {}, ''), node('Mul', ['x', 's'], ['out'], {}, '')], ['out']);
    const ctx = new RewriteContext(m);
    const match = matchAt(silu, rootOf(m, 'out'), ctx)!;
    expect(() => replaceMatch(ctx, match, [node('Swish', ['x'], ['elsewhere'], {}, '')], 'bad')).toThrow(/does not define 'out'/);
  });
});
