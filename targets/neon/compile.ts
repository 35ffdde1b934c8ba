/**
 * The neon compiler driver: a model specialised on concrete input shapes → a `NeonProgram`:
 * kernels in the shared form (the wasm templates, printed to C by codegen/c), one arena with
 * the weights at its start, and a fixed launch list with byte offsets and scalar arguments.
 *
 * It reuses the wasm target's node classification (kernel / view / host), kernel templates and
 * launch arguments (`args(node, shapes)`), and plans the arena like the wasm runtime does, but
 * once, at compile time: a standalone C runtime cannot evaluate host steps, so host steps that
 * depend only on constants and input shapes are folded here (their results become constants in
 * the weight image), and any that would read a graph input's values are refused, all at once.
 */
import type { Kernel } from '../../codegen/kernel.js';
import { isInteger, type DType } from '../../ir/dtype.js';
import { CONSTANT_LIMIT } from '../../ir/infer.js';
import { LlmccError, describeNode } from '../../ir/errors.js';
import type { Model, Node, TensorType } from '../../ir/graph.js';
import { Attrs } from '../../ir/ops/attrs.js';
import { lookupOp } from '../../ir/ops/registry.js';
import { inferConcreteShapes } from '../../ir/concrete-shapes.js';
import { Tensor, sizeOf } from '../../ir/tensor.js';
import { verifyModel } from '../../ir/verify.js';
import { importPrequantizedPass } from '../../passes/import-prequantized.js';
import { type LiveBuffer, alignUp, arenaBytes, arenaDtypeOf, placeByLiveness, writeToArena } from '../wasm/arena.js';
import { UNSUPPORTED_PREFIX, classify, isViewOp } from '../wasm/compile.js';
import type { ArenaDtype, KernelBuildContext, LaunchShapes } from '../wasm/kernel-def.js';
import { wasmKernelTable } from '../wasm/links.js';
import { NEON_KERNEL_KNOBS } from './matmul-choice.js';

export const NEON_TARGET = 'neon';
/** Shown in every unsupported report; conformance treats this prefix as UNSUPPORTED. */
export const NEON_UNSUPPORTED_PREFIX = `target ${NEON_TARGET} does not support`;
/** Alignment of every arena buffer (a cache line; q-register loads need 16). */
export const NEON_ALIGN = 64;

/** A graph input or output: where it lives in the arena and how its bytes are stored. */
export interface NeonIo {
  name: string;
  dtype: DType;
  shape: number[];
  storage: ArenaDtype;
  offset: number;
  bytes: number;
}

/** One kernel launch: buffer arguments as arena byte offsets, then scalars. */
export interface NeonLaunch {
  kernel: string;
  node: string;
  buffers: number[];
  scalars: number[];
}

/** A graph input whose value the program was specialised on (an output shape depends on it). */
export interface NeonPinnedInput {
  /** Index into `inputs`. */
  input: number;
  /** The value, in its storage bytes; a run with any other value is refused. */
  bytes: Uint8Array;
}

export interface NeonProgram {
  kernels: Kernel[];
  pinned: NeonPinnedInput[];
  launches: NeonLaunch[];
  /** Bytes of the arena: weights and folded constants first, then activations. */
  arenaBytes: number;
  /** The arena's first `weightImage.byteLength` bytes, placed once at load. */
  weightImage: Uint8Array;
  inputs: NeonIo[];
  outputs: NeonIo[];
}

export interface NeonCompileOptions {
  /** Concrete shape of every graph input (from the test data or `--shape name=dims`). */
  shapes: ReadonlyMap<string, readonly number[]>;
  /**
   * Values of graph inputs, when known: an output shape that depends on an input's value
   * (a total sequence length) is then sized from it, and the program pins that value.
   */
  values?: ReadonlyMap<string, Tensor>;
}

/** An arena buffer: its lifetime (first: -1 for a graph input) and offset, as the liveness placer sees it. */
interface Storage extends LiveBuffer {
  /** Placed in the weight image (weights, folded constants). */
  fixed: boolean;
}

