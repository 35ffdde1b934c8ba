/**
 * The compiler's links to the kernel registry (targets/wasm/kernels/index.ts) and the wasm
 * module builder (codegen/wasm/module.ts), kept in one place.
 */
import type { Kernel } from '../../codegen/kernel.js';
import type { WasmKernelDef } from './kernel-def.js';
import { wasmKernels } from './kernels/index.js';

let kernelTable: Map<string, WasmKernelDef> | undefined;

/** Registered wasm kernels by `domain::op`. */
export function wasmKernelTable(): Map<string, WasmKernelDef> {
  kernelTable ??= new Map(wasmKernels.map((def) => [`${def.domain}::${def.op}`, def]));
  return kernelTable;
}

export type ModuleBuilder = (kernels: Kernel[]) => Uint8Array;

/**
 * `buildWasmModule`, loaded on first use: binaryen is large and only the compiler needs it
 * (the runtime, in the browser too, never does).
 */
export async function wasmModuleBuilder(): Promise<ModuleBuilder> {
  const { buildWasmModule } = await import('../../codegen/wasm/module.js');
  return (kernels) => buildWasmModule(kernels);
}
