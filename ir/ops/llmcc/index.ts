import type { OpDef } from '../types.js';
import { QuantMatMul } from './QuantMatMul.js';
import { LutPrecompute } from './LutPrecompute.js';
import { LutMatMul } from './LutMatMul.js';
import { NormLutPrecompute } from './NormLutPrecompute.js';
import { UnpackNBits } from './UnpackNBits.js';
import { LutPackWeights } from './LutPackWeights.js';
import { FusedMatMul } from './FusedMatMul.js';
import { QuantizeActQ8 } from './QuantizeActQ8.js';
import { QuantMatMulQ8 } from './QuantMatMulQ8.js';

/** llmcc's own ops (domain 'llmcc'): quantized and LUT-lowered matmuls the passes produce. */
export const llmccOps: OpDef[] = [
  QuantMatMul,
  LutPrecompute,
  LutMatMul,
  NormLutPrecompute,
  UnpackNBits,
  LutPackWeights,
  FusedMatMul,
  QuantizeActQ8,
  QuantMatMulQ8,
];
