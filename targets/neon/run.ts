/**
 * Runs compiled programs for real: writes one C project holding every program, builds it with
 * its Makefile (one compiler call), runs the harness once (under qemu for aarch64 modes) and
 * reads the outputs back as tensors. A program that crashes the harness fails alone: the
 * programs after it are run again without it.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Tensor } from '../../ir/tensor.js';
import { LlmccError } from '../../ir/errors.js';
import { readFromArena, writeToArena } from '../wasm/arena.js';
import type { NeonProgram } from './compile.js';
import { MAKE_TARGETS, writeProject, type ProjectProgram } from './project.js';
import { makeBuildDir, runBuilt, runProcess, type NeonMode } from './toolchain.js';

export interface NeonCase {
  name: string;
  program: NeonProgram;
  feeds: ReadonlyMap<string, Tensor>;
}

export type NeonCaseResult = { outputs: Map<string, Tensor> } | { error: string };

export interface NeonRunOptions {
  /** Keep the build directory (its path is in the result) instead of removing it. */
  keep?: boolean;
}

/** Builds every case into one program for `mode`, runs them all, returns each case's outputs or error. */
export async function runNeonCases(cases: readonly NeonCase[], mode: NeonMode, options: NeonRunOptions = {}): Promise<{ results: NeonCaseResult[]; dir: string }> {
  const dir = makeBuildDir(mode);
  try {
    const programs: ProjectProgram[] = cases.map(({ name, program }) => ({ name, program }));
    writeProject(dir, programs);
    for (const c of cases) writeInputs(path.join(dir, c.name), c.program, c.feeds);
    const target = MAKE_TARGETS[mode];
    const built = await runProcess('make', ['-s', '-C', dir, target], { timeoutMs: 1_800_000 });
    if (built.code !== 0) {
      const log = `${built.stderr}${built.stdout}`.split('\n').slice(0, 40).join('\n');
      throw new Error(`building the neon program failed (${mode}):\n${log}`);
    }
    const results = new Map<string, NeonCaseResult>();
    let pending = cases.map((c) => c.name);
    while (pending.length) {
      const run = await runBuilt(mode, path.join(dir, target), [dir, ...pending], { cwd: dir, timeoutMs: 1_800_000 });
      const done = new Set(run.stdout.split('\n').filter((l) => l.startsWith('done ')).map((l) => l.slice(5)));
      for (const name of pending) {
        if (done.has(name)) results.set(name, { outputs: readOutputs(path.join(dir, name), cases.find((c) => c.name === name)!.program) });
      }
      const failed = pending.find((name) => !done.has(name));
      if (failed === undefined) break;
      const why = run.stderr.trim().split('\n').slice(-6).join(' | ') || `exit ${run.code}`;
      results.set(failed, { error: `the ${mode} program failed (exit ${run.code}): ${why}` });
      pending = pending.slice(pending.indexOf(failed) + 1).filter((name) => !done.has(name));
    }
    return { results: cases.map((c) => results.get(c.name)!), dir };
  } finally {
    if (!options.keep) fs.rmSync(dir, { recursive: true, force: true });
  }
}

function writeInputs(dir: string, program: NeonProgram, feeds: ReadonlyMap<string, Tensor>): void {
  fs.mkdirSync(dir, { recursive: true });
  program.inputs.forEach((io, k) => {
    const tensor = feeds.get(io.name);
    if (!tensor) throw new LlmccError(`missing value for graph input '${io.name}'`);
    const bytes = new Uint8Array(io.bytes);
    writeToArena(bytes.buffer, 0, tensor, `input '${io.name}'`);
    fs.writeFileSync(path.join(dir, `input_${k}.bin`), bytes);
  });
}

function readOutputs(dir: string, program: NeonProgram): Map<string, Tensor> {
  const outputs = new Map<string, Tensor>();
  program.outputs.forEach((io, k) => {
    const bytes = new Uint8Array(fs.readFileSync(path.join(dir, `output_${k}.bin`)));
    if (bytes.byteLength !== io.bytes) throw new Error(`output_${k}.bin has ${bytes.byteLength} bytes, expected ${io.bytes}`);
    const aligned = new Uint8Array(bytes).buffer;
    outputs.set(io.name, readFromArena(aligned, 0, io.dtype, io.shape));
  });
  return outputs;
}
