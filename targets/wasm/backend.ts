import type { Model } from '../../ir/graph.js';
import { sessionFromCompiled } from '../../src/runtime/index.js';
import type { Backend, Session } from '../backend.js';
import { compileWasm, isHostOp, isViewOp } from './compile.js';
import { wasmKernelTable } from './links.js';

// Looked up once: `supports` answers synchronously.
const kernels = wasmKernelTable();

/**
 * The WASM SIMD target: kernels built with binaryen into one module, weights and activations
 * in one arena, shape computations on the host. Runs in-process through the same runtime that
 * loads bundles (`llmcc compile --target wasm` writes one).
 */
export const wasmBackend: Backend = {
  name: 'wasm',
  description: 'WebAssembly SIMD128 kernels (binaryen), one arena, host-side shape computations',
  supports: (domain, op) => kernels.has(`${domain}::${op}`) || isViewOp({ domain, op }) || isHostOp({ domain, op }),
  async prepare(model: Model): Promise<Session> {
    const session = await sessionFromCompiled(await compileWasm(model));
    return {
      inputNames: session.inputNames,
      outputNames: session.outputNames,
      run: (feeds) => session.run(feeds),
    };
  },
};
