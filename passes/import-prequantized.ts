import type { DType } from '../ir/dtype.js';
import { LlmccError, describeNode } from '../ir/errors.js';
import type { Graph, Model, Node, Weight } from '../ir/graph.js';
import type { QuantInfo, WeightBits } from '../ir/quant.js';
import { roundToF16 } from '../ir/float.js';
import { Tensor } from '../ir/tensor.js';
import { verifyModel } from '../ir/verify.js';
import { consumers, freshName, removeDeadCode, weightFromTensor } from './graph-edit.js';
import type { Pass, PassResult } from './pass.js';
import { checkNBitsParams, unpackNBitsCodes, unpackNBitsZeroPoints } from './quant/nbits.js';

/**
 * import-prequantized: turns weights that arrive already quantized into llmcc.QuantMatMul,
 * keeping their codes, scales and zero points as they are (no re-quantization):
 *
 * - `com.microsoft.MatMulNBits` (bits 2–8, codes packed LSB-first in each block's blob; zero
 *   points packed the same way per row, or a float tensor of the scales' size; default
 *   2^(bits−1); optional bias; format in passes/quant/nbits.ts). Constant weights are unpacked
 *   here; weights that are graph values (B / scales / zero points fed at run time) get an
 *   `llmcc.UnpackNBits` node doing the same unpacking at run time in front of the QuantMatMul,
 *   so they still reach the LUT path (lut-lower then re-lays them at run time too). bits 5–7
 *   are carried as 8-bit codes with explicit zero points, which is lossless. A g_idx that is
 *   not the trivial k → k / block_size map is rejected (act-order reordering is not supported).
 * - `DequantizeLinear` of a constant 2-D [K, N] int2/uint2/int4/uint4/int8/uint8 tensor, blocked
 *   along K (axis 0), per output channel (axis 1) or per tensor, feeding MatMul's B. Signed
 *   codes are shifted to offset-binary (code = x + 2^(b−1), zero point + 2^(b−1)), so
 *   code − zero_point = x − x_zero_point exactly.
 *
 * QuantMatMul dequantizes in f32 and accumulates in f64, so the result is bit-identical to
 * the reference MatMulNBits and to DequantizeLinear → MatMul for f32. For f16 weights,
 * DequantizeLinear rounds each weight to f16 while QuantMatMul keeps the f32 product: the
 * pass checks that every product is exactly representable in f16 and otherwise leaves the
 * pair alone (`skipped_dq_inexact`).
 */

function bump(stats: Record<string, number>, key: string): void {
  stats[key] = (stats[key] ?? 0) + 1;
}

function constant(graph: Graph, name: string | undefined): Weight | undefined {
  if (!name || graph.inputs.some((i) => i.name === name)) return undefined;
  return graph.initializers.get(name);
}

function intAttr(node: Node, name: string, fallback?: number): number {
  const attr = node.attributes.get(name);
  if (attr?.kind === 'int') return attr.value;
  if (attr) throw new LlmccError(`attribute '${name}' should be int, got ${attr.kind}`, describeNode(node));
  if (fallback === undefined) throw new LlmccError(`missing required attribute '${name}'`, describeNode(node));
  return fallback;
}

/** What a QuantMatMul node needs, collected by either importer. */
interface Imported {
  bits: WeightBits;
  groupSize: number;
  k: number;
  n: number;
  codes: Uint8Array;
  /** [N, groups] in scaleDtype. */
  scales: Float32Array;
  scaleDtype: 'f32' | 'f16';
  /** [N, groups]; undefined = the default 2^(bits−1). */
  zeroPoints?: Float32Array;
  bias?: Float32Array;
  /** A bias that is a graph value (f32), passed through. */
  runtimeBias?: string;
}

/** Drops explicit zero points that all equal the QuantMatMul default, so the weight reads as symmetric. */
function simplifyZeroPoints(bits: number, zeroPoints: Float32Array | undefined): Float32Array | undefined {
  const fallback = 2 ** (bits - 1);
  return zeroPoints && zeroPoints.every((z) => z === fallback) ? undefined : zeroPoints;
}

