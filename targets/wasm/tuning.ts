/**
 * The wasm target's tuning cost model: an analytic estimate of a kernel call's cost for one
 * knob configuration, used to rank a kernel's configurations so that only the most promising
 * few are measured (src/tune). Units are "wasm instructions after V8's lowering", roughly;
 * only the ranking matters, never the absolute figure.
 *
 * MatMul (f32 register-tiled GEMM, kernels/MatMul.ts), per K step of one rows × vecs tile:
 *   vecs B-vector loads + rows·(A load + splat) + 2·rows·vecs (mul, add)
 *   + loop overhead 4/k_unroll
 *   + spills: 4 per v128 value live beyond the register file (rows·vecs accumulators,
 *     vecs B vectors, one A splat; 16 xmm registers on x64, 32 on arm64)
 *   + unroll pressure 0.5·(k_unroll − 1)·rows² (unrolled steps keep their A splats live;
 *     measured: unrolling K helps 1-row GEMV tiles a little and hurts 4-row tiles a lot)
 *   B loads cost 3 instead of 1 when B (K·N·4 bytes) outgrows a 1 MiB L2, since every row
 *   tile streams it again;
 * summed over the regions the kernel really runs: full tiles, the 1 x row_vecs tail rows, the
 * 1-vector and scalar column tails (which is why a tile wider than N, or taller than M,
 * is ranked low).
 *
 * LutMatMul (fast path), per group per 16-row tile: 1 table load + bits·(index load, lookup,
 * add, shift, add) + loop overhead 4/unroll, plus a small code-size penalty once the
 * unrolled body passes 64 instructions. With two indices per byte an unrolled step is a pair
 * of groups: half an index load and 1.5 ops to split the nibbles per group and plane.
 *
 * Gemm (strided scalar kernel), per K step of `cols` outputs: one A load, then per column a
 * B load, a mul and an add, plus loop overhead 4; single-column tails.
 *
 * Other kernels have no model: their configurations are ranked by distance from the default.
 */
import type { KernelBuildContext, LaunchShapes, WasmKernelDef } from './kernel-def.js';

const LOOP_OVERHEAD = 4;
/** A v128 spill: a store and a reload, each at least as dear as an arithmetic op. */
const SPILL_COST = 4;
/** Per unrolled K step, per row pair: calibrated on x64 V8 (4 x 2 tiles: unroll 2 is 1.2x, 4 is 1.4x slower). */
const SPLAT_PRESSURE = 0.5;
const L2_BYTES = 1 << 20;

function product(dims: readonly number[]): number {
  return dims.reduce((a, b) => a * b, 1);
}

/** Cost of one K step of a rows × vecs f32x4 tile (vecs = 0: the scalar column tail). */
function gemmStepCost(rows: number, vecs: number, kUnroll: number, vectorRegisters: number, bLoadCost: number): number {
  // Unrolling K keeps every unrolled step's A splats live across the tile's products.
  const unrollPressure = (kUnroll - 1) * rows * rows * SPLAT_PRESSURE;
  if (vecs === 0) return bLoadCost + rows * 3 + LOOP_OVERHEAD / kUnroll + unrollPressure;
  const live = rows * vecs + vecs + 1;
  const spills = Math.max(0, live - (vectorRegisters - 1)) * SPILL_COST;
  return vecs * bLoadCost + rows * 2 + 2 * rows * vecs + LOOP_OVERHEAD / kUnroll + spills + unrollPressure;
}

function matMulCost(def: WasmKernelDef, ctx: KernelBuildContext, shapes: LaunchShapes, knobs: Record<string, number>, arch: string): number {
  const [m, n, depth] = def.args(ctx.node, shapes);
  const batch = Math.max(1, product(shapes.outputs[0]) / Math.max(1, m * n));
  const rows = knobs.rows ?? 4, vecs = knobs.vecs ?? 2, rowVecs = knobs.row_vecs ?? 2, kUnroll = knobs.k_unroll ?? 1;
  const registers = arch === 'arm64' ? 32 : 16;
  const bLoadCost = depth * n * 4 > L2_BYTES ? 3 : 1;
  const step = (r: number, v: number): number => gemmStepCost(r, v, kUnroll, registers, bLoadCost);
  const columnsCost = (r: number, v: number): number => {
    const wide = n - (n % (v * 4));
    const narrow = n - (n % 4) - wide;
    return (wide / (v * 4)) * step(r, v) + (narrow / 4) * step(r, 1) + (n % 4) * step(r, 0);
  };
  const fullRows = m - (m % rows);
  const perK = (fullRows / rows) * columnsCost(rows, vecs) + (m - fullRows) * columnsCost(1, rowVecs);
  // The K remainder loop runs at unroll 1.
  const kMain = depth - (depth % kUnroll);
  const remainderShare = depth > 0 ? (depth - kMain) / depth : 0;
  const remainderExtra = remainderShare * LOOP_OVERHEAD * (1 - 1 / kUnroll) * (perK > 0 ? 1 : 0);
  return batch * depth * (perK + remainderExtra);
}

function lutMatMulCost(ctx: KernelBuildContext, shapes: LaunchShapes, knobs: Record<string, number>): number {
  const attr = (name: string): number => {
    const a = ctx.node.attributes.get(name);
    return a?.kind === 'int' ? a.value : 0;
  };
  const bits = attr('bits'), n = attr('N'), k = attr('K'), g = attr('g') || 4;
  const perByte = attr('indices_per_byte') === 2 ? 2 : 1;
  const m = product(shapes.inputs[0]?.slice(0, -2) ?? [1]);
  const unroll = knobs.unroll ?? 2;
  // Per group: a table load, then per plane the index load (shared by a pair when packed), the
  // nibble split (3 ops per pair), the lookup and the 3-op accumulation.
  const body = 1 + bits * (perByte === 2 ? 0.5 + 1.5 + 4 : 1 + 4);
  const codeSize = unroll * perByte * body > 64 ? 1.02 : 1;
  return m * (n / 16) * (k / g) * (body + LOOP_OVERHEAD / (unroll * perByte)) * codeSize;
}

function gemmCost(def: WasmKernelDef, ctx: KernelBuildContext, shapes: LaunchShapes, knobs: Record<string, number>): number {
  const [m, n, depth] = def.args(ctx.node, shapes);
  const cols = knobs.cols ?? 1;
  const main = n - (n % cols);
  // Per K step: one A load shared by the step's columns, then a B load, mul and add each.
  const step = (width: number): number => 1 + 3 * width + LOOP_OVERHEAD;
  return m * depth * ((main / cols) * step(cols) + (n - main) * step(1));
}

/** The estimated cost of one call, or undefined when the kernel has no cost model. */
export function wasmKernelCost(
  def: WasmKernelDef, ctx: KernelBuildContext, shapes: LaunchShapes, knobs: Record<string, number>, arch: string,
): number | undefined {
  const id = `${def.domain}::${def.op}`;
  if (id === '::MatMul') return matMulCost(def, ctx, shapes, knobs, arch);
  if (id === '::Gemm') return gemmCost(def, ctx, shapes, knobs);
  if (id === 'llmcc::LutMatMul') return lutMatMulCost(ctx, shapes, knobs);
  return undefined;
}
