import type { WasmKernelDef } from '../../kernel-def.js';
import { lutMatMulKernel } from './LutMatMul.js';
import { lutPackWeightsKernel } from './LutPackWeights.js';
import { lutPrecomputeKernel } from './LutPrecompute.js';
import { normLutPrecomputeKernel } from './NormLutPrecompute.js';

export { WASM_LUT_LAYOUT } from './common.js';

/** W2: the low-bit LUT kernels (llmcc.QuantMatMul is lowered to these by the passes). */
export const lutKernels: WasmKernelDef[] = [lutPrecomputeKernel, normLutPrecomputeKernel, lutMatMulKernel, lutPackWeightsKernel];
