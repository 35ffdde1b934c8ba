/**
 * `generate()` on the neon target. A neon program is specialised on concrete input shapes (and
 * pins input values that set output shapes), so a decode loop whose past length grows needs one
 * program per step shape. Told the plan (prompt length P, max new tokens N) by `prepare`, this
 * engine compiles the prefill (past 0, P tokens) and each decode step (past P..P+N-2, 1 token;
 * a static cache's steps share one shape and so one program unless a value is pinned), lays
 * them out in one arena with the weights stored once (shared-arena.ts), builds ONE C project
 * with ONE compiler call, and starts ONE long-lived step server (server-c.ts) that runs any of
 * the programs per request. With `carry`, the KV cache stays in the C process: each step's
 * present outputs become the next step's past inputs by a memcpy there. The graph may also be
 * one stage of a decoder pipeline (embeddings, transformer, head): its step shapes then come
 * from the decoder's plan and its inputs' declared dims (step-feeds.ts).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { LlmccError } from '../../ir/errors.js';
import type { Model, Weight } from '../../ir/graph.js';
import { Tensor } from '../../ir/tensor.js';
import {
  type DecodePlan, type DecoderBindings, type DecoderEngine, type ValueSignature, signatureOfGraph,
} from '../../src/runtime/generate.js';
import type { CarriedPair } from '../../src/runtime/session.js';
import { readFromArena, writeToArena } from '../wasm/arena.js';
import { compileNeon, type NeonIo, type NeonProgram } from './compile.js';
import { MAKE_TARGETS, projectFiles } from './project.js';
import { SERVER_SOURCE } from './server-c.js';
import { NeonStepServer, type ServerInput } from './server.js';
import { shareOneArena } from './shared-arena.js';
import { stepCompileFeeds } from './step-feeds.js';
import { CROSS_CC, HOST_CC, makeBuildDir, runProcess, type NeonMode } from './toolchain.js';

/** Figures of one build, for reports. */
export interface NeonBuildStats {
  mode: NeonMode;
  /** Steps the plan may run, and the distinct programs compiled for them. */
  steps: number;
  programs: number;
  /** The one weight image every program shares. */
  weightBytes: number;
  /** What the programs' own weight images would have taken together. */
  unsharedWeightBytes: number;
  compileMs: number;
  buildMs: number;
  startMs: number;
}

export interface NeonDecoderOptions {
  mode?: NeonMode;
  /** Keep the C project (its folder is `buildDir`) after close instead of removing it. */
  keepBuild?: boolean;
  onBuilt?: (stats: NeonBuildStats) => void;
}

/** One compiled step shape. */
interface StepProgram {
  name: string;
  /** The step it was compiled for (errors name it). */
  past: number;
  tokens: number;
  program: NeonProgram;
}

interface Running {
  server: NeonStepServer;
  dir: string;
  programs: StepProgram[];
  bindings: DecoderBindings;
}

type StepRunner = { run(feeds: Map<string, Tensor>): Promise<Map<string, Tensor>> };

/** The steps `generate()` runs for a plan: prefill, then one token each, within a static cache. */
export function plannedSteps(plan: DecodePlan): { past: number; tokens: number }[] {
  const steps: { past: number; tokens: number }[] = [];
  let past = 0;
  let tokens = plan.promptLength;
  for (let step = 0; step < plan.maxTokens && past + tokens <= plan.bindings.capacity; step++) {
    steps.push({ past, tokens });
    past += tokens;
    tokens = 1;
  }
  return steps;
}

/** A decoder engine on the neon target; see the module comment. Call `prepare` (generate() does). */
export class NeonDecoderEngine implements DecoderEngine {
  readonly inputs: ValueSignature[];
  readonly outputs: ValueSignature[];
  readonly mode: NeonMode;
  /** Figures of the last build. */
  lastBuild: NeonBuildStats | undefined;
  /** The C project of the current (or, with keepBuild, last) build. */
  buildDir: string | undefined;
  private running: Running | undefined;

  constructor(private readonly model: Model, private readonly options: NeonDecoderOptions = {}) {
    const signature = signatureOfGraph(model.graph);
    this.inputs = signature.inputs;
    this.outputs = signature.outputs;
    this.mode = options.mode ?? 'qemu-max';
  }

