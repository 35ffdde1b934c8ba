import type { Model } from '../../ir/graph.js';
import { LlmccError } from '../../ir/errors.js';
import type { Tensor } from '../../ir/tensor.js';
import type { Backend, Session } from '../backend.js';
import { wasmClaims } from '../wasm/compile.js';
import { compileNeon } from './compile.js';
import { runNeonCases } from './run.js';
import type { NeonMode } from './toolchain.js';

const DESCRIPTIONS: Record<NeonMode, string> = {
  'qemu-max': 'C99 + NEON kernels (aarch64 +dotprod), built with aarch64-linux-gnu-gcc, run under qemu-aarch64 -cpu max',
  'qemu-a53': 'C99 + NEON kernels (armv8-a, no dotprod), run under qemu-aarch64 -cpu cortex-a53',
  host: 'C99 + NEON kernels built for the host through SIMDe',
  'host-sanitize': 'C99 + NEON kernels through SIMDe with AddressSanitizer and UBSan',
};

/**
 * The C + NEON target as a Backend: each `run` specialises the model on the feeds' shapes,
 * writes the C project, builds it for `mode` and runs it (under qemu for aarch64).
 */
export function neonBackend(mode: NeonMode = 'qemu-max'): Backend {
  return {
    name: 'neon',
    external: true,
    description: DESCRIPTIONS[mode],
    // The wasm kernel templates, views and (compile-time folded) host steps.
    supports: (domain, op) => wasmClaims(domain, op),
    async prepare(model: Model): Promise<Session> {
      const inputNames = model.graph.inputs.map((i) => i.name);
      const outputNames = model.graph.outputs.map((o) => o.name);
      return {
        inputNames,
        outputNames,
        async run(feeds: ReadonlyMap<string, Tensor>): Promise<Map<string, Tensor>> {
          const shapes = new Map([...feeds].map(([name, t]) => [name, [...t.shape]]));
          const program = await compileNeon(model, { shapes, values: feeds });
          const { results } = await runNeonCases([{ name: 'model', program, feeds }], mode);
          const result = results[0];
          if ('error' in result) throw new LlmccError(result.error);
          return result.outputs;
        },
      };
    },
  };
}

export const neonQemuBackend: Backend = neonBackend('qemu-max');
