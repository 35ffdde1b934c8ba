/**
 * Measures a kernel's candidate configurations in Node: every candidate is built into one
 * wasm module (one binaryen run), given representative inputs at the node's real shapes (each
 * regime's concrete shape, see signature.ts), and timed round-robin — each round calls every
 * candidate once, so slow phases of the machine hit them all alike — reporting the fastest
 * sample's milliseconds per call: on a shared machine preemption only ever adds time, and a
 * median of a few samples of a millisecond kernel swung by 3x between identical kernels
 * there. Calls too short to time are batched into samples of ≥ 0.1 ms.
 *
 * The module is compiled three times (a custom section makes the bytes differ, so V8 does not
 * share the code) and every candidate timed in each copy: the same kernel compiled separately
 * measured up to 2x apart here (f32 prefill GEMM, ~3 ms vs ~8 ms, consistently within one
 * copy: code placement), in about one copy in five. A candidate's figure is its fastest
 * sample over the copies, i.e. its speed with a good placement.
 */
import v8 from 'node:v8';
import type { Kernel } from '../../codegen/kernel.js';
import { LlmccError, describeNode } from '../../ir/errors.js';
import { seededRandom } from '../../ir/random.js';
import { arenaDtypeOf, arenaElementBytes } from '../../targets/wasm/arena.js';
import type { KernelBuildContext, LaunchShapes, WasmKernelDef } from '../../targets/wasm/kernel-def.js';
import { buildWasmModule } from '../../codegen/wasm/module.js';
import { concreteShape, type Regime } from './signature.js';
import type { Knobs } from './space.js';

export interface MeasureRequest {
  def: WasmKernelDef;
  ctx: KernelBuildContext;
  candidates: Knobs[];
  regimes: Regime[];
  /** Timing milliseconds per regime, shared by all candidates. */
  sliceMs: number;
  minRounds: number;
}

/** Fastest milliseconds per call, [candidate][regime]. */
export type MeasureFn = (request: MeasureRequest) => Promise<number[][]>;

/** Most bytes a measurement may allocate (inputs, outputs, scratch of one regime). */
const MAX_MEASURE_BYTES = 1 << 30;
const MIN_SAMPLE_MS = 0.1;

/** The node's concrete launch shapes in a regime. */
export function launchShapes(ctx: KernelBuildContext, regime: Regime): LaunchShapes {
  const shape = (t: KernelBuildContext['outputs'][number] | undefined): number[] | undefined => {
    if (!t) return undefined;
    if (!t.shape) throw new LlmccError('cannot measure a kernel whose shapes have unknown rank', describeNode(ctx.node));
    return concreteShape(t.shape, regime);
  };
  return { inputs: ctx.inputs.map(shape), outputs: ctx.outputs.map((t) => shape(t)!) };
}

