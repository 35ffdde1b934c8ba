/**
 * Runs printed kernels for real (tests, benchmarks): one C program calls every requested
 * kernel once on buffers read from files and writes the buffers back, built and run in one
 * compiler call and one process (under qemu for aarch64 modes).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Kernel } from '../../codegen/kernel.js';
import { cElemType, cKernelName, floatLiteral, intLiteral, printKernels } from '../../codegen/c/printer.js';
import { PRELUDE, PRELUDE_HEADER } from '../../codegen/c/prelude.js';
import { buildC, makeBuildDir, runBuilt, type NeonMode } from './toolchain.js';

/** One launch: the kernel and its arguments in parameter order (bytes for buffers, numbers for scalars). */
export interface KernelCall {
  kernel: Kernel;
  args: (Uint8Array | number)[];
}

export interface KernelRunOptions {
  /** Extra -D defines (e.g. LLMCC_FORCE_DOTPROD on the host). */
  defines?: string[];
  /** Keep the build directory (for inspection) instead of removing it. */
  keep?: boolean;
  /** Launch each call this many times (benchmarks); buffers are written back after the last. */
  repeat?: number;
  /** Extra qemu arguments (aarch64 modes), e.g. logging for instruction counts. */
  qemuArgs?: string[];
  /** Called with the build directory after the run, before it is removed. */
  inspect?: (dir: string) => Promise<void> | void;
}

/** The buffers of every call after it ran, in parameter order (undefined for scalar params). */
export async function runCKernels(calls: readonly KernelCall[], mode: NeonMode, options: KernelRunOptions = {}): Promise<(Uint8Array | undefined)[][]> {
  const dir = makeBuildDir('kernels');
  try {
    const unique = new Map<string, Kernel>();
    for (const { kernel } of calls) unique.set(kernel.name, kernel);
    const printed = printKernels([...unique.values()]);
    fs.writeFileSync(path.join(dir, PRELUDE_HEADER), PRELUDE);
    const body: string[] = [];
    calls.forEach(({ kernel, args }, c) => {
      if (args.length !== kernel.params.length) throw new Error(`kernel runner: ${kernel.name} takes ${kernel.params.length} args, got ${args.length}`);
      const lines: string[] = [];
      const callArgs: string[] = [];
      kernel.params.forEach((p, j) => {
        const arg = args[j];
        if (p.kind === 'buffer') {
          if (!(arg instanceof Uint8Array)) throw new Error(`kernel runner: ${kernel.name} param ${p.name} needs bytes`);
          fs.writeFileSync(path.join(dir, `c${c}_b${j}.bin`), arg);
          lines.push(`  uint8_t *b${j} = read_all(dir, "c${c}_b${j}.bin", ${arg.byteLength});`);
          callArgs.push(`(${cElemType(p.elem)} *)(void *)b${j}`);
        } else {
          if (typeof arg !== 'number') throw new Error(`kernel runner: ${kernel.name} param ${p.name} needs a number`);
          callArgs.push(p.type === 'f32' ? floatLiteral(arg) : intLiteral(arg));
        }
      });
      lines.push(`  for (int r = 0; r < ${options.repeat ?? 1}; r++) ${cKernelName(kernel)}(${callArgs.join(', ')});`);
      kernel.params.forEach((p, j) => {
        if (p.kind === 'buffer') lines.push(`  write_all(dir, "c${c}_b${j}.out", b${j}, ${(args[j] as Uint8Array).byteLength});`, `  free(b${j});`);
      });
      body.push(`  {\n${lines.join('\n')}\n  }`);
    });
    const source = `#include <stdio.h>
#include <stdlib.h>
#include "${PRELUDE_HEADER}"

${printed.helpers}
${printed.functions.join('\n')}
static uint8_t *read_all(const char *dir, const char *name, size_t bytes) {
  char file[4096];
  snprintf(file, sizeof file, "%s/%s", dir, name);
  /* Padding so a kernel's full-vector tail reads stay inside the allocation. */
  uint8_t *p = (uint8_t *)calloc(bytes + 64, 1);
  FILE *f = fopen(file, "rb");
  if (!p || !f || fread(p, 1, bytes, f) != bytes) { fprintf(stderr, "cannot read %s\\n", file); exit(2); }
  fclose(f);
  return p;
}
static void write_all(const char *dir, const char *name, const uint8_t *p, size_t bytes) {
  char file[4096];
  snprintf(file, sizeof file, "%s/%s", dir, name);
  FILE *f = fopen(file, "wb");
  if (!f || fwrite(p, 1, bytes, f) != bytes) { fprintf(stderr, "cannot write %s\\n", file); exit(2); }
  fclose(f);
}
int main(int argc, char **argv) {
  const char *dir = argc > 1 ? argv[1] : ".";
${body.join('\n')}
  return 0;
}
`;
    fs.writeFileSync(path.join(dir, 'kernels.c'), source);
    await buildC(mode, ['kernels.c'], 'kernels', { cwd: dir, defines: options.defines });
    const run = await runBuilt(mode, path.join(dir, 'kernels'), [dir], { cwd: dir, qemuArgs: options.qemuArgs });
    if (run.code !== 0) throw new Error(`kernel program failed (${mode}, exit ${run.code}): ${run.stderr.slice(0, 2000)}`);
    await options.inspect?.(dir);
    return calls.map(({ kernel, args }, c) => kernel.params.map((p, j) => {
      if (p.kind !== 'buffer') return undefined;
      void args;
      return new Uint8Array(fs.readFileSync(path.join(dir, `c${c}_b${j}.out`)));
    }));
  } finally {
    if (!options.keep) fs.rmSync(dir, { recursive: true, force: true });
  }
}