/** Compiles `model` for the given input shapes; rewrites `model` in place (pre-quantized import). */
export async function compileNeon(model: Model, options: NeonCompileOptions): Promise<NeonProgram> {
  verifyModel(model);
  if (importPrequantizedPass.run(model).changed) verifyModel(model);
  const graph = model.graph;
  let classified: Awaited<ReturnType<typeof classify>>;
  try {
    classified = await classify(model);
  } catch (error) {
    if (error instanceof LlmccError && error.message.startsWith(UNSUPPORTED_PREFIX)) {
      throw new LlmccError(error.message.replace(UNSUPPORTED_PREFIX, NEON_UNSUPPORTED_PREFIX).replace(/wasm/g, 'neon'), error.where);
    }
    throw error;
  }
  const { constants } = classified;
  // Inputs with an initializer and no given shape keep their default: a constant.
  const fedInputs = graph.inputs.filter((i) => options.shapes.has(i.name) || !graph.initializers.has(i.name));
  const graphInputs = new Set(fedInputs.map((i) => i.name));
  const steps = moveInputValueStepsToKernels(model, classified, graphInputs, options.values !== undefined);

  // Concrete shapes and host values as the schedule runs.
  const shapes = new Map<string, number[]>();
  const hostValues = new Map<string, Tensor>();
  for (const input of fedInputs) {
    const shape = options.shapes.get(input.name);
    if (!shape) throw new LlmccError(`no concrete shape for graph input '${input.name}' (give --data or --shape ${input.name}=d0,d1,…)`, model.path);
    checkDeclaredShape(input.name, input.type, shape);
    shapes.set(input.name, [...shape]);
  }
  const constantOf = (name: string): Tensor | undefined => {
    const known = hostValues.get(name) ?? constants.get(name);
    if (known) return known;
    if (graphInputs.has(name)) return undefined;
    return graph.initializers.get(name)?.load();
  };
  const dtypeOf = (name: string): DType => {
    const t = constantOf(name);
    if (t) return t.dtype;
    const type = fedInputs.find((i) => i.name === name)?.type ?? graph.valueInfo.get(name) ?? graph.outputs.find((o) => o.name === name)?.type;
    if (!type) throw new LlmccError(`no type is known for value '${name}'`, model.path);
    return type.dtype;
  };
  const shapeOf = (name: string): number[] => {
    const known = shapes.get(name);
    if (known) return known;
    const t = constantOf(name);
    if (t) return [...t.shape];
    throw new LlmccError(`internal error: no shape for value '${name}'`);
  };

  const pinnedNames = new Set<string>();
  // Small integer values derived from the given input values (masks → sequence lengths), and
  // the graph inputs each depends on: only ever used to size outputs, which pins those inputs.
  const speculative = new Map<string, { tensor: Tensor; deps: Set<string> }>();
  for (const [name, tensor] of options.values ?? []) {
    if (graphInputs.has(name) && isShapeLike(tensor)) speculative.set(name, { tensor, deps: new Set([name]) });
  }
  const storages = new Map<string, Storage>();
  const planned: Storage[] = [];
  const fixedValues: { storage: Storage; tensor: Tensor; name: string }[] = [];
  const newStorage = (bytes: number, first: number, fixed = false): Storage => {
    const s: Storage = { bytes: alignUp(Math.max(bytes, 1), NEON_ALIGN), first, last: first, offset: 0, fixed };
    if (!fixed) planned.push(s);
    return s;
  };
  /** Storage of a value a kernel or view reads: planned, or a constant placed in the weight image. */
  const storageOf = (name: string): Storage => {
    let s = storages.get(name);
    if (!s) {
      const tensor = constantOf(name);
      if (!tensor) throw new LlmccError(`internal error: value '${name}' has no arena buffer`);
      s = newStorage(arenaBytes(tensor.dtype, tensor.size), -1, true);
      fixedValues.push({ storage: s, tensor, name });
      storages.set(name, s);
    }
    return s;
  };

  const inputs: { name: string; storage: Storage }[] = [];
  for (const input of fedInputs) {
    const s = newStorage(arenaBytes(input.type?.dtype ?? 'f32', sizeOf(shapes.get(input.name)!)), -1);
    storages.set(input.name, s);
    inputs.push({ name: input.name, storage: s });
  }

  const kernels: Kernel[] = [];
  const kernelByStructure = new Map<string, string>();
  const launches: (NeonLaunch & { storages: Storage[] })[] = [];
  steps.forEach(({ step, node, kernelDef, ctx }, index) => {
    const opset = model.opsets.get(node.domain) ?? 1;
    const attrs = new Attrs(node);
    const op = lookupOp(node.domain, node.op);
    if (!op) throw new LlmccError('op unknown to this build', describeNode(node));
    if (step.kind === 'host') {
      const shapeOnly = node.domain === '' && (node.op === 'Shape' || node.op === 'Size');
      const evalInputs = node.inputs.map((n) => {
        if (!n) return undefined;
        if (graphInputs.has(n) && !shapeOnly) {
          // Kept on the host only to compute shapes: folded from the given value, which is pinned.
          const value = options.values?.get(n);
          if (!value) throw new LlmccError(`${NEON_UNSUPPORTED_PREFIX} ${node.op} ("${node.name}": computes a shape from graph input '${n}'; give its value with --data)`, model.path);
          pinnedNames.add(n);
          return value;
        }
        return constantOf(n) ?? Tensor.zeros(dtypeOf(n), shapeOf(n)); // Shape/Size read only the shape
      });
      const outputs = op.evaluate({
        node, opset, attrs, inputs: evalInputs,
        runSubgraph: () => { throw new LlmccError('subgraphs are not supported on neon', describeNode(node)); },
      });
      node.outputs.forEach((name, k) => {
        if (!name) return;
        hostValues.set(name, outputs[k]);
        shapes.set(name, [...outputs[k].shape]);
      });
      return;
    }
    const present = node.inputs.map((n) => n || undefined);
    if (step.kind === 'kernel' && present.some((n) => n && speculative.has(n))) {
      const known = present.map((n) => (n ? speculative.get(n)?.tensor ?? constantOf(n) : undefined));
      if (present.every((n, i) => !n || known[i])) {
        try {
          const values = op.evaluate({ node, opset, attrs, inputs: known, runSubgraph: () => { throw new Error('no subgraphs'); } });
          const deps = new Set(present.flatMap((n) => [...(n ? speculative.get(n)?.deps ?? [] : [])]));
          node.outputs.forEach((name, k) => { if (name && values[k] && isShapeLike(values[k])) speculative.set(name, { tensor: values[k], deps }); });
        } catch {
          // Not evaluable here: outputs depending on it stay unsized (and are refused).
        }
      }
    }
    let outShapes: number[][];
    try {
      outShapes = inferConcrete(model, node, present, dtypeOf, shapeOf, constantOf);
    } catch (error) {
      if (!options.values || !(error instanceof LlmccError) || !error.message.includes('data-dependent shape')) throw error;
      // Size it from the values that graph inputs give small integer values, and pin those inputs.
      const read = new Set<string>();
      outShapes = inferConcrete(model, node, present, dtypeOf, shapeOf, (name) => {
        const known = speculative.get(name);
        if (known) for (const d of known.deps) read.add(d);
        return known?.tensor ?? constantOf(name);
      });
      for (const name of read) pinnedNames.add(name);
    }
    node.outputs.forEach((name, k) => { if (name) shapes.set(name, outShapes[k]); });
    for (const n of present) if (n) storageOf(n).last = index;
    if (step.kind === 'view') {
      const s = storageOf(node.inputs[0]);
      node.outputs.forEach((name) => { if (name) storages.set(name, s); });
      return;
    }
    const outStorages = node.outputs.filter((n) => n).map((name) => {
      const s = newStorage(arenaBytes(dtypeOf(name), sizeOf(shapes.get(name)!)), index);
      storages.set(name, s);
      return s;
    });
    const launch: LaunchShapes = {
      inputs: present.map((n) => (n ? shapeOf(n) : undefined)),
      outputs: node.outputs.map((n) => (n ? shapes.get(n)! : [])),
    };
    if (launch.outputs.every((s) => sizeOf(s) === 0) && node.outputs.some((n) => n)) return; // nothing to compute
    const def = kernelDef!;
    const scratch = def.scratchBytes ? newStorage(def.scratchBytes(node, launch), index) : undefined;
    let kernel: Kernel;
    try {
      // The neon target's own knobs where the wasm defaults do not suit it (matmul-choice.ts).
      kernel = def.build({ ...ctx!, tuning: ctx!.tuning ?? NEON_KERNEL_KNOBS[`${node.domain}::${node.op}`] });
    } catch (error) {
      if (error instanceof LlmccError) throw error.where ? error : new LlmccError(error.message, describeNode(node));
      throw new Error(`building the kernel failed: ${error instanceof Error ? error.message : String(error)}, ${describeNode(node)}`);
    }
    const key = JSON.stringify({ params: kernel.params, body: kernel.body });
    let kernelName = kernelByStructure.get(key);
    if (!kernelName) {
      kernelName = kernel.name;
      kernelByStructure.set(key, kernelName);
      kernels.push(kernel);
    }
    const inStorages = present.filter((n): n is string => !!n).map(storageOf);
    launches.push({
      kernel: kernelName,
      node: node.name,
      storages: [...inStorages, ...outStorages, ...(scratch ? [scratch] : [])],
      buffers: [],
      scalars: def.args(node, launch),
    });
  });

  // Graph outputs: arena buffers, or constants/host results placed in the weight image.
  const outputStorages = graph.outputs.map(({ name }) => {
    let s = storages.get(name);
    if (!s) s = storageOf(name);
    if (!s.fixed) s.last = steps.length;
    return { name, storage: s };
  });

  // The weight image: every fixed value, in first-use order.
  let weightBytes = 0;
  for (const f of fixedValues) {
    f.storage.offset = weightBytes;
    weightBytes += f.storage.bytes;
  }
  const weightImage = new Uint8Array(weightBytes);
  for (const f of fixedValues) writeToArena(weightImage.buffer, f.storage.offset, f.tensor, `constant '${f.name}'`, true);
  const arenaEnd = placeByLiveness(planned, alignUp(weightBytes, NEON_ALIGN));

  const io = ({ name, storage }: { name: string; storage: Storage }): NeonIo => {
    const dtype = dtypeOf(name);
    const shape = shapeOf(name);
    return { name, dtype, shape, storage: arenaDtypeOf(dtype), offset: storage.offset, bytes: arenaBytes(dtype, sizeOf(shape)) };
  };
  const inputIos = inputs.map(io);
  const pinned = [...pinnedNames].map((name) => {
    const index = inputIos.findIndex((i) => i.name === name);
    const bytes = new Uint8Array(inputIos[index].bytes);
    writeToArena(bytes.buffer, 0, options.values!.get(name)!, `input '${name}'`);
    return { input: index, bytes };
  });
  return {
    kernels,
    pinned,
    launches: launches.map(({ storages: s, ...rest }) => ({ ...rest, buffers: s.map((x) => x.offset) })),
    arenaBytes: alignUp(arenaEnd, NEON_ALIGN),
    weightImage,
    inputs: inputIos,
    outputs: outputStorages.map(io),
  };
}

