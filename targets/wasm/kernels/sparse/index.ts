import type { WasmKernelDef } from '../../kernel-def.js';
import { sparseQuantMatMulKernel } from './SparseQuantMatMul.js';
import { sparseLutPrecomputeKernel } from './SparseLutPrecompute.js';
import { sparseLutMatMulKernel } from './SparseLutMatMul.js';

/** N:M sparse kernels (llmcc.SparseQuantMatMul, SparseLutPrecompute and SparseLutMatMul from passes/sparsity/). */
export const sparseKernels: WasmKernelDef[] = [sparseQuantMatMulKernel, sparseLutPrecomputeKernel, sparseLutMatMulKernel];
