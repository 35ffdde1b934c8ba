import type { OpDef } from '../types.js';
import { Attention } from './Attention.js';
import { DequantizeLinear } from './DequantizeLinear.js';
import { DynamicQuantizeLinear } from './DynamicQuantizeLinear.js';
import { Gemm } from './Gemm.js';
import { LayerNormalization } from './LayerNormalization.js';
import { MatMul } from './MatMul.js';
import { MatMulInteger } from './MatMulInteger.js';
import { QLinearMatMul } from './QLinearMatMul.js';
import { QuantizeLinear } from './QuantizeLinear.js';
import { RMSNormalization } from './RMSNormalization.js';
import { RotaryEmbedding } from './RotaryEmbedding.js';
import { SwiGLU } from './SwiGLU.js';

/** The nn group's ops; each lives in its own file in this folder. */
export const nnOps: OpDef[] = [
  MatMul, Gemm, MatMulInteger, QLinearMatMul,
  LayerNormalization, RMSNormalization,
  Attention, RotaryEmbedding, SwiGLU,
  QuantizeLinear, DequantizeLinear, DynamicQuantizeLinear,
];
