/**
 * What the `llmcc` command does for `--target neon`: `compile -o DIR` writes the C project,
 * the flags `--host`, `--cpu` and `--sanitize` pick how `run` and `conformance` build and run it.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { LlmccError } from '../../ir/errors.js';
import type { Model } from '../../ir/graph.js';
import type { Tensor } from '../../ir/tensor.js';
import { writeToArena } from '../wasm/arena.js';
import { bindInputs, readTestDataSet } from '../../src/testdata.js';
import { compileNeon, type NeonProgram } from './compile.js';
import { writeProject } from './project.js';
import type { NeonMode } from './toolchain.js';

export interface NeonModeFlags {
  /** Build for the host through SIMDe instead of aarch64 under qemu. */
  host?: boolean;
  /** qemu CPU: `max` (+dotprod build) or `cortex-a53` (armv8-a build, no dotprod). */
  cpu?: string;
  /** Host build with AddressSanitizer and UBSan. */
  sanitize?: boolean;
}

export function neonModeFromFlags(flags: NeonModeFlags): NeonMode {
  if (flags.sanitize) return 'host-sanitize';
  if (flags.host) {
    if (flags.cpu) throw new LlmccError('--cpu picks the qemu CPU; it does not apply with --host');
    return 'host';
  }
  switch (flags.cpu ?? 'max') {
    case 'max': return 'qemu-max';
    case 'cortex-a53': return 'qemu-a53';
    default: throw new LlmccError(`--cpu must be max or cortex-a53, not '${flags.cpu}'`);
  }
}

/** Parses repeated `--shape name=d0,d1,…` flags. */
export function parseShapeFlags(flags: readonly string[]): Map<string, number[]> {
  const shapes = new Map<string, number[]>();
  for (const flag of flags) {
    const eq = flag.lastIndexOf('=');
    const dims = eq > 0 ? flag.slice(eq + 1).split(',').filter((d) => d !== '').map(Number) : [];
    if (eq <= 0 || dims.some((d) => !Number.isSafeInteger(d) || d < 0)) {
      throw new LlmccError(`--shape expects name=d0,d1,… with non-negative integer dims, got '${flag}'`);
    }
    shapes.set(flag.slice(0, eq), dims);
  }
  return shapes;
}

export interface NeonCompileFlags {
  output: string;
  /** A test data set: input shapes (and values for value-dependent output shapes), copied into the project. */
  data?: string;
  shape?: string[];
  embedWeights?: boolean;
}

/**
 * `llmcc compile --target neon -o DIR`: the C project for the model specialised on concrete
 * input shapes. Written to a sibling temp folder and renamed into place when complete.
 */
export async function writeNeonProject(model: Model, flags: NeonCompileFlags): Promise<{ program: NeonProgram; files: number }> {
  const shapes = parseShapeFlags(flags.shape ?? []);
  let feeds: Map<string, Tensor> | undefined;
  if (flags.data) {
    feeds = bindInputs(model.graph, readTestDataSet(flags.data));
    for (const [name, t] of feeds) if (!shapes.has(name)) shapes.set(name, [...t.shape]);
  }
  const program = await compileNeon(model, { shapes, ...(feeds ? { values: feeds } : {}) });
  const dir = path.resolve(flags.output);
  if (fs.existsSync(dir) && (!fs.statSync(dir).isDirectory() || fs.readdirSync(dir).length > 0)) {
    throw new LlmccError('the output folder exists and is not empty', dir);
  }
  const temp = `${dir}.${process.pid}.tmp`;
  try {
    fs.rmSync(temp, { recursive: true, force: true });
    fs.mkdirSync(temp, { recursive: true });
    writeProject(temp, [{ name: 'model', program }], { embedWeights: flags.embedWeights ?? false });
    fs.mkdirSync(path.join(temp, 'model'), { recursive: true });
    if (feeds) {
      // The data set's inputs in the harness's raw form, so `make run-qemu` runs it as is.
      program.inputs.forEach((io, k) => {
        const bytes = new Uint8Array(io.bytes);
        writeToArena(bytes.buffer, 0, feeds!.get(io.name)!, `input '${io.name}'`);
        fs.writeFileSync(path.join(temp, 'model', `input_${k}.bin`), bytes);
      });
    }
    if (fs.existsSync(dir)) fs.rmdirSync(dir);
    fs.renameSync(temp, dir);
  } catch (error) {
    fs.rmSync(temp, { recursive: true, force: true });
    if (error instanceof LlmccError) throw error;
    throw new LlmccError(`cannot write the project: ${error instanceof Error ? error.message : String(error)}`, dir);
  }
  return { program, files: fs.readdirSync(dir).length };
}
