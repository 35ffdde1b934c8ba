/**
 * The shared machinery of the wasm elementwise kernels (unary, binary, variadic, Where, Clip,
 * Cast, activations): numpy broadcasting over any number of inputs.
 *
 * One kernel per node, specialised on the output rank R and the element types. At launch,
 * `elementwiseArgs` computes each input's broadcast strides (0 on broadcast axes), merges
 * adjacent axes that stay contiguous for every input, drops size-1 axes and left-pads to R:
 * a same-shape op becomes one flat axis, a bias add [B,S,H] + [H] becomes [B·S, H] with
 * inner strides 1 and 0. The kernel walks the outer axes as a loop nest and the innermost
 * axis as a run: when every f32 input's inner stride is 0 or 1 (checked at run time) the run
 * is f32x4 SIMD (stride-1 inputs load vectors, stride-0 inputs are splatted once), otherwise
 * a scalar strided loop.
 */
import {
  KernelBuilder,
  add,
  eq,
  i32,
  mul,
  splat,
  sub,
  rem,
  type BufferRef,
  type Expr,
} from '../../../codegen/builder.js';
import type { Kernel, ScalarType } from '../../../codegen/kernel.js';
import { type DType, isFloat } from '../../../ir/dtype.js';
import type { TensorType } from '../../../ir/graph.js';
import type { KernelBuildContext, LaunchShapes, WasmKernelDef } from '../kernel-def.js';

/** The buffer element type a tensor of `dtype` has in the arena (see targets/wasm/arena.ts). */
export function elemOf(dtype: DType): ScalarType | undefined {
  if (isFloat(dtype)) return 'f32';
  if (dtype === 'bool' || dtype === 'u8') return 'u8';
  if (dtype === 'i8') return 'i8';
  if (dtype === 'u32') return 'u32';
  if (dtype === 'string' || dtype === 'i4' || dtype === 'u4' || dtype === 'i2' || dtype === 'u2') return undefined;
  return 'i32';
}

/** The type a value of `dtype` computes as inside a kernel: f32, u32 or i32. */
export function computeOf(dtype: DType): 'f32' | 'i32' | 'u32' {
  const elem = elemOf(dtype);
  return elem === 'f32' ? 'f32' : elem === 'u32' ? 'u32' : 'i32';
}

/**
 * Why the node has present inputs/outputs beyond what a kernel with fixed buffer params
 * declares, or undefined. The runtime passes every present input and output as a buffer,
 * so an extra one would shift the later params (and trap or corrupt memory).
 */
export function checkArity(ctx: KernelBuildContext, maxInputs: number, maxOutputs: number): string | undefined {
  const extraIn = ctx.node.inputs.findIndex((name, i) => i >= maxInputs && name);
  if (extraIn >= 0) return `input ${extraIn} is beyond the ${maxInputs} input(s) ${ctx.node.op} takes`;
  const extraOut = ctx.node.outputs.findIndex((name, i) => i >= maxOutputs && name);
  if (extraOut >= 0) return `output ${extraOut} is beyond the ${maxOutputs} output(s) ${ctx.node.op} has`;
  return undefined;
}

/** Why the node's tensors cannot live in the arena, or undefined. */
export function checkElems(ctx: KernelBuildContext): string | undefined {
  for (const [i, t] of ctx.inputs.entries()) {
    if (t && !elemOf(t.dtype)) return `input ${i} has dtype ${t.dtype}, which the wasm arena cannot hold`;
  }
  for (const [i, t] of ctx.outputs.entries()) {
    if (ctx.node.outputs[i] && !elemOf(t.dtype)) return `output ${i} has dtype ${t.dtype}, which the wasm arena cannot hold`;
  }
  return undefined;
}

/**
 * Wraps an integer result to its dtype's range where the arena stores it wider than the
 * dtype (i16/u16 live in i32 slots; 8-bit types wrap in their byte store).
 */
export function wrapInt(x: Expr, dtype: DType): Expr {
  if (dtype === 'i16') return { kind: 'cast', a: x, type: 'i16' };
  if (dtype === 'u16') return { kind: 'cast', a: x, type: 'u16' };
  return x;
}

/** Computes one output element from the input values (indexed by input position). */
export type ElementFn = (k: KernelBuilder, x: (Expr | undefined)[]) => Expr;

export interface ElementwiseSpec {
  scalar: ElementFn;
  /** f32x4 form; used when every input and the output are f32. */
  vector?: ElementFn;
}

