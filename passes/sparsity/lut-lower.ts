import type { Attribute, Model, Node } from '../../ir/graph.js';
import { LlmccError, describeNode } from '../../ir/errors.js';
import { Tensor } from '../../ir/tensor.js';
import { Attrs } from '../../ir/ops/attrs.js';
import { inferTypes } from '../../ir/infer.js';
import { verifyModel } from '../../ir/verify.js';
import { defaultZeroPoint } from '../../ir/ops/llmcc/QuantMatMul.js';
import { sparseQuantParams } from '../../ir/ops/llmcc/SparseQuantMatMul.js';
import { dropUnreadInitializers, freshName, weightFromTensor } from '../graph-edit.js';
import type { Pass, PassResult } from '../pass.js';
import type { TableKind } from '../lut/tables.js';
import { relayoutSparseWeights, sparseBlockBound } from './lut.js';
import { unpackIndices } from './pack.js';

/**
 * sparse-lut-lower: every llmcc.SparseQuantMatMul with 1–4 bit constant weights becomes
 *   SparseLutPrecompute(A) → (tables, table_scales)
 *   SparseLutMatMul(tables, table_scales, planes, scales/2, offsets?, bias?)
 * with the kept codes re-laid as sparse table indices (passes/sparsity/lut.ts). Matmuls
 * reading the same activation with the same pattern and group size share one precompute.
 * 8-bit layers and weights that are not constants stay SparseQuantMatMul (the
 * dequantizing kernel runs them). The table precompute is not fused into norms (the dense
 * fusion pass knows only LutPrecompute).
 */
export interface SparseLutLowerOptions {
  table?: TableKind;
  /** Rows interleaved per tile (the target's SIMD width); falls back to 1 when N is not a multiple. */
  rowsPerTile?: number;
}

function int(value: number): Attribute {
  return { kind: 'int', value };
}

