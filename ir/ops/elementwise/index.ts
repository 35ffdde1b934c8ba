import type { OpDef } from '../types.js';

/** The elementwise group's ops; each lives in its own file in this folder. */
export const elementwiseOps: OpDef[] = [];
