import type { OpDef } from '../types.js';
import { SparseQuantMatMul } from './SparseQuantMatMul.js';
import { SparseLutPrecompute } from './SparseLutPrecompute.js';
import { SparseLutMatMul } from './SparseLutMatMul.js';

/** llmcc's N:M sparse ops (passes/sparsity/ produces them). */
export const sparseOps: OpDef[] = [SparseQuantMatMul, SparseLutPrecompute, SparseLutMatMul];
