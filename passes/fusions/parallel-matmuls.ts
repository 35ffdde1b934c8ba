import type { Node } from '../../ir/graph.js';
import { Tensor } from '../../ir/tensor.js';
import type { RewriteContext } from '../rewrite/context.js';
import { int64s } from '../rewrite/context.js';
import { defineRule, type RewriteRule } from '../rewrite/rewriter.js';
import { makeNode } from './common.js';

/**
 * Parallel projections of one activation (Q/K/V, or SwiGLU's gate/up) into one wide MatMul:
 * MatMul(x, W_i) for constant 2-D W_i [K, N_i] become MatMul(x, concat_N(W_i)) → Split, so a
 * later weight quantization and LUT lowering see one matmul (one table precompute, one weight
 * stream). When every projection is followed by its own constant bias Add ([N_i]), the biases
 * are concatenated too and added once before the Split. Runs before quantization: concatenating
 * along N keeps each output column's weights, and so its quantization groups along K, unchanged.
 */

interface Projection {
  matmul: Node;
  weight: string;
  n: number;
  /** The bias Add reading this projection, when every member has one. */
  biasAdd?: Node;
  bias?: string;
}

interface Group {
  x: string;
  members: Projection[];
  withBias: boolean;
}

function projectionOf(node: Node, ctx: RewriteContext): Projection | undefined {
  if (node.domain !== '' || node.op !== 'MatMul') return undefined;
  const [x, w] = node.inputs;
  const shape = ctx.shape(w);
  if (!x || ctx.isConstant(x) || !ctx.isConstant(w) || !shape || shape.length !== 2) return undefined;
  if (typeof shape[1] !== 'number' || ctx.isGraphOutput(node.outputs[0])) return undefined;
  return { matmul: node, weight: w, n: shape[1] };
}

/** The constant [N] bias Add that is the only reader of the projection, if any. */
function biasOf(p: Projection, ctx: RewriteContext): { add: Node; bias: string } | undefined {
  const readers = ctx.readers(p.matmul.outputs[0]);
  if (readers.length !== 1) return undefined;
  const add = readers[0];
  if (add.domain !== '' || add.op !== 'Add') return undefined;
  const bias = add.inputs[0] === p.matmul.outputs[0] ? add.inputs[1] : add.inputs[0];
  const shape = ctx.shape(bias);
  if (!ctx.isConstant(bias) || !shape || shape.length !== 1 || shape[0] !== p.n) return undefined;
  if (ctx.dtype(bias) !== ctx.dtype(p.weight)) return undefined;
  return { add, bias };
}

function findGroup(root: Node, ctx: RewriteContext): Group | undefined {
  const first = projectionOf(root, ctx);
  if (!first) return undefined;
  const x = root.inputs[0];
  const kDim = ctx.shape(first.weight)![0];
  const dtype = ctx.dtype(first.weight);
  const members: Projection[] = [];
  const seen = new Set<Node>();
  for (const reader of ctx.readers(x)) {
    if (seen.has(reader)) continue;
    seen.add(reader);
    const p = reader.inputs[0] === x ? projectionOf(reader, ctx) : undefined;
    if (p && ctx.shape(p.weight)![0] === kDim && ctx.dtype(p.weight) === dtype) members.push(p);
  }
  // Only the first projection in graph order roots the group (so it fires once).
  if (members.length < 2 || members[0].matmul !== root) return undefined;
  const biases = members.map((p) => biasOf(p, ctx));
  const withBias = biases.every((b) => b !== undefined);
  if (withBias) members.forEach((p, i) => { p.biasAdd = biases[i]!.add; p.bias = biases[i]!.bias; });
  return { x, members, withBias };
}

/** Concatenates constants along `axis` (0 for 1-D biases, 1 for [K, N] weights). */
function concatColumns(tensors: Tensor[]): Tensor {
  const rows = tensors[0].rank === 2 ? tensors[0].shape[0] : 1;
  const widths = tensors.map((t) => (t.rank === 2 ? t.shape[1] : t.shape[0]));
  const total = widths.reduce((a, b) => a + b, 0);
  // Float32Array holds f32/f16/bf16 values exactly at half the memory of f64.
  const float32 = ['f32', 'f16', 'bf16'].includes(tensors[0].dtype);
  const out = float32 ? new Float32Array(rows * total) : new Float64Array(rows * total);
  let col = 0;
  tensors.forEach((t, i) => {
    const v = t.numbers();
    for (let r = 0; r < rows; r++) for (let c = 0; c < widths[i]; c++) out[r * total + col + c] = v[r * widths[i] + c];
    col += widths[i];
  });
  return Tensor.fromNumbers(tensors[0].dtype, tensors[0].rank === 2 ? [rows, total] : [total], out);
}

function sizesOf(members: readonly Projection[]): number {
  return members.reduce((total, p) => total + p.n, 0);
}

function merge(group: Group, ctx: RewriteContext): void {
  const graph = ctx.graph;
  const { members, withBias } = group;
  const base = members[0].matmul.name;
  // Lazy: the members' weights are read (and concatenated) only when the merged one is.
  const loaders = members.map((p) => ctx.constantLoader(p.weight)!);
  const k = ctx.shape(members[0].weight)![0] as number;
  const weight = ctx.addLazyConstant(`${base}_merged_weight`, ctx.dtype(members[0].weight)!, [k, sizesOf(members)],
    () => concatColumns(loaders.map((load) => load())));
  const wide = ctx.freshName(`${base}_merged`);
  const nodes: Node[] = [makeNode(ctx, `${base}_merged`, 'MatMul', '', [group.x, weight], [wide])];
  let split = wide;
  if (withBias) {
    const bias = ctx.addConstant(`${base}_merged_bias`, concatColumns(members.map((p) => ctx.constant(p.bias!)!)));
    split = ctx.freshName(`${base}_merged_biased`);
    nodes.push(makeNode(ctx, `${base}_merged_bias`, 'Add', '', [wide, bias], [split]));
  }
  const outputs = members.map((p) => (withBias ? p.biasAdd!.outputs[0] : p.matmul.outputs[0]));
  const sizes = members.map((p) => p.n);
  if (ctx.opset('') >= 13) {
    const splitSizes = ctx.addConstant(`${base}_split_sizes`, int64s(sizes));
    nodes.push(makeNode(ctx, `${base}_split`, 'Split', '', [split, splitSizes], outputs, { axis: -1 }));
  } else {
    nodes.push(makeNode(ctx, `${base}_split`, 'Split', '', [split], outputs, { axis: -1, split: sizes }));
  }
  const removed = new Set<Node>(members.flatMap((p) => (p.biasAdd ? [p.matmul, p.biasAdd] : [p.matmul])));
  // The merged nodes stand where the first projection stood: x and the constants precede it.
  const at = graph.nodes.indexOf(members[0].matmul);
  const kept = graph.nodes.filter((n) => !removed.has(n));
  const next = graph.nodes.slice(at).find((n) => !removed.has(n));
  const insertAt = next ? kept.indexOf(next) : kept.length;
  graph.nodes = [...kept.slice(0, insertAt), ...nodes, ...kept.slice(insertAt)];
  for (const o of outputs) graph.valueInfo.delete(o);
}

export const mergeParallelMatMuls: RewriteRule = defineRule<Group>('merge-parallel-matmuls', findGroup, merge);
