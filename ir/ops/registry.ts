import type { OpDef } from './types.js';
import { elementwiseOps } from './elementwise/index.js';
import { shapeOps } from './shape/index.js';
import { nnOps } from './nn/index.js';
import { microsoftOps } from './microsoft/index.js';
import { llmccOps } from './llmcc/index.js';
import { sparseOps } from './llmcc/SparseOps.js';

const table = new Map<string, OpDef>();
for (const def of [...elementwiseOps, ...shapeOps, ...nnOps, ...microsoftOps, ...llmccOps, ...sparseOps]) {
  const key = keyOf(def.domain, def.op);
  if (table.has(key)) throw new Error(`op ${key} registered twice`);
  table.set(key, def);
}

function keyOf(domain: string, op: string): string {
  return `${domain}::${op}`;
}

/** The definition of an op, or undefined when the IR does not support it. */
export function lookupOp(domain: string, op: string): OpDef | undefined {
  return table.get(keyOf(domain, op));
}

/** Every supported op, for the support table of `llmcc inspect`. */
export function registeredOps(): OpDef[] {
  return [...table.values()];
}