function elementCount(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

const PAGE = 65536;

/** A bump allocator over one wasm memory (16-byte aligned), shared by the module copies. */
class BumpArena {
  readonly memory = new WebAssembly.Memory({ initial: 1 });
  private top = 16;

  alloc(bytes: number): number {
    const offset = this.top;
    this.top = Math.ceil((offset + Math.max(bytes, 16)) / 16) * 16;
    const needed = this.top + 64;
    const have = this.memory.buffer.byteLength;
    if (needed > have) this.memory.grow(Math.ceil((needed - have) / PAGE));
    return offset;
  }
}

/** `binary` with a custom section appended: different bytes, same code. */
function withCustomSection(binary: Uint8Array, name: string): Uint8Array {
  const nameBytes = new TextEncoder().encode(name);
  // Section id 0, size (one LEB byte: the name is short), name length, name.
  const section = [0, nameBytes.length + 1, nameBytes.length, ...nameBytes];
  const out = new Uint8Array(binary.length + section.length);
  out.set(binary);
  out.set(section, binary.length);
  return out;
}

/** Module copies compiled separately (different code placement). */
const COPIES = 3;

/** Buffer offsets (inputs, outputs, scratch) and scalar args for one regime. */
function prepareRegime(arena: BumpArena, request: MeasureRequest, regime: Regime, random: () => number): number[] {
  const { def, ctx } = request;
  const node = ctx.node;
  const shapes = launchShapes(ctx, regime);
  const buffers: { bytes: number; fill: 'f32' | 'u8' | 'i32' }[] = [];
  node.inputs.forEach((name, i) => {
    if (!name) return;
    const type = ctx.inputs[i];
    if (!type) throw new LlmccError(`cannot measure: input ${i} has no type`, describeNode(node));
    const storage = arenaDtypeOf(type.dtype);
    buffers.push({ bytes: elementCount(shapes.inputs[i]!) * arenaElementBytes(storage), fill: storage });
  });
  node.outputs.forEach((name, i) => {
    if (!name) return;
    buffers.push({ bytes: elementCount(shapes.outputs[i]) * arenaElementBytes(arenaDtypeOf(ctx.outputs[i].dtype)), fill: 'i32' });
  });
  if (def.scratchBytes) buffers.push({ bytes: def.scratchBytes(node, shapes), fill: 'i32' });
  const total = buffers.reduce((sum, b) => sum + b.bytes, 0);
  if (total > MAX_MEASURE_BYTES) {
    throw new LlmccError(`cannot measure: ${(total / 2 ** 20).toFixed(0)} MiB of buffers at the ${regime.name} shape`, describeNode(node));
  }
  const offsets = buffers.map((b) => {
    const offset = arena.alloc(b.bytes);
    const view = new Uint8Array(arena.memory.buffer, offset, b.bytes);
    if (b.fill === 'f32') {
      const floats = new Float32Array(arena.memory.buffer, offset, b.bytes / 4);
      for (let i = 0; i < floats.length; i++) floats[i] = random() * 2 - 1;
    } else if (b.fill === 'u8') {
      // Small codes: valid 4-bit LUT indices, in range for any u8 weight.
      for (let i = 0; i < view.length; i++) view[i] = Math.floor(random() * 16);
    } else {
      view.fill(0);
    }
    return offset;
  });
  return [...offsets, ...def.args(node, shapes)];
}

/** Builds every candidate's kernel (named c0, c1, …). */
export function buildCandidates(def: WasmKernelDef, ctx: KernelBuildContext, candidates: readonly Knobs[]): Kernel[] {
  return candidates.map((knobs, i) => def.build({ ...ctx, name: `c${i}`, tuning: knobs }));
}

let optimizingOnly = false;

/**
 * Times optimized code only: without Liftoff, V8 compiles every wasm function with TurboFan
 * up front, instead of tiering up after an unpredictable number of calls (which made a
 * candidate measured before its tier-up look 2-3x slower). Process-wide, and harmless to
 * anything else: later modules only compile a little slower.
 */
function useOptimizingCompiler(): void {
  if (optimizingOnly) return;
  v8.setFlagsFromString('--no-liftoff');
  optimizingOnly = true;
}

export const measureCandidates: MeasureFn = async (request) => {
  useOptimizingCompiler();
  const kernels = buildCandidates(request.def, request.ctx, request.candidates);
  const binary = buildWasmModule(kernels);
  const arena = new BumpArena();
  // calls[candidate][copy]
  const calls: ((...args: number[]) => void)[][] = kernels.map(() => []);
  for (let copy = 0; copy < COPIES; copy++) {
    const module = await WebAssembly.compile(withCustomSection(binary, `llmcc-tune-${copy}`) as Uint8Array<ArrayBuffer>);
    const instance = await WebAssembly.instantiate(module, { env: { memory: arena.memory } });
    kernels.forEach((k, c) => calls[c].push(instance.exports[k.name] as (...args: number[]) => void));
  }
  const random = seededRandom(1);
  const perRegime = request.regimes.map((regime) => {
    const args = prepareRegime(arena, request, regime, random);
    // Warm-up (and the first check that every candidate runs), then batch size from the slowest.
    let slowest = 0;
    for (const call of calls.flat()) {
      const t0 = performance.now();
      call(...args);
      slowest = Math.max(slowest, performance.now() - t0);
    }
    const reps = Math.max(1, Math.ceil(MIN_SAMPLE_MS / Math.max(slowest, 1e-4)));
    const fastest = calls.map(() => Infinity);
    const start = performance.now();
    for (let round = 0; round < 10_000 && (round < request.minRounds || performance.now() - start < request.sliceMs); round++) {
      calls.forEach((copies, c) => {
        for (const call of copies) {
          const t0 = performance.now();
          for (let r = 0; r < reps; r++) call(...args);
          fastest[c] = Math.min(fastest[c], (performance.now() - t0) / reps);
        }
      });
    }
    return fastest;
  });
  return request.candidates.map((_, c) => perRegime.map((regimeMs) => regimeMs[c]));
};