/** Small integer tensors: what shape computations are made of. */
function isShapeLike(t: Tensor): boolean {
  return t.size <= CONSTANT_LIMIT && (isInteger(t.dtype) || t.dtype === 'bool');
}

function checkDeclaredShape(name: string, type: TensorType | undefined, shape: readonly number[]): void {
  const declared = type?.shape;
  if (!declared) return;
  if (declared.length !== shape.length || declared.some((d, i) => typeof d === 'number' && d !== shape[i])) {
    throw new LlmccError(`input '${name}' has shape [${shape.join(',')}] but the model declares [${declared.join(',')}]`);
  }
}

/** Output shapes of a kernel or view node from its op's `infer` on concrete inputs. */
function inferConcrete(
  model: Model,
  node: Node,
  present: (string | undefined)[],
  dtypeOf: (name: string) => DType,
  shapeOf: (name: string) => number[],
  constantOf: (name: string) => Tensor | undefined,
): number[][] {
  return inferConcreteShapes({
    node,
    op: lookupOp(node.domain, node.op)!,
    opset: model.opsets.get(node.domain) ?? 1,
    inputs: present.map((n) => (n ? { dtype: dtypeOf(n), shape: shapeOf(n) } : undefined)),
    constant: (i) => (present[i] ? constantOf(present[i]!) : undefined),
    target: 'neon',
    dataDependent: (name, shape) => `${NEON_UNSUPPORTED_PREFIX} output '${name}' of data-dependent shape ${shape}`,
  });
}


