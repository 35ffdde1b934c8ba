import type { OpDef } from '../types.js';

/** The microsoft group's ops; each lives in its own file in this folder. */
export const microsoftOps: OpDef[] = [];
