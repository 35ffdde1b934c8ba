/**
 * Building and running generated C: aarch64 with the cross compiler under qemu-user (called
 * explicitly, `-cpu max` with +dotprod or `-cpu cortex-a53` without), or the host compiler with
 * SIMDe's portable NEON (optionally with AddressSanitizer/UBSan).
 */
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { LlmccError } from '../../ir/errors.js';

/** How generated C is built and run. */
export type NeonMode =
  /** aarch64, -march=armv8.2-a+dotprod, run under `qemu-aarch64 -cpu max`. */
  | 'qemu-max'
  /** aarch64, -march=armv8-a (no dotprod path), run under `qemu-aarch64 -cpu cortex-a53`. */
  | 'qemu-a53'
  /** The host compiler with SIMDe. */
  | 'host'
  /** The host compiler with SIMDe, -fsanitize=address,undefined. */
  | 'host-sanitize';

export const NEON_MODES: readonly NeonMode[] = ['qemu-max', 'qemu-a53', 'host', 'host-sanitize'];

export const CROSS_CC = 'aarch64-linux-gnu-gcc';
export const HOST_CC = 'gcc';
export const QEMU = 'qemu-aarch64';
export const AARCH64_SYSROOT = '/usr/aarch64-linux-gnu';

/**
 * Flags of every build: clean C99 with every warning an error. `-fno-ipa-icf`: GCC 12.2 for
 * aarch64 at -O2 miscompiles identical static functions merged by identical-code folding
 * (the second becomes a bare `ret`; two identical conformance cases hit it), so it is off.
 */
export const C_WARNINGS = ['-std=c99', '-Wall', '-Wextra', '-Werror', '-fno-ipa-icf'];

export function compilerFor(mode: NeonMode): string {
  return mode.startsWith('qemu') ? CROSS_CC : HOST_CC;
}

/** Compiler flags for a mode (besides the sources and -o). */
export function cflagsFor(mode: NeonMode): string[] {
  switch (mode) {
    case 'qemu-max': return [...C_WARNINGS, '-O2', '-march=armv8.2-a+dotprod'];
    case 'qemu-a53': return [...C_WARNINGS, '-O2', '-march=armv8-a'];
    case 'host': return [...C_WARNINGS, '-O2', '-DLLMCC_SIMDE'];
    case 'host-sanitize':
      return [...C_WARNINGS, '-O1', '-g', '-DLLMCC_SIMDE', '-fsanitize=address,undefined', '-fno-sanitize-recover=all', '-fno-omit-frame-pointer'];
  }
}

/** The command line that runs a built program (qemu for aarch64 builds). */
export function runnerFor(mode: NeonMode, exe: string, args: readonly string[], qemuArgs: readonly string[] = []): { file: string; args: string[] } {
  if (mode === 'qemu-max') return { file: QEMU, args: ['-L', AARCH64_SYSROOT, '-cpu', 'max', ...qemuArgs, exe, ...args] };
  if (mode === 'qemu-a53') return { file: QEMU, args: ['-L', AARCH64_SYSROOT, '-cpu', 'cortex-a53', ...qemuArgs, exe, ...args] };
  return { file: exe, args: [...args] };
}

export interface ProcessResult {
  code: number;
  stdout: string;
  stderr: string;
}

export function runProcess(file: string, args: readonly string[], options: { cwd?: string; timeoutMs?: number; env?: NodeJS.ProcessEnv } = {}): Promise<ProcessResult> {
  return new Promise((resolve, reject) => {
    execFile(file, [...args], {
      cwd: options.cwd, timeout: options.timeoutMs ?? 600_000, maxBuffer: 64 * 1024 * 1024, env: options.env ?? process.env,
    }, (error, stdout, stderr) => {
      if (error && (error as NodeJS.ErrnoException).code === 'ENOENT') {
        reject(new LlmccError(`'${file}' is not installed (the neon target needs it: apt-get install -y gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user libsimde-dev)`));
        return;
      }
      const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
      resolve({ code, stdout: String(stdout), stderr: String(stderr) });
    });
  });
}

/** Compiles C sources into `exe`; throws with the compiler's first lines of output on failure. */
export async function buildC(mode: NeonMode, sources: readonly string[], exe: string, options: { cwd: string; defines?: string[] }): Promise<void> {
  const args = [...cflagsFor(mode), ...(options.defines ?? []).map((d) => `-D${d}`), ...sources, '-o', exe, '-lm'];
  const result = await runProcess(compilerFor(mode), args, { cwd: options.cwd });
  if (result.code !== 0) {
    const log = `${result.stderr}${result.stdout}`.split('\n').slice(0, 30).join('\n');
    throw new Error(`${compilerFor(mode)} failed (${mode}) in ${options.cwd}:\n${log}`);
  }
}

/** Runs a built program (under qemu for aarch64 modes). */
export function runBuilt(mode: NeonMode, exe: string, args: readonly string[], options: { cwd: string; timeoutMs?: number; qemuArgs?: string[] }): Promise<ProcessResult> {
  const { file, args: argv } = runnerFor(mode, exe, args, options.qemuArgs);
  // Leak checking needs ptrace, which some containers refuse; the sanitizer build checks memory errors and UB.
  const env = mode === 'host-sanitize' ? { ...process.env, ASAN_OPTIONS: 'detect_leaks=0' } : process.env;
  return runProcess(file, argv, { cwd: options.cwd, timeoutMs: options.timeoutMs, env });
}

/** A fresh temporary directory for a build. */
export function makeBuildDir(prefix: string): string {
  const base = process.env.LLMCC_NEON_TMP ?? path.join(process.env.TMPDIR ?? '/tmp');
  fs.mkdirSync(base, { recursive: true });
  return fs.mkdtempSync(path.join(base, `llmcc-neon-${prefix}-`));
}
