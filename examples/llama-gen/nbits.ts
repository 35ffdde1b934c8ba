/**
 * `--matmulnbits 4`: the same decoder with every projection (and lm_head) as
 * com.microsoft.MatMulNBits, 4-bit symmetric RTN weights in blocks along K: what ONNX Runtime
 * (node and web) runs as a pre-quantized model, and what llmcc imports as pre-quantized. The
 * codes come from llmcc's own quantizer (passes/quant/rtn.ts); its symmetric 4-bit grid has
 * the zero point 8, MatMulNBits' default, so no zero-point tensor is written.
 */
import { LlmccError } from '../../ir/errors.js';
import { quantizeRtn } from '../../passes/quant/rtn.js';
import { onnx, type NodeProto } from '../../src/onnx/proto.js';
import type { DecoderGraph, ModelDType, WeightSpec } from './graph.js';

export type NBitsInit = { kind: 'nbits'; part: 'codes' | 'scales'; source: WeightSpec; bits: 4; blockSize: number };

/** Bits the generator can write as MatMulNBits (symmetric RTN with the default zero point). */
export const NBITS_CHOICES = [4] as const;

const A = onnx.AttributeProto.AttributeType;

/**
 * Rewrites MatMul(x, W[K, N]) into MatMulNBits(x, codes[N, blocks, blob], scales[N, blocks]).
 * accuracy_level 0 computes in float (ONNX Runtime's default: same ids as the float
 * reference); 4 lets ORT's CPU kernel quantize activations to int8 (its fastest path).
 */
export function toMatMulNBits(graph: DecoderGraph, bits: number, blockSize: number, accuracyLevel = 0): DecoderGraph {
  if (bits !== 4) throw new LlmccError(`--matmulnbits takes ${NBITS_CHOICES.join(', ')}, got ${bits}`);
  const byName = new Map(graph.weights.map((w) => [w.name, w]));
  const replaced = new Map<string, WeightSpec[]>();
  const nodes: NodeProto[] = graph.nodes.map((node) => {
    const weight = node.opType === 'MatMul' && !node.domain ? byName.get(node.input?.[1] ?? '') : undefined;
    if (!weight || weight.dims.length !== 2) return node;
    const [k, n] = weight.dims;
    if (k % blockSize !== 0) throw new LlmccError(`${weight.name}: K=${k} is not a multiple of the block size ${blockSize}`);
    const blocks = k / blockSize;
    const codes: WeightSpec = {
      name: `${weight.name}_Q${bits}`, dims: [n, blocks, (blockSize * bits) / 8], parameter: false,
      init: { kind: 'nbits', part: 'codes', source: weight, bits, blockSize },
    };
    const scales: WeightSpec = {
      name: `${weight.name}_scales`, dims: [n, blocks], parameter: false,
      init: { kind: 'nbits', part: 'scales', source: weight, bits, blockSize },
    };
    replaced.set(weight.name, [codes, scales]);
    const int = (name: string, i: number) => ({ name, type: A.INT, i });
    return {
      ...node,
      opType: 'MatMulNBits',
      domain: 'com.microsoft',
      input: [node.input![0], codes.name, scales.name],
      attribute: [int('K', k), int('N', n), int('bits', bits), int('block_size', blockSize), int('accuracy_level', accuracyLevel)],
    };
  });
  const weights = graph.weights.flatMap((w) => replaced.get(w.name) ?? [w]);
  const opsets = graph.opsets.some((o) => o.domain === 'com.microsoft') ? graph.opsets : [...graph.opsets, { domain: 'com.microsoft', version: 1 }];
  return { ...graph, nodes, weights, opsets };
}

/** Elements of the float weight an nbits spec stands for (its parameters). */
export function nbitsParameters(init: NBitsInit): number {
  return init.part === 'codes' ? init.source.dims[0] * init.source.dims[1] : 0;
}

/**
 * Quantizes the source weight once (on its codes spec) and keeps the scales for the scales
 * spec that follows it. `values` is the source in row-major [K, N].
 */
export class NBitsPacker {
  private readonly pendingScales = new Map<string, Uint8Array>();

  constructor(private readonly dtype: ModelDType, private readonly encodeScales: (values: Float32Array) => Uint8Array) {}

  bytes(init: NBitsInit, values: () => Float32Array): Uint8Array {
    if (init.part === 'scales') {
      const scales = this.pendingScales.get(init.source.name);
      if (!scales) throw new LlmccError(`scales of '${init.source.name}' asked before its codes`);
      this.pendingScales.delete(init.source.name);
      return scales;
    }
    const [k, n] = init.source.dims;
    const w = values();
    const rows = new Float32Array(n * k);
    for (let row = 0; row < k; row++) {
      for (let col = 0; col < n; col++) rows[col * k + row] = w[row * n + col];
    }
    const q = quantizeRtn(rows, n, k, { bits: init.bits, groupSize: init.blockSize, symmetric: true, scaleDtype: this.dtype });
    this.pendingScales.set(init.source.name, this.encodeScales(q.scales));
    // Two 4-bit codes a byte, low nibble first; blocks are consecutive along K within a row.
    const packed = new Uint8Array((n * k) / 2);
    for (let i = 0; i < packed.length; i++) packed[i] = q.codes[2 * i] | (q.codes[2 * i + 1] << 4);
    return packed;
  }
}
