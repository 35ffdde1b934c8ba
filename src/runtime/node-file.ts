/**
 * Node only (imported on demand by index.ts): a bundle file opened for load(). The header,
 * manifest and kernels are read and verified now; the weights later, by the session, straight
 * from the file into the wasm memory (read-node.ts verifies them on the way). A 1.4 GB
 * weights part is then never held in a JS buffer besides the arena.
 */
import { fileURLToPath } from 'node:url';
import { LlmccError } from '../../ir/errors.js';
import type { WasmProgram, WeightEntry } from '../../targets/wasm/program.js';
import { type BundleFile, readBundleFileHead, readBundlePart, readBundlePartInto } from '../bundle/read-node.js';
import { type WeightStream, placeWeight, placedAsIs } from './weight-placement.js';

export interface OpenedBundleFile {
  program: WasmProgram;
  kernels: Uint8Array;
  weights: WeightStream;
}

export async function openBundleFile(location: string | URL, target: string): Promise<OpenedBundleFile> {
  const file = location instanceof URL ? fileURLToPath(location) : location;
  const bundle = await readBundleFileHead(file, { target });
  const kernels = await readBundlePart(bundle, 'kernels.wasm');
  return { program: bundle.manifest.program, kernels, weights: { place: (memory, weightBase) => placeFromFile(bundle, memory, weightBase) } };
}

/**
 * Reads weights.bin in file order: weights placed as-is go straight to their arena place, the
 * others (f16 → f32 conversions, host-only weights) into buffers of their own, kept; the
 * alignment gaps into throwaway buffers (they are hashed too).
 */
async function placeFromFile(bundle: BundleFile, memory: WebAssembly.Memory, weightBase: number): Promise<Map<string, Uint8Array>> {
  const part = bundle.manifest.parts.find((p) => p.name === 'weights.bin');
  if (!part) throw new LlmccError(`bundle has no part 'weights.bin'`, bundle.file);
  const weights = [...bundle.manifest.program.weights].sort((a, b) => a.offset - b.offset);
  const destinations: Uint8Array[] = [];
  const kept = new Map<string, Uint8Array>();
  const converted: [WeightEntry, Uint8Array][] = [];
  let position = 0;
  for (const w of weights) {
    if (w.offset < position || w.offset + w.byteLength > part.byteLength) {
      throw new LlmccError(`weight '${w.name}' lies outside weights.bin or overlaps another weight`, bundle.file);
    }
    if (w.offset > position) destinations.push(new Uint8Array(w.offset - position));
    if (placedAsIs(w)) {
      destinations.push(new Uint8Array(memory.buffer, weightBase + w.arenaOffset!, w.byteLength));
    } else {
      const bytes = new Uint8Array(w.byteLength);
      destinations.push(bytes);
      kept.set(w.name, bytes);
      if (w.arenaOffset !== undefined) converted.push([w, bytes]);
    }
    position = w.offset + w.byteLength;
  }
  if (part.byteLength > position) destinations.push(new Uint8Array(part.byteLength - position));
  await readBundlePartInto(bundle, 'weights.bin', destinations);
  // Verified: now the conversions (f16 → f32 by table, rare encodings through a decoded tensor).
  for (const [w, bytes] of converted) placeWeight(memory.buffer, weightBase + w.arenaOffset!, w, bytes);
  return kept;
}
