import type { Attribute, Model, Node } from '../ir/graph.js';
import type { IndicesPerByte, QuantInfo, WeightBits } from '../ir/quant.js';
import { LlmccError, describeNode } from '../ir/errors.js';
import { Tensor } from '../ir/tensor.js';
import { inferTypes } from '../ir/infer.js';
import { verifyModel } from '../ir/verify.js';
import type { Pass, PassResult } from './pass.js';
import { dropUnreadInitializers, freshName, intAttr, readIntAttr, valueDtype, weightFromTensor } from './graph-edit.js';
import { checkAccumulationFits, checkGroupLayout, storedEntries, type TableKind } from './lut/tables.js';
import { DEFAULT_PACK_ABOVE_PLANE_BYTES, canPackTwoPerByte, checkRowsPerTile, relayoutWeights } from './lut/bitplanes.js';

/**
 * LUT lowering (T-MAC / LUT Tensor Core): every llmcc.QuantMatMul with 1–4 bit (or ternary)
 * constant weights becomes
 *   LutPrecompute(A) → (tables, table_scales, act_sums)
 *   LutMatMul(tables, table_scales, act_sums, planes, scales/2, offsets, bias?)
 * with the weights re-laid offline (symmetrized bit-planes, passes/lut/bitplanes.ts), or, when
 * they are not constants (MatMulNBits weights fed as graph inputs), at run time by an
 * llmcc.LutPackWeights node computing the same re-layout. All
 * matmuls reading the same activation with the same group_size share one LutPrecompute (Q/K/V
 * projections compute their tables once). 8-bit weights stay QuantMatMul: a 2^(g−1) table per
 * 8 planes costs more than multiplying.
 */

export interface LutLowerOptions {
  /** Activations per table (default 4: 8 stored entries). */
  g?: number;
  /** Table entry type (default 'i8'). */
  table?: TableKind;
  /** Rows interleaved per tile in the plane layout (default 1). */
  rowsPerTile?: number;
  /**
   * Treat rowsPerTile as a target's preference: a layer whose N is not a multiple of it keeps
   * 1 row per tile instead of being an error (default false).
   */
  rowsPerTileFallback?: boolean;
  /**
   * Store the half scales and offsets tile by tile like the planes (attribute tiled_scales = 1,
   * passes/lut/bitplanes.ts scaleOffset) when a layer has more than one row per tile (default false).
   */
  tiledScales?: boolean;
  /**
   * Plane indices per stored byte (attribute indices_per_byte, passes/lut/bitplanes.ts): 2 packs
   * groups 2j, 2j + 1 into one byte where g ≤ 4 and K/g is even (other layers keep 1); 'auto':
   * 2 when the model's planes at one index per byte take more than `packAbovePlaneBytes`
   * (they stream from memory, where half the bytes win), else 1. Default 1.
   */
  indicesPerByte?: IndicesPerByte | 'auto';
  /** The 'auto' threshold in bytes (default DEFAULT_PACK_ABOVE_PLANE_BYTES). */
  packAbovePlaneBytes?: number;
}

/** Bytes of the planes at one index per byte of every weight this pass would lower. */
function lowerablePlaneBytes(model: Model, g: number): number {
  const seen = new Set<string>();
  let bytes = 0;
  for (const node of model.graph.nodes) {
    if (node.domain !== LLMCC || node.op !== 'QuantMatMul') continue;
    const bits = readIntAttr(node, 'bits');
    if (![1, 2, 3, 4].includes(bits) || seen.has(node.inputs[1])) continue;
    seen.add(node.inputs[1]);
    bytes += (bits * readIntAttr(node, 'N') * readIntAttr(node, 'K')) / g;
  }
  return bytes;
}

const LLMCC = 'llmcc';




interface Precompute {
  node: Node;
  /** Index in the original node list of the first matmul using it: it is placed before that one. */
  before: number;
}

function emptyStats(): Record<string, number> {
  return {
    lowered: 0,
    kept8Bit: 0,
    /** Weights that are not constants, re-laid at run time by an llmcc.LutPackWeights node. */
    runtimePacked: 0,
    precomputes: 0,
    sharedTableConsumers: 0,
    tableEntriesPerGroup: 0,
    planeBytesPacked: 0,
    planeBytesStored: 0,
    tableBytesPerRow: 0,
    /** Largest |I| a block can reach with int8 tables (int32 accumulator; int16 when ≤ 32767). */
    maxBlockAccumulator: 0,
  };
}

