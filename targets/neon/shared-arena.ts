/**
 * Lays several programs of one model (the step programs of `llmcc generate`) out in ONE arena:
 * constants that are byte-identical across programs (the weights, and folded constants that do
 * not depend on the step's shapes) are stored once in a shared pool at the arena's start, the
 * constants that differ get a slot each after it, and every program's activations start at the
 * same offset after those. The C side loads the pool once and runs any program on the same
 * arena (`llmcc_model_run_as`), so weights are never duplicated per program.
 *
 * The compiler places a program's constants back to back from offset 0 of its weight image
 * (each 64-byte aligned) and its activations from the aligned end of that image; every buffer
 * a launch, input or output names starts at one of those offsets. A constant region is the span
 * from one referenced offset to the next, which is all relocation needs.
 */
import { createHash } from 'node:crypto';
import { alignUp } from '../wasm/arena.js';
import { NEON_ALIGN, type NeonIo, type NeonProgram } from './compile.js';

export interface SharedArena {
  /** The programs, relocated: each has `weightImage` === the shared pool. */
  programs: NeonProgram[];
  /** Every constant of every program, identical ones once. */
  weightImage: Uint8Array;
  /** The largest relocated program's arena: one allocation runs them all. */
  arenaBytes: number;
  /** Bytes the per-program weight images would have taken together (for reporting). */
  unsharedBytes: number;
}

interface Region {
  offset: number;
  bytes: Uint8Array;
}

/** The constant regions of a program's weight image, by the offsets its launches and io name. */
function constantRegions(program: NeonProgram): Region[] {
  const image = program.weightImage;
  const starts = new Set<number>();
  const note = (offset: number): void => { if (offset < image.byteLength) starts.add(offset); };
  for (const launch of program.launches) launch.buffers.forEach(note);
  for (const io of [...program.inputs, ...program.outputs]) note(io.offset);
  const sorted = [...starts].sort((a, b) => a - b);
  return sorted.map((offset, k) => ({ offset, bytes: image.subarray(offset, sorted[k + 1] ?? image.byteLength) }));
}

/** Relocates `programs` into one arena; see the module comment. */
export function shareOneArena(programs: readonly NeonProgram[]): SharedArena {
  const poolOffsets = new Map<string, number>();
  const chunks: Region[] = [];
  let poolBytes = 0;
  const constantMaps = programs.map((program) => {
    const map = new Map<number, number>();
    for (const region of constantRegions(program)) {
      const key = `${region.bytes.byteLength}:${createHash('sha256').update(region.bytes).digest('hex')}`;
      let at = poolOffsets.get(key);
      if (at === undefined) {
        at = poolBytes;
        poolOffsets.set(key, at);
        chunks.push({ offset: at, bytes: region.bytes });
        poolBytes = alignUp(poolBytes + region.bytes.byteLength, NEON_ALIGN);
      }
      map.set(region.offset, at);
    }
    return map;
  });
  const weightImage = new Uint8Array(poolBytes);
  for (const chunk of chunks) weightImage.set(chunk.bytes, chunk.offset);
  const activationBase = alignUp(poolBytes, NEON_ALIGN);
  let arenaBytes = activationBase;
  const relocated = programs.map((program, i) => {
    const ownBase = alignUp(program.weightImage.byteLength, NEON_ALIGN);
    const move = (offset: number): number => {
      if (offset >= ownBase) return offset - ownBase + activationBase;
      const to = constantMaps[i].get(offset);
      if (to === undefined) throw new Error(`neon shared arena: offset ${offset} is inside a constant region, not at its start`);
      return to;
    };
    const io = (entry: NeonIo): NeonIo => ({ ...entry, offset: move(entry.offset) });
    const bytes = program.arenaBytes - ownBase + activationBase;
    arenaBytes = Math.max(arenaBytes, bytes);
    return {
      ...program,
      launches: program.launches.map((launch) => ({ ...launch, buffers: launch.buffers.map(move) })),
      inputs: program.inputs.map(io),
      outputs: program.outputs.map(io),
      weightImage,
      arenaBytes: bytes,
    };
  });
  const unsharedBytes = programs.reduce((sum, p) => sum + p.weightImage.byteLength, 0);
  return { programs: relocated, weightImage, arenaBytes, unsharedBytes };
}