  async prepare(plan: DecodePlan): Promise<void> {
    await this.close();
    const started = performance.now();
    const programs = await this.compileSteps(plan);
    const compiled = performance.now();
    const shared = shareOneArena(programs.map((p) => p.program));
    const relocated = programs.map((p, i) => ({ ...p, program: shared.programs[i] }));
    const dir = makeBuildDir('generate');
    this.buildDir = dir;
    try {
      const files = projectFiles(relocated.map(({ name, program }) => ({ name, program })));
      for (const { name } of relocated) files.delete(`${name}/weights.bin`);
      files.set('main.c', SERVER_SOURCE);
      files.set('weights.bin', shared.weightImage);
      for (const [file, content] of files) fs.writeFileSync(path.join(dir, file), content);
      const target = MAKE_TARGETS[this.mode];
      // Inlining small kernels into every launch of every step program made GCC 4x slower on a
      // 32-step primitive decoder (11 s vs 2.9 s CPU); a call per launch costs nothing measurable.
      const noInline = '-fno-inline-small-functions';
      const built = await runProcess('make', ['-s', '-C', dir, target, `CC_AARCH64=${CROSS_CC} ${noInline}`, `CC_HOST=${HOST_CC} ${noInline}`], { timeoutMs: 1_800_000 });
      if (built.code !== 0) {
        throw new LlmccError(`building the neon step programs failed (${this.mode}): ${`${built.stderr}${built.stdout}`.split('\n').slice(0, 20).join('\n')}`, dir);
      }
      const builtAt = performance.now();
      const server = await NeonStepServer.start(this.mode, path.join(dir, target), path.join(dir, 'weights.bin'), dir);
      this.running = { server, dir, programs: relocated, bindings: plan.bindings };
      this.lastBuild = {
        mode: this.mode,
        steps: plannedSteps(plan).length,
        programs: programs.length,
        weightBytes: shared.weightImage.byteLength,
        unsharedWeightBytes: shared.unsharedBytes,
        compileMs: compiled - started,
        buildMs: builtAt - compiled,
        startMs: performance.now() - builtAt,
      };
      this.options.onBuilt?.(this.lastBuild);
    } catch (error) {
      if (!this.options.keepBuild) fs.rmSync(dir, { recursive: true, force: true });
      throw error;
    }
  }

  /** Every input and output through the pipe (the cache too). */
  async run(feeds: Map<string, Tensor>): Promise<Map<string, Tensor>> {
    const running = this.require();
    const step = this.programFor(running, feeds, new Map());
    const inputs = step.program.inputs.map((io) => inputBytes(io, feeds.get(io.name)));
    return this.exchange(running, step, inputs, step.program.outputs.map((_, k) => k));
  }

  /** Keeps each pair's output in the C process as its input on the next run. */
  carry(pairs: CarriedPair[]): StepRunner {
    const running = this.require();
    for (const pair of pairs) {
      if (!this.inputs.some((i) => i.name === pair.input) || !this.outputs.some((o) => o.name === pair.output)) {
        throw new LlmccError(`carried pair '${pair.input}' <- '${pair.output}': not a graph input and a graph output`);
      }
    }
    const byInput = new Map(pairs.map((p) => [p.input, p]));
    const carriedOutputs = new Set(pairs.map((p) => p.output));
    let previous: { step: StepProgram; run: number } | undefined;
    return {
      run: async (feeds) => {
        const shapes = new Map<string, number[]>();
        for (const pair of pairs) {
          const made = previous?.step.program.outputs.find((o) => o.name === pair.output);
          shapes.set(pair.input, made ? made.shape : pair.initialShape);
        }
        const step = this.programFor(running, feeds, shapes);
        if (previous && previous.run !== running.server.runs) {
          throw new LlmccError('the carried cache was replaced: another run went through the neon step server between two carried steps');
        }
        const inputs: ServerInput[] = step.program.inputs.map((io) => {
          const pair = byInput.get(io.name);
          if (!pair) return inputBytes(io, feeds.get(io.name));
          if (!previous) return new Uint8Array(io.bytes); // the first step's cache: zeros
          return { lastOutput: previous.step.program.outputs.findIndex((o) => o.name === pair.output) };
        });
        const send = step.program.outputs.flatMap((o, k) => (carriedOutputs.has(o.name) ? [] : [k]));
        const outputs = await this.exchange(running, step, inputs, send);
        previous = { step, run: running.server.runs };
        return outputs;
      },
    };
  }

  /** The running step server's process id (between prepare and close). */
  get serverPid(): number | undefined {
    return this.running?.server.pid;
  }

  /** Stops the step server and removes the build (unless keepBuild). Safe to call twice. */
  async close(): Promise<void> {
    const running = this.running;
    this.running = undefined;
    if (!running) return;
    try {
      await running.server.close();
    } finally {
      if (!this.options.keepBuild) fs.rmSync(running.dir, { recursive: true, force: true });
    }
  }

  private require(): Running {
    if (!this.running) throw new LlmccError('the neon decoder engine has no step programs: prepare() (called by generate()) builds them for a prompt length and a token count');
    return this.running;
  }

  private async exchange(running: Running, step: StepProgram, inputs: ServerInput[], send: number[]): Promise<Map<string, Tensor>> {
    const program = step.program;
    const index = running.programs.indexOf(step);
    const bytes = await running.server.request({
      program: index,
      inputs,
      send: send.map((k) => ({ index: k, bytes: program.outputs[k].bytes })),
      what: `running program '${step.name}' (past ${step.past}, ${step.tokens} token(s))`,
    });
    const outputs = new Map<string, Tensor>();
    send.forEach((k, i) => {
      const io = program.outputs[k];
      outputs.set(io.name, readFromArena(bytes[i].buffer as ArrayBuffer, bytes[i].byteOffset, io.dtype, io.shape));
    });
    return outputs;
  }

