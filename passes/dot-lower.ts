import type { Attribute, Model, Node } from '../ir/graph.js';
import { describeNode } from '../ir/errors.js';
import { Tensor } from '../ir/tensor.js';
import { inferTypes } from '../ir/infer.js';
import { verifyModel } from '../ir/verify.js';
import type { Pass, PassResult } from './pass.js';
import { dropUnreadInitializers, freshName, intAttr, readIntAttr, valueDtype, weightFromTensor } from './graph-edit.js';
import { DOT_TILE_ROWS, dotGroupBlocker, dotLayout, dotScalesAndOffsets, packDotWeights } from './dot/layout.js';

/**
 * Dot lowering (bitnet.cpp I2_S / llama.cpp Q8 style): an llmcc.QuantMatMul with constant
 * weights whose width is in `widths` becomes
 *   QuantizeActQ8(A) → (q, act_scales, act_sums)
 *   QuantMatMulQ8(q, act_scales, act_sums, packed, half scales, offsets, bias?)
 * with the codes packed offline in the dot layout (passes/dot/layout.ts). Matmuls reading the
 * same activation with the same group_size share one QuantizeActQ8. A layer the layout cannot
 * take (group_size not a multiple of a chunk, zero points neither whole nor half, weights
 * computed at run time) is left for the LUT lowering, and counted.
 */

/** A weight width as the CLI names it. */
export type DotWidth = '1' | '2' | '3' | '4' | '8' | 'ternary';
export const DOT_WIDTHS: readonly DotWidth[] = ['1', '2', '3', '4', '8', 'ternary'];

export interface DotLowerOptions {
  /** Widths lowered to the dot path; the others stay QuantMatMul for the LUT lowering. */
  widths: readonly DotWidth[];
}

const LLMCC = 'llmcc';




function emptyStats(): Record<string, number> {
  return { lowered: 0, quantizers: 0, sharedQuantizerConsumers: 0, packedBytes: 0, skippedGroupSize: 0, skippedZeroPoints: 0, skippedRuntimeWeights: 0 };
}

export const dotLowerPass: Pass<DotLowerOptions> = {
  name: 'dot-lower',
  run(model: Model, options: DotLowerOptions): PassResult {
    const graph = model.graph;
    const stats = emptyStats();
    const widths = new Set(options.widths);
    if (widths.size === 0) return { changed: false, stats };
    try {
      inferTypes(graph, model.opsets);
    } catch {
      // dtypeOf falls back to f32; verifyModel below reports real problems.
    }
    const quantizers = new Map<string, { node: Node; before: number }>();
    const replaced = new Map<Node, Node>();
    const retired = new Set<string>();
    const packedByWeight = new Map<string, string[]>();

    graph.nodes.forEach((node, position) => {
      if (node.domain !== LLMCC || node.op !== 'QuantMatMul') return;
      const bits = readIntAttr(node, 'bits');
      const ternary = readIntAttr(node, 'ternary', 0) === 1;
      const width: DotWidth = ternary ? 'ternary' : (String(bits) as DotWidth);
      if (!widths.has(width)) return;
      const groupSize = readIntAttr(node, 'group_size');
      const K = readIntAttr(node, 'K');
      const N = readIntAttr(node, 'N');
      if (dotGroupBlocker(bits, groupSize)) {
        stats.skippedGroupSize++;
        return;
      }
      const [a, codesName, scalesName, zeroName = '', biasName = ''] = node.inputs;
      const codesW = graph.initializers.get(codesName);
      const scalesW = graph.initializers.get(scalesName);
      const zeroW = zeroName ? graph.initializers.get(zeroName) : undefined;
      if (!codesW || !scalesW || (zeroName && !zeroW)) {
        stats.skippedRuntimeWeights++;
        return;
      }
      const layout = dotLayout({ bits, ternary, groupSize, K, N }, describeNode(node));
      const weightKey = JSON.stringify([codesName, scalesName, zeroName, bits, ternary, groupSize]);
      let packed = packedByWeight.get(weightKey);
      if (!packed) {
        const tiled = dotScalesAndOffsets(scalesW.load().numbers(), zeroW?.load().numbers(), layout);
        if (!tiled) {
          stats.skippedZeroPoints++;
          return;
        }
        const bytes = packDotWeights(codesW.load().numbers(), layout);
        const names = [`${codesName}_dot`, `${scalesName}_dot_half`, `${scalesName}_dot_offsets`].map((n) => freshName(graph, n));
        const tiles = [layout.tiles, layout.groups];
        graph.initializers.set(names[0], weightFromTensor(names[0], new Tensor('u8', [...tiles, layout.groupBytes], bytes)));
        graph.initializers.set(names[1], weightFromTensor(names[1], new Tensor('f32', [...tiles, DOT_TILE_ROWS], tiled.halfScales)));
        graph.initializers.set(names[2], weightFromTensor(names[2], new Tensor('i32', [...tiles, DOT_TILE_ROWS], tiled.offsets)));
        packed = names;
        packedByWeight.set(weightKey, packed);
        stats.packedBytes += bytes.length;
      }
      for (const name of [codesName, scalesName, zeroName]) if (name) retired.add(name);

      const key = `${a}\u0000${groupSize}`;
      let quantizer = quantizers.get(key);
      if (quantizer) {
        stats.sharedQuantizerConsumers++;
      } else {
        const base = a.replace(/[^A-Za-z0-9_]/g, '_');
        const outputs = [`${base}_q8`, `${base}_q8_scales`, `${base}_q8_sums`].map((n) => freshName(graph, n));
        const qNode: Node = {
          name: freshName(graph, `${base}_quantize_q8`),
          domain: LLMCC,
          op: 'QuantizeActQ8',
          inputs: [a],
          outputs,
          attributes: new Map<string, Attribute>([['group_size', intAttr(groupSize)]]),
        };
        // In the graph now so freshName sees its names; placed before its first reader below.
        graph.nodes.push(qNode);
        quantizer = { node: qNode, before: position };
        quantizers.set(key, quantizer);
        stats.quantizers++;
      }
      replaced.set(node, {
        name: freshName(graph, `${node.name}_dot`),
        domain: LLMCC,
        op: 'QuantMatMulQ8',
        inputs: [...quantizer.node.outputs, ...packed, ...(biasName ? [biasName] : [])],
        outputs: [...node.outputs],
        attributes: new Map<string, Attribute>([
          ['bits', intAttr(bits)],
          ['ternary', intAttr(ternary ? 1 : 0)],
          ['group_size', intAttr(groupSize)],
          ['K', intAttr(K)],
          ['N', intAttr(N)],
          ['output_dtype', { kind: 'string', value: valueDtype(graph, a) }],
        ]),
      });
      stats.lowered++;
    });

    if (!stats.lowered) return { changed: false, stats };
    const quantizerNodes = new Set([...quantizers.values()].map((q) => q.node));
    const original = graph.nodes.filter((n) => !quantizerNodes.has(n));
    const ordered: Node[] = [];
    original.forEach((node, position) => {
      for (const q of quantizers.values()) if (q.before === position) ordered.push(q.node);
      ordered.push(replaced.get(node) ?? node);
    });
    graph.nodes = ordered;
    // The codes, scales and zero points go when nothing else (a layer left for LUT) reads them.
    dropUnreadInitializers(graph, retired);
    verifyModel(model);
    return { changed: true, stats };
  },
};
