import { DOT_WIDTHS, type DotWidth } from '../../passes/dot-lower.js';

/**
 * Which weight widths the neon target lowers to the int8-activation dot kernels
 * (QuantizeActQ8 + QuantMatMulQ8: `vdotq_s32` with +dotprod) rather than the LUT kernels,
 * under `--matmul auto` (the default): the widths where the dot GEMV executes fewer aarch64
 * instructions per weight in `llmcc bench neon-gemv --k 2048 --n 2048 --bits 1,2,3,4,8,ternary`
 * (qemu, group 128; table in targets/neon/README.md).
 *
 * With +dotprod (-cpu max, and what a compiled project's `run-qemu` build targets) dot wins at
 * every width: dot/LUT = 0.90 (1-bit), 0.63 (2-bit, ternary), 0.93 (3-bit), 0.41 (4-bit), and
 * 0.13 against 8-bit's f32-dequantizing QuantMatMul. Without dotprod (`run --cpu cortex-a53`,
 * armv8-a) the dot op costs seven instructions instead of one and LUT wins at every width it
 * has (dot/LUT 1.07–3.90): only 8-bit is dot there (0.30).
 */
export const NEON_DOT_WIDTHS: readonly DotWidth[] = DOT_WIDTHS;
export const NEON_NO_DOTPROD_DOT_WIDTHS: readonly DotWidth[] = ['8'];

/**
 * Kernel knobs the neon target sets where the wasm defaults do not suit it (op → knob → value).
 * LutMatMul's int16 accumulation: 'widen' (knob value 1). NEON adds a widened half in one
 * instruction (uaddw), so the 'shift' form that saves V8 an op saves neon none and adds the
 * per-block even/odd interleave: `bench neon-gemv --k 2048 --n 2048` LUT instructions per weight
 * with 'shift' vs 'widen': 0.2640 vs 0.2462 (1-bit), 0.3451 vs 0.3342 (2-bit, ternary), 0.4356
 * vs 0.4275 (3-bit), 0.5399 vs 0.5442 (4-bit).
 */
export const NEON_KERNEL_KNOBS: Readonly<Record<string, Readonly<Record<string, number>>>> = {
  'llmcc::LutMatMul': { accumulate: 1 },
};

/** The `--matmul auto` widths for a qemu CPU (`--cpu`; absent: max, +dotprod). */
export function neonDotWidths(cpu: string | undefined): readonly DotWidth[] {
  return cpu === 'cortex-a53' ? NEON_NO_DOTPROD_DOT_WIDTHS : NEON_DOT_WIDTHS;
}
