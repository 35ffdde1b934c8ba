import type { Kernel } from '../../codegen/kernel.js';
import type { Node, TensorType } from '../../ir/graph.js';

/**
 * Storage types of tensors inside the wasm arena. Floats compute and live as f32 (f16/bf16
 * model inputs, outputs and weights are converted at the boundary); integers as i32 (int64
 * token ids and indices are narrowed, with a range check at the boundary); bool as u8;
 * low-bit weights keep their packed u8 layout.
 */
export type ArenaDtype = 'f32' | 'i32' | 'u8';

/** What a kernel template sees at compile time: static facts only. */
export interface KernelBuildContext {
  node: Node;
  /** Types of the node's inputs (undefined for omitted optional inputs) and outputs. */
  inputs: (TensorType | undefined)[];
  outputs: TensorType[];
  /** Constant input values known at compile time (weights, folded shapes), by input position. */
  constant(index: number): import('../../ir/tensor.js').Tensor | undefined;
  /** A unique kernel name prefix for this node. */
  name: string;
  /** The imported opset of the node's domain (semantics changed across versions, e.g. Softmax at 13). */
  opset?: number;
  /**
   * Tile/unroll choices for this node from the tuning database (knob name → value); a kernel
   * reads the knobs it declares in `tuningSpace` and uses each knob's default when absent.
   */
  tuning?: Readonly<Record<string, number>>;
}

/** One tunable choice of a kernel template (rows per tile, unroll, …) and its candidate values. */
export interface TuningKnob {
  name: string;
  values: readonly number[];
  default: number;
}

/** What the runtime knows when it launches a kernel: concrete shapes. */
export interface LaunchShapes {
  inputs: (number[] | undefined)[];
  outputs: number[][];
}

/**
 * One op on the wasm target, one file per op under targets/wasm/kernels/, registered in
 * kernels/index.ts. The compiler calls `check` then `build` once per node; the runtime calls
 * `args` (and `scratchBytes`) on every launch with the concrete shapes.
 *
 * Calling convention of the built kernel: buffer params first — the node's present inputs in
 * order, then its outputs, then one scratch buffer if `scratchBytes` is defined — all as byte
 * offsets into the arena; then the scalar params in the order `args` returns them.
 */
export interface WasmKernelDef {
  domain: string;
  op: string;
  /** Undefined when this node can run on wasm; otherwise why not (shown as UNSUPPORTED). */
  check(ctx: KernelBuildContext): string | undefined;
  build(ctx: KernelBuildContext): Kernel;
  args(node: Node, shapes: LaunchShapes): number[];
  scratchBytes?(node: Node, shapes: LaunchShapes): number;
  /** The knobs `build` reads from `ctx.tuning` for this node (none: not tunable). */
  tuningSpace?(ctx: KernelBuildContext): readonly TuningKnob[];
  /**
   * True when the kernel still works with its first output omitted (e.g. NormLutPrecompute
   * without the normalized activations); other kernels are refused for such nodes.
   */
  readonly firstOutputOptional?: boolean;
}
