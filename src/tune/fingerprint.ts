/**
 * The machine fingerprint: tuning results hold for one CPU model, core count, JS engine and
 * target, and are kept apart per fingerprint in the database.
 */
import os from 'node:os';

export interface MachineFingerprint {
  target: string;
  /** The target's vector extension (wasm: simd128). */
  simd: string;
  cpu: string;
  cores: number;
  arch: string;
  node: string;
  v8: string;
}

export function machineFingerprint(target: string, simd: string): MachineFingerprint {
  const cpus = os.cpus();
  return {
    target, simd, cpu: (cpus[0]?.model ?? 'unknown').trim().replace(/\s+/g, ' '), cores: cpus.length,
    arch: process.arch, node: process.version, v8: process.versions.v8,
  };
}

/** One line naming the fingerprint: the database's per-machine key. */
export function fingerprintKey(f: MachineFingerprint): string {
  return `${f.target}/${f.simd} | ${f.cpu} | ${f.cores} cores | ${f.arch} | node ${f.node} (v8 ${f.v8})`;
}

/** The fingerprint of this machine for the wasm target (SIMD128 kernels). */
export function wasmMachine(): MachineFingerprint {
  return machineFingerprint('wasm', 'simd128');
}
