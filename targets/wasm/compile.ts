/**
 * The wasm compiler driver: verified model → schedule → kernels → one wasm module, weights
 * and a manifest (a `CompiledWasm`, which src/bundle writes and src/runtime runs).
 *
 * Every node becomes one of
 * - host: shape computations (Shape → Gather → Concat → Reshape chains, masks from integer
 *   inputs) evaluated in JS with the reference op, when all its inputs are available in JS
 *   and small (constants, host results, integer graph inputs);
 * - view: Reshape/Squeeze/Unsqueeze/Flatten/Identity of an arena value: the output aliases
 *   the input's buffer with a new shape;
 * - kernel: a registered WasmKernelDef whose `check` passes;
 * - or unsupported: reported all at once, in one error.
 * Constant nodes become weights.
 */
import type { Kernel } from '../../codegen/kernel.js';
import type { DType } from '../../ir/dtype.js';
import { isInteger } from '../../ir/dtype.js';
import { LlmccError, describeNode } from '../../ir/errors.js';
import type { Graph, Model, Node, TensorType } from '../../ir/graph.js';
import { CONSTANT_LIMIT } from '../../ir/infer.js';
import { Attrs } from '../../ir/ops/attrs.js';
import { lookupOp } from '../../ir/ops/registry.js';
import { Tensor, sizeOf } from '../../ir/tensor.js';
import { verifyModel } from '../../ir/verify.js';
import { importPrequantizedPass } from '../../passes/import-prequantized.js';
import { ARENA_ALIGN, WASM32_MAX_BYTES, alignUp, arenaBytes, arenaDtypeOf } from './arena.js';
import type { KernelBuildContext, WasmKernelDef } from './kernel-def.js';
import { wasmKernelTable, wasmModuleBuilder } from './links.js';
import {
  type CompiledWasm, type Step, type ValueEntry, type WasmProgram, type WeightEntry, WASM_TARGET, serializeNode,
} from './program.js';
import { encodeWeightInto, encodedBytes, weightEncoding } from './weights.js';

/** Ops whose output aliases their first input's buffer with a new shape. */
export const VIEW_OPS: ReadonlySet<string> = new Set(['Reshape', 'Squeeze', 'Unsqueeze', 'Flatten', 'Identity']);

/** Ops the host may evaluate in JS when all their inputs are known there (shape arithmetic). */
export const HOST_OPS: ReadonlySet<string> = new Set([
  'Shape', 'Size', 'Gather', 'GatherElements', 'Concat', 'Slice', 'Split', 'Unsqueeze', 'Squeeze', 'Reshape', 'Flatten',
  'Identity', 'Cast', 'CastLike', 'Range', 'ConstantOfShape', 'Equal', 'Where', 'Add', 'Sub', 'Mul', 'Div', 'Mod',
  'Neg', 'Abs', 'Sign', 'Less', 'LessOrEqual', 'Greater', 'GreaterOrEqual', 'And', 'Or', 'Xor', 'Not', 'Expand',
  'Tile', 'ReduceSum', 'ReduceMax', 'ReduceMin', 'ReduceProd', 'Min', 'Max', 'Sum', 'Transpose', 'CumSum',
  'NonZero', 'Trilu', 'ScatterND', 'ScatterElements', 'Clip', 'ArgMax', 'ArgMin', 'Pad', 'OneHot', 'Einsum',
]);

/** Ops that read only their input's shape, never its values. */
const SHAPE_ONLY_OPS: ReadonlySet<string> = new Set(['Shape', 'Size']);
/** Ops that only move a tensor's elements: on constants, folded at compile time whatever the size. */
const REARRANGING_OPS: ReadonlySet<string> = new Set(['Transpose', 'Identity']);

/** Shown in every unsupported report; conformance treats this prefix as UNSUPPORTED. */
export const UNSUPPORTED_PREFIX = `target ${WASM_TARGET} does not support`;

export interface WasmCompileOptions {
  /** Written into the bundle manifest. */
  producer?: string;
  /**
   * Knobs for a tunable node (from the tuning database, src/tune); undefined: the template's
   * defaults. The knobs used are recorded on the node's kernel step in the manifest.
   */
  tuning?: (def: WasmKernelDef, ctx: KernelBuildContext) => Readonly<Record<string, number>> | undefined;
  /**
   * Drop each weight's tensor from the model once its bytes are in the blob (the CLI's compile,
   * which does not use the model afterwards): weights are then held once, not twice, at peak.
   * The model's initializers keep their dtype and shape; loading one afterwards throws.
   */
  releaseWeights?: boolean;
}

