import type { Attribute, Dim, Graph, Model, Node, TensorType, Weight } from '../graph.js';
import type { DType } from '../dtype.js';
import { isFloat } from '../dtype.js';
import type { QuantInfo } from '../quant.js';
import { Tensor, convertNumber, sizeOf } from '../tensor.js';
import { bytesToHex, encodeTensorBytes, tensorSha256 } from './bytes.js';
import { elidedDigest } from './elided.js';

/**
 * The text IR printer (`llmcc compile --emit ir`): a stable, readable form of a model
 * that `parse.ts` reads back exactly. See `ir/text/README.md` for the grammar.
 *
 *   llmcc.ir 1
 *   model ir_version=8 producer="pytorch" opsets={"": 17, "com.microsoft": 1}
 *   graph "main" {
 *     input %x : f32[batch, 16]
 *     weight %w : f32[16, 16] = elided<"sha256:…">
 *     %y : f32[batch, 16] = MatMul(%x, %w) loc("MatMul_0")
 *     output %y : f32[batch, 16]
 *   }
 */
export const TEXT_IR_VERSION = 1;

export interface PrintOptions {
  /**
   * Weights with more elements than this are written as a reference (their external
   * file, or an elided sha256) instead of their data. Default 64; Infinity inlines all.
   */
  inlineLimit?: number;
}

/** Tensors up to this many elements are written as numbers, larger ones as hex bytes. */
const DECIMAL_LIMIT = 64;

export function printModel(model: Model, options: PrintOptions = {}): string {
  const opsets = [...model.opsets.entries()]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([domain, version]) => `${quote(domain)}: ${version}`);
  const header = `model ir_version=${model.irVersion} producer=${quote(model.producer)} opsets={${opsets.join(', ')}}`;
  return `llmcc.ir ${TEXT_IR_VERSION}\n${header}\n${printGraph(model.graph, options)}\n`;
}

/** A graph block (no trailing newline); `indent` is the indentation of its closing brace. */
/** ` : type`, or nothing for an untyped subgraph input/output. */
function typeSuffix(type: TensorType | undefined): string {
  return type ? ` : ${printType(type)}` : '';
}

export function printGraph(graph: Graph, options: PrintOptions = {}, indent = ''): string {
  const inner = indent + '  ';
  const lines: string[] = [`graph ${quote(graph.name)} {`];
  const inputTypes = new Map(graph.inputs.map((i) => [i.name, i.type]));
  for (const input of graph.inputs) lines.push(`${inner}input ${printValueName(input.name)}${typeSuffix(input.type)}`);
  for (const [name, weight] of graph.initializers) {
    lines.push(`${inner}weight ${printValueName(name)} : ${printType(weightType(weight))} = ${printWeightData(weight, options)}`);
  }
  // Types of values no node line carries: those a pass or the file recorded beyond
  // the inputs' and weights' own types.
  const nodeOutputs = new Set(graph.nodes.flatMap((n) => n.outputs));
  for (const [name, type] of graph.valueInfo) {
    if (nodeOutputs.has(name)) continue;
    const own = inputTypes.get(name) ?? (graph.initializers.has(name) ? weightType(graph.initializers.get(name) as Weight) : undefined);
    if (own && printType(own) === printType(type)) continue;
    lines.push(`${inner}value ${printValueName(name)} : ${printType(type)}`);
  }
  for (const node of graph.nodes) lines.push(inner + printNode(node, graph, options, inner));
  for (const output of graph.outputs) lines.push(`${inner}output ${printValueName(output.name)}${typeSuffix(output.type)}`);
  lines.push(`${indent}}`);
  return lines.join('\n');
}

export function printNode(node: Node, graph: Graph, options: PrintOptions = {}, indent = ''): string {
  const results = node.outputs.map((name) => {
    if (!name) return '';
    const type = graph.valueInfo.get(name);
    return type ? `${printValueName(name)} : ${printType(type)}` : printValueName(name);
  });
  const lhs = results.length === 0 ? '()' : results.length === 1 && results[0] === '' ? '%""' : results.join(', ');
  const args = node.inputs.length === 1 && !node.inputs[0]
    ? '%""'
    : node.inputs.map((name) => (name ? printValueName(name) : '')).join(', ');
  const names = [...node.attributes.keys()].sort();
  const attrs = names.length
    ? ` {${names.map((k) => `${printAttrName(k)} = ${printAttribute(node.attributes.get(k) as Attribute, options, indent)}`).join(', ')}}`
    : '';
  return `${lhs} = ${printOpName(node.domain, node.op)}(${args})${attrs} loc(${quote(node.name)})`;
}

export function printType(type: TensorType): string {
  const dims = type.shape ? type.shape.map(printDim).join(', ') : '*';
  return `${type.dtype}[${dims}]${type.quant ? ' ' + printQuant(type.quant) : ''}`;
}

function printQuant(q: QuantInfo): string {
  const layout = q.layout.kind === 'codes-nk' ? 'codes-nk'
    : `bitplanes(g=${q.layout.g}, rows=${q.layout.rowsPerTile}${(q.layout.indicesPerByte ?? 1) === 2 ? ', per_byte=2' : ''})`;
  return `quant<bits=${q.bits}, ternary=${q.ternary}, group=${q.groupSize}, symmetric=${q.symmetric}, scale=${q.scaleDtype}, layout=${layout}${q.sparsity ? `, sparsity=${q.sparsity.n}:${q.sparsity.m}` : ''}>`;
}

