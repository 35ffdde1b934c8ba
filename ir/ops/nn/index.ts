import type { OpDef } from '../types.js';

/** The nn group's ops; each lives in its own file in this folder. */
export const nnOps: OpDef[] = [];