function emit(graph: Graph, node: Node, a: string, output: string, w: Imported, base: string): Node {
  const groups = Math.ceil(w.k / w.groupSize);
  const zeroPoints = simplifyZeroPoints(w.bits, w.zeroPoints);
  const info: QuantInfo = {
    bits: w.bits, ternary: false, groupSize: w.groupSize, symmetric: zeroPoints === undefined,
    scaleDtype: w.scaleDtype, layout: { kind: 'codes-nk' },
  };
  const add = (suffix: string, tensor: Tensor): string => {
    const name = freshName(graph, `${base}_${suffix}`);
    graph.initializers.set(name, weightFromTensor(name, tensor));
    return name;
  };
  const codes = add('codes', new Tensor('u8', [w.n, w.k], w.codes));
  graph.valueInfo.set(codes, { dtype: 'u8', shape: [w.n, w.k], quant: info });
  const scales = add('scales', Tensor.fromNumbers(w.scaleDtype, [w.n, groups], w.scales));
  const zp = zeroPoints ? add('zero_points', new Tensor('f32', [w.n, groups], zeroPoints)) : '';
  const bias = w.bias ? add('bias', new Tensor('f32', [w.n], w.bias)) : w.runtimeBias ?? '';
  const inputs = [a, codes, scales, zp, bias];
  while (inputs[inputs.length - 1] === '') inputs.pop();
  return {
    name: node.name,
    domain: 'llmcc',
    op: 'QuantMatMul',
    inputs,
    outputs: [output],
    attributes: new Map([
      ['bits', { kind: 'int', value: w.bits }],
      ['group_size', { kind: 'int', value: w.groupSize }],
      ['ternary', { kind: 'int', value: 0 }],
      ['K', { kind: 'int', value: w.k }],
      ['N', { kind: 'int', value: w.n }],
    ]),
  };
}

function scaleStorage(dtype: DType): 'f32' | 'f16' | undefined {
  // bf16 widens to f32 exactly; f64 scales would not survive the f32 dequantization.
  return dtype === 'f16' ? 'f16' : dtype === 'f32' || dtype === 'bf16' ? 'f32' : undefined;
}

/** A MatMulNBits whose weights are graph values: unpacked at run time by llmcc.UnpackNBits. */
interface RuntimeNBits {
  runtime: true;
  bits: WeightBits;
  originalBits: number;
  groupSize: number;
  k: number;
  n: number;
}

function dtypeOf(graph: Graph, name: string): DType | undefined {
  return graph.valueInfo.get(name)?.dtype ?? graph.inputs.find((i) => i.name === name)?.type?.dtype ?? graph.initializers.get(name)?.dtype;
}

/** MatMulNBits → Imported (constant weights), RuntimeNBits (weights are graph values), or a skip reason. */
function importMatMulNBits(graph: Graph, node: Node): Imported | RuntimeNBits | string {
  const where = describeNode(node);
  const k = intAttr(node, 'K');
  const n = intAttr(node, 'N');
  const bits = intAttr(node, 'bits', 4);
  const blockSize = intAttr(node, 'block_size');
  const params = { k, n, bits, blockSize };
  const { blocks, storedBits } = checkNBitsParams(params, where);
  const [, bName, scaleName, zpName, gIdxName, biasName] = node.inputs;

  const gIdx = gIdxName ? constant(graph, gIdxName) : undefined;
  if (gIdxName && !gIdx) throw new LlmccError('g_idx must be a constant to be imported', where);
  if (gIdx) {
    const values = gIdx.load().numbers();
    if (values.length !== k) throw new LlmccError(`g_idx has ${values.length} elements, expected K=${k}`, where);
    const trivial = values.every((g, i) => g === Math.floor(i / blockSize));
    if (!trivial) throw new LlmccError('g_idx reorders K (act-order); only the trivial g_idx = k / block_size is supported', where);
  }

  const b = constant(graph, bName);
  const scales = constant(graph, scaleName);
  const zp = zpName ? constant(graph, zpName) : undefined;
  const bias = biasName ? constant(graph, biasName) : undefined;
  if (!b || !scales || (zpName && !zp)) {
    // QuantMatMul takes an f32 bias; a run-time bias of another type stays with MatMulNBits.
    if (biasName && !bias && dtypeOf(graph, biasName) !== 'f32') return 'skipped_bias_not_f32';
    return { runtime: true, bits: storedBits, originalBits: bits, groupSize: blockSize, k, n };
  }
  if (biasName && !bias && dtypeOf(graph, biasName) !== 'f32') return 'skipped_bias_not_f32';

  const bValues = b.load().numbers();
  if (b.dtype !== 'u8') throw new LlmccError(`B must be uint8, got ${b.dtype} [${b.shape.join(',')}]`, where);
  const scaleDtype = scaleStorage(scales.dtype);
  if (!scaleDtype) throw new LlmccError(`scales of type ${scales.dtype} are not supported`, where);
  const scaleValues = scales.load().numbers();
  if (scaleValues.length !== n * blocks) throw new LlmccError(`scales have ${scaleValues.length} elements, expected N*blocks=${n * blocks}`, where);
  if (zp && !['u8', 'f32', 'f16', 'bf16'].includes(zp.dtype)) {
    throw new LlmccError(`zero_points of type ${zp.dtype} are not supported (uint8 packed or float)`, where);
  }
  const codes = unpackNBitsCodes(bValues, params, where);
  const zeroPoints = unpackNBitsZeroPoints(zp?.load().numbers(), zp?.dtype === 'u8', params, where);

  let biasValues: Float32Array | undefined;
  if (bias) {
    const values = bias.load().numbers();
    if (values.length !== n) throw new LlmccError(`bias has ${values.length} elements, expected N=${n}`, where);
    biasValues = Float32Array.from(values);
  }
  return {
    bits: storedBits, groupSize: blockSize, k, n, codes,
    scales: Float32Array.from(scaleValues), scaleDtype, zeroPoints, bias: biasValues,
    runtimeBias: biasName && !bias ? biasName : undefined,
  };
}