/** Rank the kernel is specialised on: the output's static rank (at least 1), or undefined. */
export function elementwiseRank(ctx: KernelBuildContext): number | undefined {
  const shape = ctx.outputs[0]?.shape;
  if (!shape) return undefined;
  return Math.max(1, shape.length);
}

export function checkElementwise(ctx: KernelBuildContext, elementInputs = Infinity): string | undefined {
  if (elementwiseRank(ctx) === undefined) return 'output rank is unknown';
  for (const [i, t] of ctx.inputs.entries()) {
    if (ctx.node.inputs[i] && !t?.shape && i < elementInputs) return `input ${i} rank is unknown`;
  }
  if (ctx.node.attributes.has('axis') && ctx.node.attributes.has('broadcast')) return 'legacy broadcast with an axis attribute';
  return checkElems(ctx);
}

/** Vector inner runs only for small input counts (variants double per input). */
const MAX_VECTOR_INPUTS = 3;

/**
 * `elementInputs` limits broadcasting to the first inputs (CastLike's second input only gives a
 * dtype); the others are still declared as buffers, per the calling convention.
 */
export function buildElementwise(ctx: KernelBuildContext, spec: ElementwiseSpec, elementInputs = Infinity): Kernel {
  const rank = elementwiseRank(ctx) ?? 1;
  const k = new KernelBuilder(ctx.name);
  const inputs: (BufferRef | undefined)[] = ctx.node.inputs.map((name, i) => {
    const t = ctx.inputs[i];
    return name && t ? k.buffer(`in${i}`, elemOf(t.dtype) ?? 'f32', 'read') : undefined;
  });
  const outType = ctx.outputs[0];
  const out = k.buffer('out0', elemOf(outType.dtype) ?? 'f32', 'write');
  const present = inputs.flatMap((b, i) => (b && i < elementInputs ? [i] : []));
  const dims = Array.from({ length: rank }, (_, d) => k.scalar(`dim${d}`));
  const strides = new Map<number, Expr[]>();
  for (const i of present) strides.set(i, Array.from({ length: rank }, (_, d) => k.scalar(`stride${i}_${d}`)));

  const allF32 = present.every((i) => elemOf(ctx.inputs[i]!.dtype) === 'f32') && elemOf(outType.dtype) === 'f32';
  const vectorFn = allF32 && spec.vector && present.length <= MAX_VECTOR_INPUTS ? spec.vector : undefined;
  const inner = rank - 1;

  const load = (i: number, offset: Expr): Expr => inputs[i]!.load(offset);
  const values = (offsets: Map<number, Expr>): (Expr | undefined)[] =>
    inputs.map((b, i) => (b && i < elementInputs ? load(i, offsets.get(i)!) : undefined));

  /** Scalar run over the innermost axis with arbitrary strides. */
  const scalarRun = (bases: Map<number, Expr>, outBase: Expr, from: Expr | number): void => {
    k.loop('j', from, dims[inner], (j) => {
      const offsets = new Map<number, Expr>();
      for (const i of present) offsets.set(i, add(bases.get(i)!, mul(j, strides.get(i)![inner])));
      k.store(out, add(outBase, j), spec.scalar(k, values(offsets)));
    });
  };

  /** Vector run for a known stride class (true = contiguous, false = broadcast) per input. */
  const vectorRun = (bases: Map<number, Expr>, outBase: Expr, contiguous: Map<number, boolean>, fn: typeof spec.scalar): void => {
    const hoisted = new Map<number, Expr>();
    for (const i of present) {
      if (!contiguous.get(i)) hoisted.set(i, k.let(`b${i}`, splat(load(i, bases.get(i)!), 'f32x4')));
    }
    const n = dims[inner];
    const vend = k.let('vend', sub(n, rem(n, 4)));
    k.loop('v', 0, vend, (j) => {
      const xs = inputs.map((b, i) => {
        if (!b || i >= elementInputs) return undefined;
        return contiguous.get(i) ? b.loadVec(add(bases.get(i)!, j), 'f32x4') : hoisted.get(i)!;
      });
      k.store(out, add(outBase, j), fn(k, xs));
    }, { step: 4 });
    scalarRun(bases, outBase, vend);
  };

  const innerRun = (bases: Map<number, Expr>, outBase: Expr): void => {
    if (!vectorFn) {
      scalarRun(bases, outBase, 0);
      return;
    }
    const choose = (index: number, classes: Map<number, boolean>): void => {
      if (index === present.length) {
        vectorRun(bases, outBase, classes, vectorFn);
        return;
      }
      const i = present[index];
      const s = strides.get(i)![inner];
      k.if(eq(s, 1), () => choose(index + 1, new Map([...classes, [i, true]])), () =>
        k.if(eq(s, 0), () => choose(index + 1, new Map([...classes, [i, false]])), () => scalarRun(bases, outBase, 0)));
    };
    choose(0, new Map());
  };

  const nest = (level: number, bases: Map<number, Expr>, outBase: Expr): void => {
    if (level === inner) {
      innerRun(bases, mul(outBase, dims[inner]));
      return;
    }
    k.loop(`i${level}`, 0, dims[level], (iv) => {
      const next = new Map<number, Expr>();
      for (const i of present) next.set(i, k.let(`o${i}_${level}`, add(bases.get(i)!, mul(iv, strides.get(i)![level]))));
      const ob = k.let(`out_${level}`, add(mul(outBase, dims[level]), iv));
      nest(level + 1, next, ob);
    }, { parallel: true });
  };

  nest(0, new Map(present.map((i) => [i, i32(0)])), i32(0));
  return k.build();
}

