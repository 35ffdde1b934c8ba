import type { DType } from '../../ir/dtype.js';
import { LlmccError, describeNode } from '../../ir/errors.js';
import type { Graph, Node, Weight } from '../../ir/graph.js';
import { producers } from '../graph-edit.js';
import type { WeightBits } from '../../ir/quant.js';
import { quantizeRtn, type QuantizedWeight, type ScaleDtype } from './rtn.js';
import { quantizeTernary } from './ternary.js';
import type { GptqModelOptions, QuantMethod } from './gptq-layers.js';

/**
 * Finding the MatMul / Gemm layers whose weight can be quantized, and choosing each one's
 * scheme from the pass options. Shared by the quantize-weights pass and the quant report.
 */

export type BitsChoice = WeightBits | 'ternary' | 'keep';

export interface QuantSchemeOptions {
  bits: WeightBits;
  groupSize: number;
  symmetric: boolean;
  ternary: boolean;
  /**
   * Layers left in float: patterns on the node name or the weight name. `/regex/flags` (or
   * `re:regex`) searches anywhere in the name; anything else is a glob (`*`, `?`) that must
   * match the whole name, so `*lm_head*` matches any name containing lm_head.
   */
  keep: string[];
  /** Per-layer overrides, pattern → bits | 'ternary' | 'keep'; the first matching key wins. */
  bitsMap?: Record<string, BitsChoice>;
  /** Scale storage; default f16 for f16 weights, f32 otherwise. */
  scaleDtype?: ScaleDtype;
  /** How codes are chosen: 'rtn' (default) or 'gptq' (calibrated; passes/quant/gptq-layers.ts). */
  method?: QuantMethod;
  /** GPTQ's calibration and knobs (method 'gptq'). */
  gptq?: GptqModelOptions;
}

export type LayerScheme =
  | { kind: 'keep'; reason: string }
  | { kind: 'quant'; bits: WeightBits; ternary: boolean; groupSize: number; symmetric: boolean; scaleDtype: ScaleDtype };

/** One eligible layer: y = A · W (+ bias) with W constant, seen as [N, K] rows. */
export interface MatMulLayer {
  node: Node;
  weightName: string;
  weightDtype: DType;
  k: number;
  n: number;
  /** Bytes the float weight takes now. */
  weightBytes: number;
  /** The weight as rows [N, K] in f32 (Gemm's alpha folded in). */
  loadRows(): Float32Array;
  /** Identifies what loadRows returns: layers with equal weightName and rowsKey share rows. */
  rowsKey: string;
  /** Gemm's beta · C as a per-output bias, when there is one. */
  bias?: Float32Array;
}

/** Why a MatMul/Gemm was not eligible; the keys become pass stats. */
export type SkipReason = 'skipped_weight_not_constant' | 'skipped_weight_not_2d' | 'skipped_weight_not_float' |
  'skipped_gemm_transA' | 'skipped_gemm_bias';

const FLOAT_WEIGHTS: readonly DType[] = ['f32', 'f16', 'bf16'];

export function globToRegExp(glob: string): RegExp {
  const body = glob.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`^${body}$`);
}

/** Compiles one keep / bits-map pattern (see QuantSchemeOptions.keep). */
export function compilePattern(pattern: string): RegExp {
  try {
    const slashed = /^\/(.*)\/([a-z]*)$/.exec(pattern);
    if (slashed) return new RegExp(slashed[1], slashed[2]);
    if (pattern.startsWith('re:')) return new RegExp(pattern.slice(3));
  } catch (e) {
    throw new LlmccError(`invalid layer pattern '${pattern}': ${(e as Error).message}`);
  }
  return globToRegExp(pattern);
}

function matchesAny(regex: RegExp, names: readonly string[]): boolean {
  return names.some((name) => regex.test(name));
}