/**
 * MatMulNBits with weights that are graph values →
 *   UnpackNBits(B, scales, zero_points?) → (codes, scales', zero_points') → QuantMatMul(A, …, bias?)
 * Constant parts (e.g. a constant bias of another dtype) are converted here.
 */
function emitRuntime(graph: Graph, node: Node, w: RuntimeNBits): Node[] {
  const [a, bName, scaleName, zpName = '', , biasName = ''] = node.inputs;
  const base = freshName(graph, `${bName.replace(/[^A-Za-z0-9_]/g, '_')}_unpacked`);
  const outputs = ['codes', 'scales', 'zero_points'].map((suffix) => freshName(graph, `${base}_${suffix}`));
  const unpack: Node = {
    name: freshName(graph, `${node.name || 'matmulnbits'}_unpack`),
    domain: 'llmcc',
    op: 'UnpackNBits',
    inputs: zpName ? [bName, scaleName, zpName] : [bName, scaleName],
    outputs,
    attributes: new Map([
      ['K', { kind: 'int', value: w.k }],
      ['N', { kind: 'int', value: w.n }],
      ['bits', { kind: 'int', value: w.originalBits }],
      ['block_size', { kind: 'int', value: w.groupSize }],
    ]),
  };
  let bias = biasName;
  const constantBias = biasName ? constant(graph, biasName) : undefined;
  if (constantBias && constantBias.dtype !== 'f32') {
    bias = freshName(graph, `${biasName}_f32`);
    graph.initializers.set(bias, weightFromTensor(bias, new Tensor('f32', [w.n], Float32Array.from(constantBias.load().numbers()))));
  }
  const matmul: Node = {
    name: node.name,
    domain: 'llmcc',
    op: 'QuantMatMul',
    inputs: bias ? [a, ...outputs, bias] : [a, ...outputs],
    outputs: [node.outputs[0]],
    attributes: new Map([
      ['bits', { kind: 'int', value: w.bits }],
      ['group_size', { kind: 'int', value: w.groupSize }],
      ['ternary', { kind: 'int', value: 0 }],
      ['K', { kind: 'int', value: w.k }],
      ['N', { kind: 'int', value: w.n }],
    ]),
  };
  return [unpack, matmul];
}

const DQ_BITS: Partial<Record<DType, { bits: WeightBits; offset: number }>> = {
  i2: { bits: 2, offset: 2 }, u2: { bits: 2, offset: 0 },
  i4: { bits: 4, offset: 8 }, u4: { bits: 4, offset: 0 },
  i8: { bits: 8, offset: 128 }, u8: { bits: 8, offset: 0 },
};

/** The dtype DequantizeLinear produces (output_dtype from opset 23, else the scale's). */
function dqOutputDtype(node: Node, opset: number, scale: DType): DType | undefined {
  const attr = node.attributes.get('output_dtype');
  if (opset >= 23 && attr?.kind === 'int' && attr.value !== 0) {
    return attr.value === 1 ? 'f32' : attr.value === 10 ? 'f16' : undefined;
  }
  return scale;
}