export function isViewOp(node: Pick<Node, 'domain' | 'op'>): boolean {
  return node.domain === '' && VIEW_OPS.has(node.op);
}

export function isHostOp(node: Pick<Node, 'domain' | 'op'>): boolean {
  return node.domain === '' && (HOST_OPS.has(node.op) || node.op === 'Constant');
}

/** Whether the wasm target claims an op at all (kernel, view or host); nodes may still be refused. */
export function wasmClaims(domain: string, op: string): boolean {
  const kernels = wasmKernelTable();
  return kernels.has(`${domain}::${op}`) || isViewOp({ domain, op }) || isHostOp({ domain, op });
}

interface Classified {
  steps: { step: Step; node: Node; kernelDef?: WasmKernelDef; ctx?: KernelBuildContext }[];
  /** Values with a JS tensor at run time. */
  host: Set<string>;
  /** Constant node outputs, turned into weights. */
  constants: Map<string, Tensor>;
  hostReadInputs: Set<string>;
}

export async function compileWasm(model: Model, options: WasmCompileOptions = {}): Promise<CompiledWasm> {
  verifyModel(model);
  // MatMulNBits / DequantizeLinear→MatMul run as llmcc.QuantMatMul (and llmcc.UnpackNBits for
  // weights fed as graph inputs): the form the wasm kernels implement. Rewrites `model` in place.
  if (importPrequantizedPass.run(model).changed) verifyModel(model);
  const graph = model.graph;
  const classified = await classify(model);
  const { steps, constants } = classified;

  const typeOf = (name: string): TensorType | undefined => valueType(graph, constants, name);

  // Which values live in the arena: everything a kernel reads or writes and view data.
  const inArena = new Set<string>();
  const hostNeeded = new Set<string>();
  for (const { step, node } of steps) {
    if (step.kind === 'kernel') {
      for (const name of [...node.inputs, ...node.outputs]) if (name) inArena.add(name);
    } else if (step.kind === 'view') {
      inArena.add(node.inputs[0]);
      for (const name of node.outputs) if (name) inArena.add(name);
      node.inputs.slice(1).forEach((name) => name && hostNeeded.add(name));
    } else {
      const shapeOnly = SHAPE_ONLY_OPS.has(node.op);
      for (const name of node.inputs) if (name && !shapeOnly) hostNeeded.add(name);
    }
  }
  for (const output of graph.outputs) if (classified.host.has(output.name)) hostNeeded.add(output.name);

  // Weights: initializers and folded constants that anything reads.
  const isInput = (name: string): boolean => graph.inputs.some((i) => i.name === name);
  // Initializers named like graph inputs are defaults for unfed inputs: stored, never placed.
  const weightNames = [...graph.initializers.keys(), ...constants.keys()]
    .filter((name) => isInput(name) || inArena.has(name) || hostNeeded.has(name) || graph.outputs.some((o) => o.name === name));
  // The wasm32 limit is checked from shapes alone, before any weight is read: a model that
  // cannot fit is refused in seconds, not after loading gigabytes.
  const plannedArena = weightNames
    .filter((name) => inArena.has(name) && !isInput(name))
    .reduce((offset, name) => {
      const constant = constants.get(name);
      const weight = graph.initializers.get(name);
      const dtype = constant?.dtype ?? weight!.dtype;
      const count = constant?.size ?? weight!.shape.reduce((a, b) => a * b, 1);
      return alignUp(offset + arenaBytes(dtype, count));
    }, 0);
  if (plannedArena >= WASM32_MAX_BYTES) {
    throw new LlmccError(
      `the weights need ${(plannedArena / 2 ** 30).toFixed(2)} GiB in the wasm arena, more than wasm32's 4 GiB; lower them to fewer bits (--lower --bits 4 or 2)`,
      model.path);
  }
  // Lay the weights out from their shapes first, then encode each straight into one blob:
  // at 1B parameters a second copy (parts, then the blob) would cost gigabytes.
  const weights: WeightEntry[] = [];
  let fileOffset = 0;
  let arenaOffset = 0;
  for (const name of weightNames) {
    const constant = constants.get(name);
    const weight = graph.initializers.get(name);
    const dtype = constant?.dtype ?? weight!.dtype;
    const shape = [...(constant?.shape ?? weight!.shape)];
    const count = shape.reduce((a, b) => a * b, 1);
    const encoding = weightEncoding(dtype);
    const byteLength = encodedBytes(encoding, count);
    const entry: WeightEntry = { name, dtype, shape, encoding, offset: fileOffset, byteLength };
    if (inArena.has(name) && !isInput(name)) {
      entry.arenaOffset = arenaOffset;
      arenaOffset = alignUp(arenaOffset + arenaBytes(dtype, count));
    }
    weights.push(entry);
    fileOffset = alignUp(fileOffset + byteLength);
  }

  // Kernels, deduplicated by structure.
  const kernels: Kernel[] = [];
  const byStructure = new Map<string, string>();
  for (const entry of steps) {
    if (entry.step.kind !== 'kernel') continue;
    let kernel: Kernel;
    const tuning = options.tuning?.(entry.kernelDef!, entry.ctx!);
    if (tuning) {
      entry.ctx!.tuning = tuning;
      entry.step.tuning = { ...tuning };
    }
    try {
      kernel = entry.kernelDef!.build(entry.ctx!);
    } catch (error) {
      if (error instanceof LlmccError) throw error.where ? error : new LlmccError(error.message, describeNode(entry.node));
      // A template failing on a node its `check` accepted is a bug: keep it an internal error, but locate it.
      throw new Error(`building the wasm kernel failed: ${error instanceof Error ? error.message : String(error)}, ${describeNode(entry.node)}`);
    }
    const key = JSON.stringify({ params: kernel.params, body: kernel.body });
    const existing = byStructure.get(key);
    if (existing) {
      entry.step.kernel = existing;
      continue;
    }
    if (kernels.some((k) => k.name === kernel.name)) {
      throw new LlmccError(`two different kernels are both named '${kernel.name}'`, describeNode(entry.node));
    }
    byStructure.set(key, kernel.name);
    entry.step.kernel = kernel.name;
    kernels.push(kernel);
  }
  const kernelBytes = kernels.length ? await (await wasmModuleBuilder())(kernels) : EMPTY_WASM_MODULE;

  // Weights last, once no kernel template needs their values: the blob's pages become resident
  // as they are written, so releasing each source tensor keeps the peak near one copy.
  const weightBlob = new Uint8Array(fileOffset);
  for (const entry of weights) {
    const weight = graph.initializers.get(entry.name);
    const into = weightBlob.subarray(entry.offset, entry.offset + entry.byteLength);
    // Stored bytes already in the bundle's encoding (an f16 embedding) are copied, not decoded
    // to f32 and encoded back: that transient f32 copy was the compile's memory peak at 1B.
    const raw = !constants.has(entry.name) && weight?.raw && entry.encoding === entry.dtype ? weight.raw() : undefined;
    if (raw && raw.byteLength === entry.byteLength) into.set(raw);
    else encodeWeightInto(constants.get(entry.name) ?? weight!.load(), entry.encoding, into);
    // Folded constants are small host values: only initializers are released.
    if (options.releaseWeights && weight) {
      graph.initializers.set(entry.name, {
        ...weight,
        load: () => { throw new LlmccError(`weight '${entry.name}' was released after compiling`); },
      });
    }
  }

  const values: Record<string, ValueEntry> = {};
  const names = new Set<string>([
    ...graph.inputs.map((i) => i.name), ...graph.outputs.map((o) => o.name),
    ...steps.flatMap(({ node }) => [...node.inputs, ...node.outputs]),
  ]);
  for (const name of names) {
    if (!name) continue;
    const type = typeOf(name);
    if (!type) throw new LlmccError(`no type is known for value '${name}'`, model.path);
    const entry: ValueEntry = { dtype: type.dtype, host: classified.host.has(name), inArena: inArena.has(name) };
    if (type.shape) entry.shape = [...type.shape];
    if (entry.inArena) entry.arena = arenaDtypeOf(type.dtype);
    values[name] = entry;
  }

  const program: WasmProgram = {
    target: WASM_TARGET,
    producer: options.producer ?? 'llmcc',
    opsets: [...model.opsets],
    inputs: graph.inputs.map((i) => ioEntry(i.name, i.type)),
    outputs: graph.outputs.map((o) => ioEntry(o.name, o.type ?? typeOf(o.name))),
    nodes: steps.map(({ node }) => serializeNode(node)),
    steps: steps.map(({ step }, i) => ({ ...step, node: i })),
    values,
    weights,
    kernels: kernels.map((k) => k.name),
    memory: { weightBytes: arenaOffset, align: ARENA_ALIGN, hostReadInputs: [...classified.hostReadInputs] },
  };
  return { program, kernels: kernelBytes, weights: weightBlob };
}