  /** The program whose input shapes (feeds, or `carried` shapes) and pinned values match. */
  private programFor(running: Running, feeds: ReadonlyMap<string, Tensor>, carried: ReadonlyMap<string, number[]>): StepProgram {
    const found = running.programs.find((p) => programMatches(p.program, feeds, carried));
    if (found) return found;
    const ids = feeds.get(running.bindings.inputIds.name);
    throw new LlmccError(`no neon step program for input shapes ${describeShapes(feeds, carried)}${ids ? ` (${ids.shape[1]} token(s))` : ''}: prepare() built programs for ${running.programs.length} step shape(s) only`);
  }

  /** Compiles one program per distinct step signature of the plan. */
  private compileSteps(plan: DecodePlan): Promise<StepProgram[]> {
    // Each compile reads every weight; decoding them once instead of per step halved the
    // compile time of the fp16 llama decoder's 32 programs.
    return withWeightsDecodedOnce(this.model, () => this.compileEachStep(plan));
  }

  private async compileEachStep(plan: DecodePlan): Promise<StepProgram[]> {
    const { bindings } = plan;
    const programs: StepProgram[] = [];
    const positional = new Set(bindings.positional.map((p) => p.name));
    for (const { past, tokens } of plannedSteps(plan)) {
      const feeds = stepCompileFeeds(plan, this.inputs, past, tokens);
      if (programs.some((p) => programMatches(p.program, feeds, new Map()))) continue;
      const program = await compileNeon(this.model, { shapes: new Map([...feeds].map(([name, t]) => [name, [...t.shape]])), values: feeds });
      for (const pin of program.pinned) {
        const name = program.inputs[pin.input].name;
        // Positions and masks are known per step; token ids and the cache are not.
        if (!positional.has(name)) throw new LlmccError(`the neon program for past ${past}, ${tokens} token(s) depends on the value of input '${name}' (an output shape depends on it): cannot generate`, this.model.path);
      }
      programs.push({ name: `step_p${past}_t${tokens}`, past, tokens, program });
    }
    if (programs.length === 0) throw new LlmccError('nothing to generate: the plan has no step');
    return programs;
  }
}

/** The engine for `model` (rewritten in place by the compiler's pre-quantized import). */
export function neonDecoderEngine(model: Model, options: NeonDecoderOptions = {}): NeonDecoderEngine {
  return new NeonDecoderEngine(model, options);
}

/** Runs `fn` with the model's weights memoised (`Weight.load` decodes once), then restores them. */
async function withWeightsDecodedOnce<T>(model: Model, fn: () => Promise<T>): Promise<T> {
  const initializers = model.graph.initializers;
  const wrapped = new Map<string, { original: Weight; wrapper: Weight }>();
  for (const [name, original] of initializers) {
    let decoded: Tensor | undefined;
    const wrapper: Weight = Object.assign(Object.create(original) as Weight, { load: () => (decoded ??= original.load()) });
    wrapped.set(name, { original, wrapper });
    initializers.set(name, wrapper);
  }
  try {
    return await fn();
  } finally {
    // Entries a pass replaced meanwhile stay as the pass left them.
    for (const [name, { original, wrapper }] of wrapped) if (initializers.get(name) === wrapper) initializers.set(name, original);
  }
}

function programMatches(program: NeonProgram, feeds: ReadonlyMap<string, Tensor>, carried: ReadonlyMap<string, number[]>): boolean {
  for (const io of program.inputs) {
    const shape = feeds.get(io.name)?.shape ?? carried.get(io.name);
    if (!shape || shape.length !== io.shape.length || shape.some((d, i) => d !== io.shape[i])) return false;
  }
  return program.pinned.every((pin) => {
    const io = program.inputs[pin.input];
    const value = feeds.get(io.name);
    if (!value) return false;
    const bytes = inputBytes(io, value);
    return bytes.every((b, i) => b === pin.bytes[i]);
  });
}

/** A feed in the program's storage form (f32 / i32 / u8 bytes). */
function inputBytes(io: NeonIo, tensor: Tensor | undefined): Uint8Array {
  if (!tensor) throw new LlmccError(`missing value for graph input '${io.name}'`);
  const bytes = new Uint8Array(io.bytes);
  writeToArena(bytes.buffer, 0, tensor, `input '${io.name}'`);
  return bytes;
}

function describeShapes(feeds: ReadonlyMap<string, Tensor>, carried: ReadonlyMap<string, number[]>): string {
  const all = [...[...feeds].map(([name, t]) => [name, t.shape] as const), ...carried];
  return all.map(([name, shape]) => `${name}[${shape.join(',')}]`).join(' ');
}