/** Characters a symbolic dim may use unquoted: names and the operators dims.ts writes. */
const BARE_DIM = /^[A-Za-z0-9_.+\-*/()]+$/;
const INTEGER = /^-?\d+$/;

export function printDim(dim: Dim): string {
  if (typeof dim === 'number') return String(dim);
  return BARE_DIM.test(dim) && !INTEGER.test(dim) && dim !== '*' ? dim : quote(dim);
}

const BARE_VALUE = /^[A-Za-z0-9_.\-/]+$/;

export function printValueName(name: string): string {
  return BARE_VALUE.test(name) ? `%${name}` : `%${quote(name)}`;
}

const IDENT = /^[A-Za-z_][A-Za-z0-9_]*$/;

function printAttrName(name: string): string {
  return IDENT.test(name) ? name : quote(name);
}

/** `MatMul`, `com.microsoft.Attention`; domains or ops that are not identifiers are quoted. */
export function printOpName(domain: string, op: string): string {
  const plainDomain = domain === '' || domain.split('.').every((part) => IDENT.test(part));
  if (plainDomain && IDENT.test(op)) return domain ? `${domain}.${op}` : op;
  return `${quote(domain)}::${quote(op)}`;
}

function printAttribute(attr: Attribute, options: PrintOptions, indent: string): string {
  switch (attr.kind) {
    case 'int': return printInt(attr.value);
    // ONNX attribute floats are f32: print (and parse) them as such.
    case 'float': return printFloat(Math.fround(attr.value), 'f32');
    case 'string': return quote(attr.value);
    case 'tensor': return printTensorLiteral(attr.value, true);
    case 'graph': return printGraph(attr.value, options, indent);
    case 'ints': return printList(attr.value.map(printInt), 'ints');
    case 'floats': return printList(attr.value.map((v) => printFloat(Math.fround(v), 'f32')), 'floats');
    case 'strings': return printList(attr.value.map(quote), 'strings');
    case 'tensors': return printList(attr.value.map((t) => printTensorLiteral(t, true)), 'tensors');
    case 'graphs': return printList(attr.value.map((g) => printGraph(g, options, indent)), 'graphs');
  }
}

/** Lists say their kind only when empty: elements show it otherwise. */
function printList(items: string[], kind: string): string {
  return items.length ? `[${items.join(', ')}]` : `[] : ${kind}`;
}

function printWeightData(weight: Weight, options: PrintOptions): string {
  const digest = elidedDigest(weight);
  if (digest) return `elided<${quote(digest)}>`;
  const size = sizeOf(weight.shape);
  const limit = options.inlineLimit ?? DECIMAL_LIMIT;
  if (size <= limit || weight.dtype === 'string') return printTensorLiteral(weight.load(), false);
  if (weight.location.kind === 'external') {
    const { file, offset, length } = weight.location;
    return `external<${quote(file)}, offset=${offset}, length=${length}>`;
  }
  return `elided<${quote(`sha256:${tensorSha256(weight.load())}`)}>`;
}

function weightType(weight: Weight): TensorType {
  return { dtype: weight.dtype, shape: [...weight.shape] };
}

/** `dense<f32[2], [1.0, 2.5]>`; with `withType` false the type is left to the context (weights). */
export function printTensorLiteral(tensor: Tensor, withType: boolean): string {
  const type = withType ? `${printType({ dtype: tensor.dtype, shape: [...tensor.shape] })}, ` : '';
  let data: string;
  if (tensor.dtype === 'string') data = `[${(tensor.data as string[]).map(quote).join(', ')}]`;
  else if (tensor.size <= DECIMAL_LIMIT) data = `[${tensor.toArray().map((v) => printElement(v, tensor.dtype)).join(', ')}]`;
  else data = quote(`0x${bytesToHex(encodeTensorBytes(tensor))}`);
  return `dense<${type}${data}>`;
}

function printElement(value: number, dtype: DType): string {
  return isFloat(dtype) ? printFloat(value, dtype) : printInt(value);
}

export function printInt(value: number): string {
  return Number.isInteger(value) ? BigInt(value).toString() : String(value);
}

/**
 * The shortest decimal that converts back to exactly `value` in `dtype` (attribute floats
 * are f32), always with a '.' or exponent so it reads back as a float.
 */
export function printFloat(value: number, dtype: DType): string {
  if (Number.isNaN(value)) return 'nan';
  if (value === Infinity) return 'inf';
  if (value === -Infinity) return '-inf';
  if (Object.is(value, -0)) return '-0.0';
  let text = String(value);
  if (dtype !== 'f64' && convertNumber(dtype, value) === value) {
    for (let digits = 1; digits <= 17; digits++) {
      const candidate = Number(value.toPrecision(digits));
      if (convertNumber(dtype, candidate) === value) {
        text = String(candidate);
        break;
      }
    }
  }
  return /[.eE]/.test(text) ? text : `${text}.0`;
}

/** JSON string syntax: escapes quotes, backslashes and control characters. */
export function quote(text: string): string {
  return JSON.stringify(text);
}