/** DequantizeLinear of a constant [K, N] weight → Imported, or a skip reason. */
function importDequantize(graph: Graph, node: Node, opset: number): Imported | string {
  const [xName, scaleName, zpName] = node.inputs;
  const x = constant(graph, xName);
  const scale = constant(graph, scaleName);
  const zp = zpName ? constant(graph, zpName) : undefined;
  if (!x || !scale || (zpName && !zp)) return 'skipped_not_constant';
  const format = DQ_BITS[x.dtype];
  if (!format || x.shape.length !== 2) return 'skipped_dq_type';
  const scaleDtype = scaleStorage(scale.dtype);
  const outDtype = dqOutputDtype(node, opset, scale.dtype);
  if (!scaleDtype || (outDtype !== 'f32' && outDtype !== 'f16')) return 'skipped_dq_type';
  const [k, n] = x.shape;
  const rank = 2;
  const axisAttr = intAttr(node, 'axis', 1);
  const axis = axisAttr < 0 ? axisAttr + rank : axisAttr;
  const blockSize = intAttr(node, 'block_size', 0);

  // For each (k, n), the index of its scale / zero point, as a group size along K.
  let groupSize: number;
  let paramIndex: (kk: number, nn: number) => number;
  const paramSize = scale.shape.reduce((p, d) => p * d, 1);
  if (paramSize === 1) {
    groupSize = k;
    paramIndex = () => 0;
  } else if (blockSize > 0 && axis === 0) {
    groupSize = blockSize;
    paramIndex = (kk, nn) => Math.floor(kk / blockSize) * n + nn;
  } else if (blockSize === 0 && axis === 1 && scale.shape.length === 1) {
    groupSize = k;
    paramIndex = (_kk, nn) => nn;
  } else {
    return 'skipped_dq_layout';
  }
  const groups = Math.ceil(k / groupSize);
  const xv = x.load().numbers();
  const sv = scale.load().numbers();
  const zv = zp?.load().numbers();
  if (zp && zp.dtype !== x.dtype) return 'skipped_dq_type';

  const codes = new Uint8Array(n * k);
  const scales = new Float32Array(n * groups);
  const zeroPoints = new Float32Array(n * groups);
  for (let kk = 0; kk < k; kk++) {
    for (let nn = 0; nn < n; nn++) {
      const p = paramIndex(kk, nn);
      const g = nn * groups + Math.floor(kk / groupSize);
      const code = xv[kk * n + nn] + format.offset;
      const zero = (zv ? zv[p] : 0) + format.offset;
      codes[nn * k + kk] = code;
      scales[g] = sv[p];
      zeroPoints[g] = zero;
      if (outDtype === 'f16') {
        // DequantizeLinear rounds each weight to f16; QuantMatMul keeps the f32 product.
        const product = Math.fround((code - zero) * sv[p]);
        if (roundToF16(product) !== product) return 'skipped_dq_inexact';
      }
    }
  }
  return { bits: format.bits, groupSize, k, n, codes, scales, scaleDtype, zeroPoints };
}

export const importPrequantizedPass: Pass = {
  name: 'import-prequantized',
  run(model: Model): PassResult {
    const graph = model.graph;
    const stats: Record<string, number> = { matmulnbits_imported: 0, dequantize_matmul_imported: 0 };
    const replacements = new Map<Node, Node[]>();
    const uses = consumers(graph);
    const opset = model.opsets.get('') ?? 1;

    for (const node of graph.nodes) {
      if (node.domain === 'com.microsoft' && node.op === 'MatMulNBits') {
        const imported = importMatMulNBits(graph, node);
        if (typeof imported === 'string') { bump(stats, `matmulnbits_${imported}`); continue; }
        if ('runtime' in imported) {
          replacements.set(node, emitRuntime(graph, node, imported));
          bump(stats, 'matmulnbits_runtime_unpacked');
          continue;
        }
        replacements.set(node, [emit(graph, node, node.inputs[0], node.outputs[0], imported, node.inputs[1])]);
        bump(stats, 'matmulnbits_imported');
      } else if (node.domain === '' && node.op === 'DequantizeLinear') {
        const readers = uses.get(node.outputs[0]) ?? [];
        const matmuls = readers.filter(({ node: r, index }) => r.domain === '' && r.op === 'MatMul' && index === 1);
        if (matmuls.length === 0) continue;
        const imported = importDequantize(graph, node, opset);
        if (typeof imported === 'string') { bump(stats, `dequantize_${imported}`); continue; }
        // One copy of the codes serves every MatMul reading this weight.
        const [first, ...rest] = matmuls.map((use) => use.node);
        const template = emit(graph, first, first.inputs[0], first.outputs[0], imported, node.inputs[0]);
        replacements.set(first, [template]);
        for (const matmul of rest) {
          replacements.set(matmul, [{
            ...template, name: matmul.name, inputs: [matmul.inputs[0], ...template.inputs.slice(1)], outputs: [matmul.outputs[0]],
          }]);
        }
        stats.dequantize_matmul_imported += matmuls.length;
      }
    }
    if (replacements.size === 0) return { changed: false, stats };
    graph.nodes = graph.nodes.flatMap((node) => replacements.get(node) ?? [node]);
    if (!model.opsets.has('llmcc')) model.opsets.set('llmcc', 1);
    removeDeadCode(graph);
    verifyModel(model);
    return { changed: true, stats };
  },
};
