import type { OpDef } from '../types.js';

/** llmcc's own ops (domain 'llmcc'): quantized and LUT-lowered matmuls the passes produce. */
export const llmccOps: OpDef[] = [];
