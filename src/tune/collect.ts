/**
 * The tunable kernels of a model on wasm: the compiler's own node classification (after the
 * same pre-quantized import `compileWasm` runs), keeping kernel nodes whose template declares
 * knobs, grouped by op signature.
 */
import type { Model } from '../../ir/graph.js';
import { verifyModel } from '../../ir/verify.js';
import { importPrequantizedPass } from '../../passes/import-prequantized.js';
import { classify } from '../../targets/wasm/compile.js';
import type { KernelBuildContext, TuningKnob, WasmKernelDef } from '../../targets/wasm/kernel-def.js';
import { opSignature } from './signature.js';

export interface TunableOp {
  signature: string;
  def: WasmKernelDef;
  /** The first node's build context (every node of the signature builds the same kernel). */
  ctx: KernelBuildContext;
  space: readonly TuningKnob[];
  /** Nodes sharing the signature. */
  nodes: number;
}

/** A kernel's knobs for a node (none: not tunable). */
export function tuningSpaceOf(def: WasmKernelDef, ctx: KernelBuildContext): readonly TuningKnob[] {
  return def.tuningSpace?.(ctx) ?? [];
}

/** Rewrites `model` in place the way compileWasm does before classifying. */
export async function collectTunableOps(model: Model): Promise<TunableOp[]> {
  if (importPrequantizedPass.run(model).changed) verifyModel(model);
  const { steps } = await classify(model);
  const bySignature = new Map<string, TunableOp>();
  for (const { step, kernelDef, ctx } of steps) {
    if (step.kind !== 'kernel' || !kernelDef || !ctx) continue;
    const space = tuningSpaceOf(kernelDef, ctx);
    if (!space.length) continue;
    const signature = opSignature(ctx, space);
    const known = bySignature.get(signature);
    if (known) known.nodes++;
    else bySignature.set(signature, { signature, def: kernelDef, ctx, space, nodes: 1 });
  }
  return [...bySignature.values()];
}
