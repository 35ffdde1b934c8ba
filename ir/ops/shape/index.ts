import type { OpDef } from '../types.js';

/** The shape group's ops; each lives in its own file in this folder. */
export const shapeOps: OpDef[] = [];