export const sparseLutLowerPass: Pass<SparseLutLowerOptions> = {
  name: 'sparse-lut-lower',
  run(model: Model, options: SparseLutLowerOptions = {}): PassResult {
    const table = options.table ?? 'i8';
    const preferredRows = options.rowsPerTile ?? 1;
    const graph = model.graph;
    const stats: Record<string, number> = { lowered: 0, kept: 0, precomputes: 0, sharedTableConsumers: 0, planeBytesStored: 0 };
    try {
      inferTypes(graph, model.opsets);
    } catch {
      // output dtypes fall back to f32; verifyModel below reports real problems
    }
    const precomputes = new Map<string, Node>();
    /** Nodes to insert before a position of the original list. */
    const before = new Map<number, Node[]>();
    const replaced = new Map<Node, Node>();
    const retired = new Set<string>();
    graph.nodes.forEach((node, position) => {
      if (node.domain !== 'llmcc' || node.op !== 'SparseQuantMatMul') return;
      const where = describeNode(node);
      const p = sparseQuantParams(new Attrs(node));
      const [a, valuesName, indicesName, scalesName, zeroName = '', biasName = ''] = node.inputs;
      const weights = [valuesName, indicesName, scalesName, zeroName].filter(Boolean).map((n) => graph.initializers.get(n));
      if (p.bits === 8 || weights.some((w) => !w)) { stats.kept++; return; }
      if (table === 'i8' && sparseBlockBound(p.bits, p.pattern, p.groupSize) > 2 ** 31 - 1) {
        throw new LlmccError(`sparse-lut-lower: group_size ${p.groupSize} could overflow the int32 block sum`, where);
      }
      const rowsPerTile = p.N % preferredRows === 0 ? preferredRows : 1;
      const [values, indices, scales, zeros] = weights.map((w) => w!.load().numbers());
      const relaid = relayoutSparseWeights({
        values, positions: unpackIndices(indices, p.N, p.K, p.pattern), scales, zeroPoints: zeroName ? zeros : undefined,
        bits: p.bits, zeroPoint: defaultZeroPoint(p.bits, p.ternary), N: p.N, K: p.K, groupSize: p.groupSize, pattern: p.pattern,
      }, rowsPerTile);
      const groups = p.K / p.pattern.m;
      const blocks = p.K / p.groupSize;
      const planes = freshName(graph, `${valuesName}_planes`);
      graph.initializers.set(planes, weightFromTensor(planes, new Tensor('u8', [p.bits, p.N, groups], relaid.planes)));
      const sourceQuant = graph.valueInfo.get(valuesName)?.quant;
      graph.valueInfo.set(planes, {
        dtype: 'u8', shape: [p.bits, p.N, groups],
        quant: {
          bits: p.bits as 1 | 2 | 3 | 4, ternary: p.ternary, groupSize: p.groupSize, symmetric: sourceQuant?.symmetric ?? !zeroName,
          scaleDtype: 'f32', layout: { kind: 'bitplanes', g: p.pattern.m, rowsPerTile }, sparsity: { ...p.pattern },
        },
      });
      const halfScales = freshName(graph, `${scalesName}_half`);
      graph.initializers.set(halfScales, weightFromTensor(halfScales, new Tensor('f32', [p.N, blocks], relaid.scales)));
      let offsets = '';
      if (relaid.offsets) {
        offsets = freshName(graph, `${scalesName}_offsets`);
        graph.initializers.set(offsets, weightFromTensor(offsets, new Tensor('f32', [p.N, blocks], relaid.offsets)));
      }
      stats.planeBytesStored += relaid.planes.length;
      for (const name of [valuesName, indicesName, scalesName, zeroName]) if (name) retired.add(name);

      const key = `${a}\u0000${p.pattern.n}:${p.pattern.m}\u0000${p.groupSize}`;
      let pre = precomputes.get(key);
      if (pre) {
        stats.sharedTableConsumers++;
      } else {
        const base = a.replace(/[^A-Za-z0-9_]/g, '_');
        pre = {
          name: freshName(graph, `${base}_sparse_lut_precompute`),
          domain: 'llmcc',
          op: 'SparseLutPrecompute',
          inputs: [a],
          outputs: [freshName(graph, `${base}_sparse_tables`), freshName(graph, `${base}_sparse_table_scales`)],
          attributes: new Map<string, Attribute>([
            ['sparsity_n', int(p.pattern.n)], ['sparsity_m', int(p.pattern.m)], ['group_size', int(p.groupSize)],
            ['table', { kind: 'string', value: table }],
          ]),
        };
        // Registered now so freshName sees its names; placed before its first consumer below.
        graph.nodes.push(pre);
        precomputes.set(key, pre);
        before.set(position, [...(before.get(position) ?? []), pre]);
        stats.precomputes++;
      }
      const inputs = [...pre.outputs, planes, halfScales, offsets, biasName];
      while (inputs[inputs.length - 1] === '') inputs.pop();
      replaced.set(node, {
        name: freshName(graph, `${node.name}_sparse_lut`),
        domain: 'llmcc',
        op: 'SparseLutMatMul',
        inputs,
        outputs: [...node.outputs],
        attributes: new Map<string, Attribute>([
          ['bits', int(p.bits)], ['sparsity_n', int(p.pattern.n)], ['sparsity_m', int(p.pattern.m)],
          ['group_size', int(p.groupSize)], ['K', int(p.K)], ['N', int(p.N)], ['rows_per_tile', int(rowsPerTile)],
          ['output_dtype', { kind: 'string', value: graph.valueInfo.get(a)?.dtype ?? graph.inputs.find((i) => i.name === a)?.type?.dtype ?? 'f32' }],
        ]),
      });
      stats.lowered++;
    });
    if (!stats.lowered) return { changed: false, stats };
    const added = new Set([...precomputes.values()]);
    const original = graph.nodes.filter((n) => !added.has(n));
    graph.nodes = original.flatMap((node, position) => [...(before.get(position) ?? []), replaced.get(node) ?? node]);
    dropUnreadInitializers(graph, retired);
    verifyModel(model);
    return { changed: true, stats };
  },
};