/** Static input types, for templates that need the dtypes. */
export function dtypeOf(t: TensorType | undefined): DType {
  if (!t) throw new Error('elementwise: missing input type');
  return t.dtype;
}

/**
 * Launch args: the coalesced, left-padded output dims, then per present input its strides.
 * Inputs are right-aligned against the output (numpy broadcasting).
 */
export function elementwiseArgs(rank: number, shapes: LaunchShapes, elementInputs = Infinity): number[] {
  const outShape = shapes.outputs[0];
  const present = shapes.inputs.flatMap((s, i) => (s && i < elementInputs ? [i] : []));
  const outRank = outShape.length;
  // Broadcast strides of each input against the output's axes.
  const inStrides = present.map((i) => {
    const shape = shapes.inputs[i]!;
    const strides = new Array<number>(outRank).fill(0);
    let stride = 1;
    for (let d = shape.length - 1; d >= 0; d--) {
      const od = outRank - shape.length + d;
      if (od >= 0 && shape[d] !== 1) strides[od] = stride;
      stride *= shape[d];
    }
    return strides;
  });
  // Merge axes (drop size-1 ones; join neighbours that stay affine for every input).
  const dims: number[] = [];
  const merged: number[][] = present.map(() => []);
  for (let d = 0; d < outRank; d++) {
    if (outShape[d] === 1) continue;
    const last = dims.length - 1;
    const joinable = last >= 0 && inStrides.every((s, p) => merged[p][last] === s[d] * outShape[d]);
    if (joinable) {
      dims[last] *= outShape[d];
      inStrides.forEach((s, p) => (merged[p][last] = s[d]));
    } else {
      dims.push(outShape[d]);
      inStrides.forEach((s, p) => merged[p].push(s[d]));
    }
  }
  if (outShape.some((d) => d === 0)) {
    dims.length = 0;
    dims.push(0);
    merged.forEach((m) => (m.length = 0, m.push(0)));
  }
  if (dims.length > rank) throw new Error(`elementwise launch: ${dims.length} axes for a rank-${rank} kernel`);
  const pad = rank - dims.length;
  const args = [...new Array<number>(pad).fill(1), ...dims];
  for (const m of merged) args.push(...new Array<number>(pad).fill(0), ...m);
  return args;
}

/**
 * A WasmKernelDef for an elementwise op: `specFor` picks the element functions from the
 * node's static facts, or returns a reason string when this node cannot run.
 */
export function defineElementwise(
  domain: string,
  op: string,
  specFor: (ctx: KernelBuildContext) => ElementwiseSpec | string,
  elementInputs = Infinity,
): WasmKernelDef {
  return {
    domain,
    op,
    check(ctx) {
      const reason = checkElementwise(ctx, elementInputs);
      if (reason) return reason;
      const spec = specFor(ctx);
      return typeof spec === 'string' ? spec : undefined;
    },
    build(ctx) {
      const spec = specFor(ctx);
      if (typeof spec === 'string') throw new Error(`${op}: ${spec}`);
      return buildElementwise(ctx, spec, elementInputs);
    },
    args(_node, shapes) {
      const outRank = Math.max(1, shapes.outputs[0].length);
      return elementwiseArgs(outRank, shapes, elementInputs);
    },
  };
}
