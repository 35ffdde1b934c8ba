import * as fs from 'node:fs';
import { verifyModel } from '../../ir/verify.js';
import { runLoweringPipeline } from '../../passes/pipeline.js';
import { compileWasm } from '../../targets/wasm/compile.js';
import { encodeBundle, sha256Hex } from '../bundle/format.js';
import { loadModel } from '../onnx/load.js';
import type { ResolvedSettings } from './options.js';

export const PRODUCER = 'llmcc 0.1.0 (vite plugin)';

export interface CompiledAsset {
  bytes: Uint8Array;
  /** Every file the bundle was made from (the model and its external data), to watch. */
  sources: string[];
}

/** Compiles one ONNX file to bundle bytes, the same pipeline as `llmcc compile --target wasm`. */
export async function compileModelFile(file: string, settings: ResolvedSettings): Promise<CompiledAsset> {
  const model = await loadModel(file);
  verifyModel(model);
  // Before lowering, which replaces quantized weights with in-memory ones.
  const sources = new Set<string>([file]);
  for (const weight of model.graph.initializers.values()) {
    if (weight.location.kind === 'external') sources.add(weight.location.file);
  }
  if (settings.lowering) runLoweringPipeline(model, settings.lowering);
  const compiled = await compileWasm(model, { producer: PRODUCER });
  return { bytes: await encodeBundle(compiled), sources: [...sources] };
}

/** Changes when any source file changes (size or mtime): the dev server's cache validity. */
export function sourcesFingerprint(files: readonly string[]): string {
  return files.map((f) => {
    try {
      const s = fs.statSync(f);
      return `${f}:${s.size}:${s.mtimeMs}`;
    } catch {
      return `${f}:missing`;
    }
  }).join('|');
}

export async function cacheKey(file: string, settings: ResolvedSettings): Promise<string> {
  return (await sha256Hex(new TextEncoder().encode(`${PRODUCER}\0${file}\0${settings.key}`))).slice(0, 16);
}
