import type { WasmKernelDef } from '../kernel-def.js';
// W1: elementwise, activations, reductions, softmax, normalization.
import { unaryKernels } from './unary.js';
import { binaryKernels } from './binary.js';
import { whereKernel } from './Where.js';
import { castKernel, castLikeKernel } from './Cast.js';
import { clipKernel } from './Clip.js';
import { geluKernel, fastGeluKernel } from './Gelu.js';
import { swishKernel } from './Swish.js';
import { powKernel } from './Pow.js';
import { reduceKernels } from './reduce.js';
import { softmaxKernels } from './Softmax.js';
import { normalizationKernels } from './normalization.js';
// W4: matmul, attention, rotary, gather and data movement.
import { attentionKernel } from './Attention.js';
import { concatKernel } from './Concat.js';
import { embedLayerNormalizationKernel } from './EmbedLayerNormalization.js';
import { expandKernel } from './Expand.js';
import { gatherKernel } from './Gather.js';
import { gemmKernel } from './Gemm.js';
import { groupQueryAttentionKernel } from './GroupQueryAttention.js';
import { matMulKernel } from './MatMul.js';
import { msAttentionKernel } from './MsAttention.js';
import { msRotaryEmbeddingKernel } from './MsRotaryEmbedding.js';
import { multiHeadAttentionKernel } from './MultiHeadAttention.js';
import { rotaryEmbeddingKernel } from './RotaryEmbedding.js';
import { padKernel } from './Pad.js';
import { sliceKernel } from './Slice.js';
import { splitKernel } from './Split.js';
import { tensorScatterKernel } from './TensorScatter.js';
import { tileKernel } from './Tile.js';
import { transposeKernel } from './Transpose.js';
import { triluKernel } from './Trilu.js';
// HB: index and scan kernels.
import { argMaxKernel, argMinKernel } from './ArgMax.js';
import { cumSumKernel } from './CumSum.js';
// W2: low-bit LUT kernels.
import { lutKernels } from './lut/index.js';
// Pre-quantized weights (MatMulNBits imported as llmcc.QuantMatMul / llmcc.UnpackNBits).
import { quantMatMulKernel } from './QuantMatMul.js';
// The int8-activation dot path (passes/dot-lower.ts): vdotq_s32 on neon.
import { quantizeActQ8Kernel } from './QuantizeActQ8.js';
import { quantMatMulQ8Kernel } from './QuantMatMulQ8.js';
import { unpackNBitsKernel } from './UnpackNBits.js';
// Graph fusions (passes/fusions): ops only the fusion pass makes.
import { fusedMatMulKernel } from './FusedMatMul.js';
import { swigluKernel } from './SwiGLU.js';
// N:M sparse weights (passes/sparsity/).
import { sparseKernels } from './sparse/index.js';

/** Every wasm kernel, one per (domain, op). Each engineer adds their lines. */
export const wasmKernels: WasmKernelDef[] = [
  // W2
  ...lutKernels,
  quantMatMulKernel,
  quantizeActQ8Kernel,
  quantMatMulQ8Kernel,
  unpackNBitsKernel,
  ...sparseKernels,
  // W1
  ...unaryKernels,
  ...binaryKernels,
  whereKernel,
  castKernel,
  castLikeKernel,
  clipKernel,
  geluKernel,
  fastGeluKernel,
  swishKernel,
  powKernel,
  ...reduceKernels,
  ...softmaxKernels,
  ...normalizationKernels,
  // W4
  attentionKernel,
  concatKernel,
  embedLayerNormalizationKernel,
  expandKernel,
  gatherKernel,
  gemmKernel,
  groupQueryAttentionKernel,
  matMulKernel,
  msAttentionKernel,
  msRotaryEmbeddingKernel,
  multiHeadAttentionKernel,
  rotaryEmbeddingKernel,
  padKernel,
  sliceKernel,
  splitKernel,
  tensorScatterKernel,
  tileKernel,
  transposeKernel,
  triluKernel,
  // HB
  argMaxKernel,
  argMinKernel,
  cumSumKernel,
  // Fusions
  fusedMatMulKernel,
  swigluKernel,
];

/** The kernel definition for an op on wasm, or undefined. */
export function lookupWasmKernel(domain: string, op: string): WasmKernelDef | undefined {
  return wasmKernels.find((k) => k.domain === domain && k.op === op);
}