function parseChoice(pattern: string, value: unknown): BitsChoice {
  if (value === 'ternary' || value === 'keep') return value;
  if (typeof value === 'number' && [1, 2, 3, 4, 8].includes(value)) return value as WeightBits;
  if (typeof value === 'string' && /^[12348]$/.test(value)) return Number(value) as WeightBits;
  throw new LlmccError(`bits map entry '${pattern}' must be 1, 2, 3, 4, 8, "ternary" or "keep", got ${JSON.stringify(value)}`);
}

/** Validates a bits map read from JSON (`--bits-map`). */
export function parseBitsMap(json: unknown, where = 'bits map'): Record<string, BitsChoice> {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new LlmccError('a bits map must be a JSON object of pattern → bits', where);
  }
  const map: Record<string, BitsChoice> = {};
  for (const [pattern, value] of Object.entries(json as Record<string, unknown>)) {
    compilePattern(pattern);
    map[pattern] = parseChoice(pattern, value);
  }
  return map;
}

/** Resolves options into a per-layer decision: keep patterns, then the bits map, then defaults. */
export class SchemeResolver {
  private readonly keep: RegExp[];
  private readonly map: { regex: RegExp; pattern: string; choice: BitsChoice }[];

  constructor(private readonly options: QuantSchemeOptions) {
    if (!Number.isInteger(options.groupSize) || options.groupSize <= 0) {
      throw new LlmccError(`group size must be a positive integer, got ${options.groupSize}`);
    }
    if (![1, 2, 3, 4, 8].includes(options.bits)) throw new LlmccError(`bits must be 1, 2, 3, 4 or 8, got ${options.bits}`);
    this.keep = options.keep.map(compilePattern);
    this.map = Object.entries(options.bitsMap ?? {}).map(([pattern, choice]) => ({
      regex: compilePattern(pattern), pattern, choice: parseChoice(pattern, choice),
    }));
  }

  schemeFor(layer: MatMulLayer): LayerScheme {
    const names = [layer.node.name, layer.weightName];
    const kept = this.options.keep.find((_, i) => matchesAny(this.keep[i], names));
    if (kept !== undefined) return { kind: 'keep', reason: `keep pattern '${kept}'` };
    const mapped = this.map.find((entry) => matchesAny(entry.regex, names));
    const choice: BitsChoice = mapped ? mapped.choice : this.options.ternary ? 'ternary' : this.options.bits;
    if (choice === 'keep') return { kind: 'keep', reason: `bits map entry '${mapped?.pattern}'` };
    const scaleDtype = this.options.scaleDtype ?? (layer.weightDtype === 'f16' ? 'f16' : 'f32');
    const ternary = choice === 'ternary';
    return {
      kind: 'quant',
      bits: ternary ? 2 : choice,
      ternary,
      groupSize: this.options.groupSize,
      // Ternary levels are symmetric by construction.
      symmetric: ternary || this.options.symmetric,
      scaleDtype,
    };
  }
}

export function quantizeRows(rows: Float32Array, n: number, k: number, scheme: Extract<LayerScheme, { kind: 'quant' }>): QuantizedWeight {
  return scheme.ternary
    ? quantizeTernary(rows, n, k, { groupSize: scheme.groupSize, scaleDtype: scheme.scaleDtype })
    : quantizeRtn(rows, n, k, scheme);
}

function constantWeight(graph: Graph, name: string) {
  if (!name || graph.inputs.some((i) => i.name === name)) return undefined;
  return graph.initializers.get(name);
}

/**
 * B's constant weight, looking through a 2-D Transpose (PyTorch exports Linear as
 * Transpose(weight [N, K]) → MatMul); `transposed` says the stored tensor is B's transpose.
 */
function resolveWeight(graph: Graph, name: string, producers: ReadonlyMap<string, Node>): { weight: Weight; transposed: boolean } | undefined {
  const direct = constantWeight(graph, name);
  if (direct) return { weight: direct, transposed: false };
  const producer = producers.get(name);
  if (!producer || producer.domain !== '' || producer.op !== 'Transpose') return undefined;
  const source = constantWeight(graph, producer.inputs[0]);
  const perm = producer.attributes.get('perm');
  const swaps = !perm || (perm.kind === 'ints' && perm.value.length === 2 && perm.value[0] === 1 && perm.value[1] === 0);
  if (!source || source.shape.length !== 2 || !swaps) return undefined;
  return { weight: source, transposed: true };
}