/** The smallest valid wasm module: for programs that launch no kernel. */
const EMPTY_WASM_MODULE = new Uint8Array([0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00]);

function ioEntry(name: string, type: TensorType | undefined): WasmProgram['inputs'][number] {
  if (!type) throw new LlmccError(`graph input/output '${name}' has no type`);
  return type.shape ? { name, dtype: type.dtype, shape: [...type.shape] } : { name, dtype: type.dtype };
}

function valueType(graph: Graph, constants: ReadonlyMap<string, Tensor>, name: string): TensorType | undefined {
  const constant = constants.get(name);
  if (constant) return { dtype: constant.dtype, shape: [...constant.shape] };
  const input = graph.inputs.find((i) => i.name === name);
  if (input?.type) return input.type;
  const weight = graph.initializers.get(name);
  if (weight) return { dtype: weight.dtype, shape: [...weight.shape] };
  return graph.valueInfo.get(name) ?? graph.outputs.find((o) => o.name === name)?.type;
}

/**
 * Decides, node by node, where it runs; throws one error listing every node the target cannot
 * run. Exported for `supports`-style checks.
 */
export async function classify(model: Model): Promise<Classified> {
  const graph = model.graph;
  const kernels = wasmKernelTable();
  const constants = new Map<string, Tensor>();
  const host = new Set<string>();
  const hostReadInputs = new Set<string>();
  const graphInputs = new Map(graph.inputs.map((i) => [i.name, i]));
  for (const [name] of graph.initializers) if (!graphInputs.has(name)) host.add(name);
  for (const input of graph.inputs) {
    if (input.type && (isInteger(input.type.dtype) || input.type.dtype === 'bool')) host.add(input.name);
  }
  const typeOf = (name: string): TensorType | undefined => valueType(graph, constants, name);
  const small = (name: string): boolean => {
    if (constants.has(name)) return constants.get(name)!.size <= CONSTANT_LIMIT;
    const weight = graph.initializers.get(name);
    if (weight && !graphInputs.has(name)) return sizeOf(weight.shape) <= CONSTANT_LIMIT;
    // Host results and integer graph inputs: shape-like by construction.
    return true;
  };

  const steps: Classified['steps'] = [];
  const refused = new Map<string, string[]>();
  const refuse = (node: Node, why: string): void => {
    const op = node.domain ? `${node.domain}.${node.op}` : node.op;
    const list = refused.get(op) ?? [];
    list.push(`"${node.name}": ${why}`);
    refused.set(op, list);
  };

  for (const node of graph.nodes) {
    const hasSubgraph = [...node.attributes.values()].some((a) => a.kind === 'graph' || a.kind === 'graphs');
    if (hasSubgraph) {
      refuse(node, 'control flow (subgraphs) is not compiled for wasm');
      continue;
    }
    if (node.domain === '' && node.op === 'Constant') {
      const [value] = evaluateConstant(model, node, []);
      constants.set(node.outputs[0], value);
      host.add(node.outputs[0]);
      continue;
    }
    const present = node.inputs.filter((n) => n);
    const readsOnlyShapes = node.domain === '' && SHAPE_ONLY_OPS.has(node.op);
    const hostReady = readsOnlyShapes || present.every((n) => host.has(n) && small(n));
    const isConstant = (name: string): boolean => constants.has(name) || (graph.initializers.has(name) && !graphInputs.has(name));
    if (isHostOp(node) && hostReady && !readsOnlyShapes && present.length > 0 && present.every(isConstant)) {
      // Folded here: a host step on constants alone would be recomputed by every new plan, and a
      // decode step builds one whenever its positions change (a Transpose of a small weight).
      const inputs = node.inputs.map((n) => (n ? constants.get(n) ?? graph.initializers.get(n)!.load() : undefined));
      evaluateConstant(model, node, inputs).forEach((value, k) => {
        const name = node.outputs[k];
        if (!name) return;
        constants.set(name, value);
        host.add(name);
      });
      continue;
    }
    if (node.domain === '' && REARRANGING_OPS.has(node.op) && present.length > 0 && present.every(isConstant)) {
      // A weight rearranged by the graph (torch exports Linear as MatMul(x, Transpose(W))): stored
      // rearranged, so no kernel redoes it on every run. Same element count, so no larger bundle.
      const inputs = node.inputs.map((n) => (n ? constants.get(n) ?? graph.initializers.get(n)!.load() : undefined));
      evaluateConstant(model, node, inputs).forEach((value, k) => {
        const name = node.outputs[k];
        if (!name) return;
        constants.set(name, value);
        if (value.size <= CONSTANT_LIMIT) host.add(name);
      });
      continue;
    }
    if (isHostOp(node) && hostReady) {
      steps.push({ step: { kind: 'host', node: steps.length }, node });
      for (const name of node.outputs) if (name) host.add(name);
      if (!readsOnlyShapes) for (const name of present) if (graphInputs.has(name)) hostReadInputs.add(name);
      continue;
    }
    if (isViewOp(node)) {
      const shapeInputs = node.inputs.slice(1).filter((n) => n);
      const missing = shapeInputs.filter((n) => !host.has(n));
      if (missing.length) {
        refuse(node, `its shape/axes input ${missing.map((m) => `'${m}'`).join(', ')} is computed on the device`);
        continue;
      }
      for (const name of shapeInputs) if (graphInputs.has(name)) hostReadInputs.add(name);
      steps.push({ step: { kind: 'view', node: steps.length }, node });
      continue;
    }
    const def = kernels.get(`${node.domain}::${node.op}`);
    if (!def) {
      refuse(node, isHostOp(node) ? 'no wasm kernel, and its inputs are not all known on the host' : 'no wasm kernel');
      continue;
    }
    const ctx: KernelBuildContext = {
      node,
      inputs: node.inputs.map((n) => (n ? typeOf(n) : undefined)),
      outputs: node.outputs.map((n) => typeOf(n) ?? { dtype: 'f32' as DType, shape: undefined }),
      constant: (i) => {
        const name = node.inputs[i];
        if (!name) return undefined;
        const constant = constants.get(name);
        if (constant) return constant;
        const weight = graphInputs.has(name) ? undefined : graph.initializers.get(name);
        return weight?.load();
      },
      name: kernelName(node, steps.length),
      opset: model.opsets.get(node.domain) ?? 1,
    };
    let reason: string | undefined;
    try {
      // Kernels write output 0 unless they say otherwise; a dropped first output is refused.
      reason = node.outputs[0] || def.firstOutputOptional ? def.check(ctx) : 'its first output is omitted';
    } catch (error) {
      reason = error instanceof Error ? error.message : String(error);
    }
    if (reason) {
      refuse(node, reason);
      continue;
    }
    steps.push({ step: { kind: 'kernel', node: steps.length, kernel: ctx.name, scratch: def.scratchBytes !== undefined }, node, kernelDef: def, ctx });
  }

  if (refused.size) {
    const parts = [...refused].map(([op, nodes]) => {
      const shown = nodes.slice(0, 3);
      if (nodes.length > 3) shown.push(`… ${nodes.length - 3} more`);
      return `${op} (${shown.join('; ')})`;
    });
    throw new LlmccError(`${UNSUPPORTED_PREFIX} ${parts.join(', ')}`, model.path);
  }
  return { steps, host, constants, hostReadInputs };
}

function kernelName(node: Node, index: number): string {
  return `k${index}_${node.op.replace(/[^A-Za-z0-9_]/g, '_')}`;
}

/** A node evaluated at compile time on known inputs (a Constant, or a host step on constants only). */
function evaluateConstant(model: Model, node: Node, inputs: (Tensor | undefined)[]): Tensor[] {
  const def = lookupOp(node.domain, node.op)!;
  return def.evaluate({
    node, opset: model.opsets.get(node.domain) ?? 1, attrs: new Attrs(node), inputs,
    runSubgraph: () => { throw new LlmccError('host steps have no subgraphs', describeNode(node)); },
  });
}