type Classified = Awaited<ReturnType<typeof classify>>;

/**
 * The wasm classification evaluates ops on integer graph inputs (token ids, positions) on the
 * host; a standalone C program has no host, so those steps, and every host step downstream of
 * them, become kernels when a kernel accepts the node. The rest are refused, all at once.
 */
function moveInputValueStepsToKernels(model: Model, classified: Classified, graphInputs: ReadonlySet<string>, valuesKnown: boolean): Classified['steps'] {
  const graph = model.graph;
  const kernels = wasmKernelTable();
  const onDevice = new Set(graphInputs);
  // Values a kernel, a view's data or the graph outputs need in the arena; host steps feeding
  // only shapes (reshape targets, axes) may instead be folded from given input values, pinned.
  const neededOnDevice = new Set(graph.outputs.map((o) => o.name));
  for (const { step, node } of [...classified.steps].reverse()) {
    if (step.kind === 'kernel') node.inputs.forEach((n) => n && neededOnDevice.add(n));
    else if (step.kind === 'view') neededOnDevice.add(node.inputs[0]);
    else if (node.outputs.some((n) => n && neededOnDevice.has(n))) node.inputs.forEach((n) => n && neededOnDevice.add(n));
  }
  const typeOf = (name: string): TensorType | undefined => {
    const constant = classified.constants.get(name);
    if (constant) return { dtype: constant.dtype, shape: [...constant.shape] };
    const weight = graph.initializers.get(name);
    if (weight && !onDevice.has(name)) return { dtype: weight.dtype, shape: [...weight.shape] };
    return graph.inputs.find((i) => i.name === name)?.type ?? graph.valueInfo.get(name) ?? graph.outputs.find((o) => o.name === name)?.type;
  };
  const refused: string[] = [];
  const steps = classified.steps.map((entry, index) => {
    const { step, node } = entry;
    if (step.kind === 'view') {
      // With input values given, a computed shape input is sized (and pinned) when planning.
      const computed = node.inputs.slice(1).filter((n) => n && onDevice.has(n));
      if (computed.length && !valuesKnown) refused.push(`${node.op} ("${node.name}": its shape input ${computed.map((n) => `'${n}'`).join(', ')} depends on graph input values)`);
      return entry;
    }
    if (step.kind === 'kernel') return entry;
    const shapeOnly = node.domain === '' && (node.op === 'Shape' || node.op === 'Size');
    if (shapeOnly || !node.inputs.some((n) => n && onDevice.has(n))) return entry;
    const readsOnlyGraphInputs = node.inputs.every((n) => !n || !onDevice.has(n) || graphInputs.has(n));
    if (valuesKnown && readsOnlyGraphInputs && !node.outputs.some((n) => n && neededOnDevice.has(n))) return entry;
    for (const name of node.outputs) if (name) onDevice.add(name);
    if (isViewOp(node)) {
      const computed = node.inputs.slice(1).filter((n) => n && onDevice.has(n));
      if (!computed.length) return { step: { kind: 'view' as const, node: step.node }, node };
    }
    const def = kernels.get(`${node.domain}::${node.op}`);
    const ctx: KernelBuildContext = {
      node,
      inputs: node.inputs.map((n) => (n ? typeOf(n) : undefined)),
      outputs: node.outputs.map((n) => typeOf(n) ?? { dtype: 'f32' as DType, shape: undefined }),
      constant: (i) => {
        const name = node.inputs[i];
        if (!name || onDevice.has(name)) return undefined;
        return classified.constants.get(name) ?? graph.initializers.get(name)?.load();
      },
      name: `k${index}_${node.op.replace(/[^A-Za-z0-9_]/g, '_')}`,
      opset: model.opsets.get(node.domain) ?? 1,
    };
    let reason = def ? undefined : 'no kernel for an op on graph input values';
    if (def) {
      try {
        reason = def.check(ctx);
      } catch (error) {
        reason = error instanceof Error ? error.message : String(error);
      }
    }
    if (reason) {
      refused.push(`${node.op} ("${node.name}": ${reason.replace(/wasm/g, 'neon')})`);
      return entry;
    }
    return { step: { kind: 'kernel' as const, node: step.node, kernel: ctx.name, scratch: def!.scratchBytes !== undefined }, node, kernelDef: def, ctx };
  });
  if (refused.length) throw new LlmccError(`${NEON_UNSUPPORTED_PREFIX} ${refused.join(', ')}`, model.path);
  return steps;
}