export function attrInt(node: Node, name: string, fallback: number): number {
  const attr = node.attributes.get(name);
  return attr?.kind === 'int' ? attr.value : fallback;
}

export function attrFloat(node: Node, name: string, fallback: number): number {
  const attr = node.attributes.get(name);
  return attr?.kind === 'float' ? attr.value : fallback;
}

/** Gemm's beta · C as a bias of N values, or undefined when C is absent; null when C is not a constant vector. */
function gemmBias(graph: Graph, node: Node, n: number): Float32Array | undefined | null {
  const cName = node.inputs[2];
  if (!cName) return undefined;
  const weight = constantWeight(graph, cName);
  if (!weight || !FLOAT_WEIGHTS.includes(weight.dtype)) return null;
  const size = weight.shape.reduce((a, b) => a * b, 1);
  const rowVector = weight.shape.length <= 1 || (weight.shape.length === 2 && weight.shape[0] === 1);
  if (!rowVector || (size !== n && size !== 1)) return null;
  const beta = attrFloat(node, 'beta', 1);
  const values = weight.load().numbers();
  const bias = new Float32Array(n);
  for (let i = 0; i < n; i++) bias[i] = beta * values[size === 1 ? 0 : i];
  return bias;
}

/** The eligible layers of a graph (top level only), and how many MatMul/Gemm were not. */
export function findLayers(graph: Graph): { layers: MatMulLayer[]; skipped: Map<Node, SkipReason> } {
  const layers: MatMulLayer[] = [];
  const skipped = new Map<Node, SkipReason>();
  const producerOf = producers(graph);
  for (const node of graph.nodes) {
    if (node.domain !== '' || (node.op !== 'MatMul' && node.op !== 'Gemm')) continue;
    const resolved = resolveWeight(graph, node.inputs[1], producerOf);
    if (!resolved) { skipped.set(node, 'skipped_weight_not_constant'); continue; }
    const { weight } = resolved;
    const weightName = weight.name;
    if (weight.shape.length !== 2) { skipped.set(node, 'skipped_weight_not_2d'); continue; }
    if (!FLOAT_WEIGHTS.includes(weight.dtype)) { skipped.set(node, 'skipped_weight_not_float'); continue; }
    const isGemm = node.op === 'Gemm';
    if (isGemm && attrInt(node, 'transA', 0) !== 0) { skipped.set(node, 'skipped_gemm_transA'); continue; }
    // Rows [N, K] are the stored tensor itself when B (after Gemm's transB) is its transpose.
    const transposed = (isGemm && attrInt(node, 'transB', 0) !== 0) !== resolved.transposed;
    const [rows0, cols0] = weight.shape;
    const k = transposed ? cols0 : rows0;
    const n = transposed ? rows0 : cols0;
    const bias = isGemm ? gemmBias(graph, node, n) : undefined;
    if (bias === null) { skipped.set(node, 'skipped_gemm_bias'); continue; }
    const alpha = isGemm ? attrFloat(node, 'alpha', 1) : 1;
    layers.push({
      node, weightName, weightDtype: weight.dtype, k, n, bias, rowsKey: `${transposed ? 'nk' : 'kn'}*${alpha}`,
      weightBytes: weight.byteLength,
      loadRows: () => {
        const values = weight.load().numbers();
        const rows = new Float32Array(n * k);
        for (let row = 0; row < n; row++) {
          for (let col = 0; col < k; col++) {
            rows[row * k + col] = alpha * values[transposed ? row * k + col : col * n + row];
          }
        }
        return rows;
      },
    });
  }
  return { layers, skipped };
}

export function layerError(layer: MatMulLayer, message: string): LlmccError {
  return new LlmccError(message, describeNode(layer.node));
}