export const lutLowerPass: Pass<LutLowerOptions> = {
  name: 'lut-lower',
  run(model: Model, options: LutLowerOptions = {}): PassResult {
    const g = options.g ?? 4;
    const table = options.table ?? 'i8';
    const preferredRowsPerTile = options.rowsPerTile ?? 1;
    checkRowsPerTile(preferredRowsPerTile, preferredRowsPerTile);
    if (table !== 'i8' && table !== 'f32') throw new LlmccError(`lut-lower: table must be 'i8' or 'f32', got '${String(table)}'`);
    const graph = model.graph;
    const stats = emptyStats();
    const wantedPerByte = options.indicesPerByte !== 'auto' ? options.indicesPerByte ?? 1
      : lowerablePlaneBytes(model, g) > (options.packAbovePlaneBytes ?? DEFAULT_PACK_ABOVE_PLANE_BYTES) ? 2 : 1;
    stats.tableEntriesPerGroup = storedEntries(g);
    // Types of activations (for the output dtype); tolerate graphs inference cannot finish.
    try {
      inferTypes(graph, model.opsets);
    } catch {
      // dtypeOf falls back to f32; verifyModel below reports real problems.
    }

    const precomputes = new Map<string, Precompute>();
    const replaced = new Map<Node, Node>();
    const retiredWeights = new Set<string>();
    const relaidWeights = new Map<string, string[]>();
    /** Run-time re-layout nodes → the position of the first matmul using them (placed before it). */
    const packs = new Map<Node, number>();
    // Readers left per weight: once every reader of a code tensor is lowered, it goes at once,
    // so a 1B model never holds all its codes and all its planes together.
    const readersLeft = new Map<string, number>();
    for (const n of graph.nodes) for (const name of n.inputs) if (name) readersLeft.set(name, (readersLeft.get(name) ?? 0) + 1);
    const pinned = new Set([...graph.inputs, ...graph.outputs].map((v) => v.name));
    const retireRead = (name: string): void => {
      const left = (readersLeft.get(name) ?? 0) - 1;
      readersLeft.set(name, left);
      if (left === 0 && !pinned.has(name)) {
        graph.initializers.delete(name);
        graph.valueInfo.delete(name);
      }
    };

    graph.nodes.forEach((node, position) => {
      if (node.domain !== LLMCC || node.op !== 'QuantMatMul') return;
      const where = describeNode(node);
      const bits = readIntAttr(node, 'bits');
      const groupSize = readIntAttr(node, 'group_size');
      const ternary = readIntAttr(node, 'ternary', 0) === 1;
      const K = readIntAttr(node, 'K');
      const N = readIntAttr(node, 'N');
      if (bits === 8) {
        stats.kept8Bit++;
        return;
      }
      if (![1, 2, 3, 4].includes(bits)) throw new LlmccError(`lut-lower: unsupported bits = ${bits}`, where);
      const [a, codesName, scalesName, zeroName = '', biasName = ''] = node.inputs;
      const codesW = graph.initializers.get(codesName);
      const scalesW = graph.initializers.get(scalesName);
      const zeroW = zeroName ? graph.initializers.get(zeroName) : undefined;
      const constantWeights = codesW && scalesW && (!zeroName || zeroW);
      checkGroupLayout(K, g, groupSize, where);
      const rowsPerTile = options.rowsPerTileFallback && N % preferredRowsPerTile !== 0 ? 1 : preferredRowsPerTile;
      checkRowsPerTile(N, rowsPerTile, where);
      const tiledScales = (options.tiledScales ?? false) && rowsPerTile > 1;
      const perByte: IndicesPerByte = wantedPerByte === 2 && canPackTwoPerByte(g, K / g) ? 2 : 1;
      const tileAttrs: [string, Attribute][] = [
        ['rows_per_tile', intAttr(rowsPerTile)],
        ...(tiledScales ? [['tiled_scales', intAttr(1)] as [string, Attribute]] : []),
        ...(perByte === 2 ? [['indices_per_byte', intAttr(2)] as [string, Attribute]] : []),
      ];
      if (table === 'i8') {
        const bounds = checkAccumulationFits(bits, g, groupSize, where);
        stats.maxBlockAccumulator = Math.max(stats.maxBlockAccumulator, bounds.perBlock);
      }

      const groups = K / g;
      const blocks = K / groupSize;
      // A weight read by several matmuls (tied embeddings, shared layers) is re-laid once.
      const weightKey = JSON.stringify([codesName, scalesName, zeroName, bits, ternary, groupSize]);
      let relaid = relaidWeights.get(weightKey);
      if (!relaid && !constantWeights) {
        // Weights computed at run time (e.g. MatMulNBits fed as graph inputs): re-laid by a node.
        const base = codesName.replace(/[^A-Za-z0-9_]/g, '_');
        const outputs = ['planes', 'half_scales', 'offsets'].map((suffix) => freshName(graph, `${base}_${suffix}`));
        const pack: Node = {
          name: freshName(graph, `${base}_lut_pack`),
          domain: LLMCC,
          op: 'LutPackWeights',
          inputs: zeroName ? [codesName, scalesName, zeroName] : [codesName, scalesName],
          outputs,
          attributes: new Map<string, Attribute>([
            ['bits', intAttr(bits)],
            ['ternary', intAttr(ternary ? 1 : 0)],
            ['g', intAttr(g)],
            ['group_size', intAttr(groupSize)],
            ['K', intAttr(K)],
            ['N', intAttr(N)],
            ...tileAttrs,
          ]),
        };
        graph.nodes.push(pack);
        packs.set(pack, position);
        relaid = outputs;
        relaidWeights.set(weightKey, relaid);
        stats.runtimePacked++;
      }
      if (!relaid) {
        const weights = relayoutWeights({
          codes: codesW!.load().numbers(),
          scales: scalesW!.load().numbers(),
          zeroPoints: zeroW?.load().numbers(),
          bits, ternary, N, K, groupSize,
        }, g, rowsPerTile, where, tiledScales, perByte);
        const planesName = freshName(graph, `${codesName}_planes`);
        const planesShape = [bits, N, groups / perByte];
        graph.initializers.set(planesName, weightFromTensor(planesName, new Tensor('u8', planesShape, weights.planes)));
        const quant: QuantInfo = {
          bits: bits as WeightBits,
          ternary,
          groupSize,
          // The quantizer's word wins: symmetric 2-bit (mid-rise) codes carry explicit z = 1.5.
          symmetric: graph.valueInfo.get(codesName)?.quant?.symmetric ?? !zeroW,
          scaleDtype: 'f32',
          layout: { kind: 'bitplanes', g, rowsPerTile, ...(perByte === 2 ? { indicesPerByte: perByte } : {}) },
        };
        graph.valueInfo.set(planesName, { dtype: 'u8', shape: planesShape, quant });
        const halfScalesName = freshName(graph, `${scalesName}_half`);
        graph.initializers.set(halfScalesName, weightFromTensor(halfScalesName, new Tensor('f32', [N, blocks], weights.scales)));
        const offsetsName = freshName(graph, `${scalesName}_offsets`);
        graph.initializers.set(offsetsName, weightFromTensor(offsetsName, new Tensor('f32', [N, blocks], weights.offsets)));
        relaid = [planesName, halfScalesName, offsetsName];
        relaidWeights.set(weightKey, relaid);
        stats.planeBytesPacked += (bits * N * K) / 8;
        stats.planeBytesStored += (bits * N * groups) / perByte;
      }
      const [planesName, halfScalesName, offsetsName] = relaid;
      if (constantWeights) {
        for (const name of [codesName, scalesName, zeroName]) {
          if (!name) continue;
          retiredWeights.add(name);
          retireRead(name);
        }
      }

      const key = `${a}\u0000${groupSize}`;
      let pre = precomputes.get(key);
      if (pre) {
        stats.sharedTableConsumers++;
      } else {
        const base = a.replace(/[^A-Za-z0-9_]/g, '_');
        const outputs = [`${base}_lut_tables`, `${base}_lut_table_scales`, `${base}_lut_act_sums`].map((n) => freshName(graph, n));
        const preNode: Node = {
          name: freshName(graph, `${base}_lut_precompute`),
          domain: LLMCC,
          op: 'LutPrecompute',
          inputs: [a],
          outputs,
          attributes: new Map<string, Attribute>([
            ['g', intAttr(g)],
            ['group_size', intAttr(groupSize)],
            ['table', { kind: 'string', value: table }],
          ]),
        };
        // Registered in the graph now so freshName sees its names; placed properly below.
        graph.nodes.push(preNode);
        pre = { node: preNode, before: position };
        precomputes.set(key, pre);
        stats.precomputes++;
        stats.tableBytesPerRow += groups * storedEntries(g) * (table === 'i8' ? 1 : 4);
      }
      const lowered: Node = {
        name: freshName(graph, `${node.name}_lut`),
        domain: LLMCC,
        op: 'LutMatMul',
        inputs: [...pre.node.outputs, planesName, halfScalesName, offsetsName, ...(biasName ? [biasName] : [])],
        outputs: [...node.outputs],
        attributes: new Map<string, Attribute>([
          ['bits', intAttr(bits)],
          ['g', intAttr(g)],
          ['group_size', intAttr(groupSize)],
          ['K', intAttr(K)],
          ['N', intAttr(N)],
          ...tileAttrs,
          ['output_dtype', { kind: 'string', value: valueDtype(graph, a) }],
        ]),
      };
      replaced.set(node, lowered);
      stats.lowered++;
    });

    if (!stats.lowered) return { changed: false, stats };

    const preNodes = new Set([...precomputes.values()].map((p) => p.node));
    const original = graph.nodes.filter((n) => !preNodes.has(n) && !packs.has(n));
    const ordered: Node[] = [];
    original.forEach((node, position) => {
      for (const [pack, before] of packs) if (before === position) ordered.push(pack);
      for (const pre of precomputes.values()) if (pre.before === position) ordered.push(pre.node);
      ordered.push(replaced.get(node) ?? node);
    });
    graph.nodes = ordered;

    // The old codes/scales/zero points go when nothing else reads them.
    dropUnreadInitializers(graph, retiredWeights);
    verifyModel(model);
    return { changed: true, stats };
  },
};
