import { LlmccError } from '../ir/errors.js';
import type { Backend } from './backend.js';
import { referenceBackend } from './ref/backend.js';
import { wasmBackend } from './wasm/backend.js';
import { neonQemuBackend } from './neon/backend.js';

/** Every target this build can run, by `--target` name. */
const backends: readonly Backend[] = [referenceBackend, wasmBackend, neonQemuBackend];

export function allBackends(): readonly Backend[] {
  return backends;
}

/** The targets fuzzing and `llmcc diff` use when none are named: those that run in this process. */
export function defaultCheckBackends(): readonly Backend[] {
  return backends.filter((b) => !b.external);
}

export function getBackend(name: string): Backend {
  const backend = backends.find((b) => b.name === name);
  if (!backend) {
    throw new LlmccError(`unknown target '${name}' (available: ${backends.map((b) => b.name).join(', ')})`);
  }
  return backend;
}
