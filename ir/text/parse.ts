import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Attribute, Dim, Graph, Model, Node, TensorType, ValueInfo, Weight } from '../graph.js';
import { type DType, isDType } from '../dtype.js';
import { LlmccError } from '../errors.js';
import type { QuantInfo, WeightBits, WeightLayout } from '../quant.js';
import { Tensor, sizeOf } from '../tensor.js';
import { decodeTensorBytes, hexToBytes, serializedByteLength } from './bytes.js';
import { markElided } from './elided.js';
import { TEXT_IR_VERSION } from './print.js';

/**
 * The text IR parser: reads what print.ts writes (and hand-written IR in the same
 * grammar, with `//` comments) back into a Model. Errors are LlmccErrors located by
 * line:column.
 */
export interface ParseOptions {
  /** Directory that `external<"file", …>` weight paths are relative to (default: the cwd). */
  baseDir?: string;
  /** Name of the text's file, for error locations. */
  file?: string;
}

export function parseModel(text: string, options: ParseOptions = {}): Model {
  return new Parser(text, options).model();
}

type AttrKind = Attribute['kind'];
const LIST_KINDS: readonly AttrKind[] = ['ints', 'floats', 'strings', 'tensors', 'graphs'];

const IDENT = /[A-Za-z_][A-Za-z0-9_]*/y;
const BARE_VALUE = /[A-Za-z0-9_.\-/]+/y;
const BARE_DIM = /[A-Za-z0-9_.+\-*/()]+/y;
const NUMBER = /-?(?:\d+(?:\.\d*)?(?:[eE][+-]?\d+)?|inf\b|nan\b)/y;
const INTEGER = /^-?\d+$/;

/** A number literal, kept as text so ints and floats stay apart. */
interface NumberToken {
  text: string;
  isFloat: boolean;
}

class Parser {
  private pos = 0;

  constructor(private readonly text: string, private readonly options: ParseOptions) {}

  // ---- the grammar ----

  model(): Model {
    this.keyword('llmcc.ir');
    const version = this.integer('the text IR version');
    if (version !== TEXT_IR_VERSION) throw this.error(`unsupported text IR version ${version} (this llmcc reads ${TEXT_IR_VERSION})`);
    this.keyword('model');
    let irVersion = 0;
    let producer = '';
    const opsets = new Map<string, number>();
    while (!this.peek('graph')) {
      const at = this.pos;
      const key = this.ident('a model field or "graph"');
      this.expect('=');
      if (key === 'ir_version') irVersion = this.integer('ir_version');
      else if (key === 'producer') producer = this.string();
      else if (key === 'opsets') {
        this.expect('{');
        if (!this.eat('}')) {
          do {
            const domain = this.string();
            this.expect(':');
            opsets.set(domain === 'ai.onnx' ? '' : domain, this.integer('an opset version'));
          } while (this.eat(','));
          this.expect('}');
        }
      } else throw this.error(`unknown model field '${key}'`, at);
    }
    const graph = this.graph();
    this.skipSpace();
    if (this.pos < this.text.length) throw this.error('unexpected text after the graph');
    return { irVersion, producer, opsets, graph };
  }

  private graph(): Graph {
    this.keyword('graph');
    const graph: Graph = { name: this.string(), inputs: [], outputs: [], nodes: [], initializers: new Map(), valueInfo: new Map() };
    this.expect('{');
    while (!this.eat('}')) {
      this.skipSpace();
      if (this.pos >= this.text.length) throw this.error(`graph "${graph.name}" is not closed with '}'`);
      const at = this.pos;
      if (/[A-Za-z_]/.test(this.text[this.pos])) {
        const keyword = this.ident('a statement');
        if (keyword === 'input' || keyword === 'output') {
          const name = this.valueName();
          // Subgraph inputs/outputs may be untyped (the enclosing op supplies the type).
          const value: ValueInfo = this.eat(':') ? { name, type: this.type() } : { name };
          (keyword === 'input' ? graph.inputs : graph.outputs).push(value);
        } else if (keyword === 'value') {
          const name = this.valueName();
          this.expect(':');
          graph.valueInfo.set(name, this.type());
        } else if (keyword === 'weight') {
          const name = this.valueName();
          if (graph.initializers.has(name)) throw this.error(`weight '${name}' is defined twice`, at);
          this.expect(':');
          const typeAt = this.pos;
          const type = this.type();
          if (!type.shape || type.shape.some((d) => typeof d !== 'number')) throw this.error('a weight needs a static shape', typeAt);
          this.expect('=');
          graph.initializers.set(name, this.weight(name, type.dtype, type.shape as number[]));
          if (type.quant) graph.valueInfo.set(name, type);
        } else {
          throw this.error(`expected 'input', 'output', 'weight', 'value' or a node, got '${keyword}'`, at);
        }
      } else {
        graph.nodes.push(this.node(graph));
      }
    }
    return graph;
  }

  private node(graph: Graph): Node {
    const outputs: string[] = [];
    if (!this.eat('()')) {
      do {
        if (this.peek('%')) {
          const name = this.valueName();
          if (this.eat(':')) graph.valueInfo.set(name, this.type());
          outputs.push(name);
        } else {
          outputs.push('');
        }
      } while (this.eat(','));
    }
    this.expect('=');
    const [domain, op] = this.opName();
    this.expect('(');
    const inputs: string[] = [];
    if (!this.eat(')')) {
      do inputs.push(this.peek('%') ? this.valueName() : '');
      while (this.eat(','));
      this.expect(')');
    }
    const attributes = new Map<string, Attribute>();
    if (this.eat('{')) {
      do {
        const at = this.pos;
        const name = this.peek('"') ? this.string() : this.ident('an attribute name');
        if (attributes.has(name)) throw this.error(`attribute '${name}' is given twice`, at);
        this.expect('=');
        attributes.set(name, this.attribute());
      } while (this.eat(','));
      this.expect('}');
    }
    let name = `${op}_${graph.nodes.length}`;
    if (this.eat('loc')) {
      this.expect('(');
      name = this.string();
      this.expect(')');
    }
    return { name, domain, op, inputs, outputs, attributes };
  }

  /** `Op`, `com.microsoft.Op`, or `"domain"::"op"`. */
  private opName(): [string, string] {
    if (this.peek('"')) {
      const domain = this.string();
      this.expect('::');
      return [domain === 'ai.onnx' ? '' : domain, this.string()];
    }
    const parts = [this.ident('an op name')];
    while (this.text[this.pos] === '.') {
      this.pos++;
      parts.push(this.ident('an op name'));
    }
    const op = parts.pop() as string;
    const domain = parts.join('.');
    return [domain === 'ai.onnx' ? '' : domain, op];
  }

  private attribute(): Attribute {
    const attr = this.attributeValue();
    if (!this.eat(':')) return attr;
    const at = this.pos;
    const kind = this.ident('an attribute kind');
    if (kind === attr.kind) return attr;
    // Only empty lists need a kind, and ints read as floats when the kind says so.
    if (attr.kind === 'ints' && attr.value.length === 0 && LIST_KINDS.includes(kind as AttrKind)) {
      return { kind, value: [] } as Attribute;
    }
    if (attr.kind === 'int' && kind === 'float') return { kind: 'float', value: Math.fround(attr.value) };
    if (attr.kind === 'ints' && kind === 'floats') return { kind: 'floats', value: attr.value.map(Math.fround) };
    throw this.error(`a ${attr.kind} value cannot be of kind '${kind}'`, at);
  }

  private attributeValue(): Attribute {
    this.skipSpace();
    const at = this.pos;
    if (this.eat('[')) {
      const items: Attribute[] = [];
      if (!this.eat(']')) {
        do items.push(this.attributeValue());
        while (this.eat(','));
        this.expect(']');
      }
      if (items.length === 0) {
        if (!this.peek(':')) throw this.error("an empty list needs its kind, e.g. '[] : ints'", at);
        return { kind: 'ints', value: [] }; // the kind that follows replaces this (see attribute())
      }
      const kinds = new Set(items.map((i) => i.kind));
      if (kinds.size === 2 && kinds.has('int') && kinds.has('float')) {
        return { kind: 'floats', value: items.map((i) => Math.fround(i.value as number)) };
      }
      if (kinds.size !== 1) throw this.error('list elements must all be of one kind', at);
      const kind = items[0].kind;
      switch (kind) {
        case 'int': return { kind: 'ints', value: items.map((i) => i.value as number) };
        case 'float': return { kind: 'floats', value: items.map((i) => i.value as number) };
        case 'string': return { kind: 'strings', value: items.map((i) => i.value as string) };
        case 'tensor': return { kind: 'tensors', value: items.map((i) => i.value as Tensor) };
        case 'graph': return { kind: 'graphs', value: items.map((i) => i.value as Graph) };
        default: throw this.error('lists cannot be nested', at);
      }
    }
    if (this.peek('"')) return { kind: 'string', value: this.string() };
    if (this.peek('dense')) return { kind: 'tensor', value: this.tensorLiteral(undefined) };
    if (this.peek('graph')) return { kind: 'graph', value: this.graph() };
    const number = this.numberToken();
    if (!number) throw this.error('expected an attribute value', at);
    return number.isFloat
      ? { kind: 'float', value: Math.fround(numberValue(number)) }
      : { kind: 'int', value: numberValue(number) };
  }

  /** `dense<TYPE, DATA>`, or `dense<DATA>` when the type is known (weights). */
  private tensorLiteral(known: { dtype: DType; shape: number[] } | undefined): Tensor {
    this.keyword('dense');
    this.expect('<');
    let dtype: DType;
    let shape: number[];
    if (known) {
      ({ dtype, shape } = known);
    } else {
      const at = this.pos;
      const type = this.type();
      if (!type.shape || type.shape.some((d) => typeof d !== 'number')) throw this.error('a tensor needs a static shape', at);
      dtype = type.dtype;
      shape = type.shape as number[];
      this.expect(',');
    }
    this.skipSpace();
    const at = this.pos;
    let tensor: Tensor;
    if (this.peek('"')) {
      const hex = this.string();
      const bytes = hex.startsWith('0x') ? hexToBytes(hex.slice(2)) : undefined;
      if (!bytes) throw this.error('tensor data must be "0x" followed by hex bytes', at);
      try {
        tensor = decodeTensorBytes(dtype, shape, bytes);
      } catch (error) {
        throw this.error(error instanceof Error ? error.message : String(error), at);
      }
    } else {
      this.expect('[');
      const strings: string[] = [];
      const numbers: number[] = [];
      if (!this.eat(']')) {
        do {
          if (dtype === 'string') strings.push(this.string());
          else {
            const elementAt = this.pos;
            const number = this.numberToken();
            if (!number) throw this.error('expected a number', elementAt);
            numbers.push(numberValue(number));
          }
        } while (this.eat(','));
        this.expect(']');
      }
      const count = dtype === 'string' ? strings.length : numbers.length;
      if (count !== sizeOf(shape)) {
        throw this.error(`${dtype}[${shape.join(', ')}] needs ${sizeOf(shape)} elements, got ${count}`, at);
      }
      tensor = dtype === 'string' ? Tensor.strings(shape, strings) : Tensor.fromNumbers(dtype, shape, numbers);
    }
    this.expect('>');
    return tensor;
  }

  private weight(name: string, dtype: DType, shape: number[]): Weight {
    const base = { name, dtype, shape };
    if (this.peek('dense')) {
      const tensor = this.tensorLiteral({ dtype, shape });
      const byteLength = dtype === 'string'
        ? (tensor.data as string[]).reduce((n, s) => n + Buffer.byteLength(s), 0)
        : serializedByteLength(dtype, shape);
      return { ...base, byteLength, location: { kind: 'inline' }, load: () => tensor };
    }
    const at = this.pos;
    const kind = this.ident("'dense', 'external' or 'elided'");
    this.expect('<');
    if (kind === 'external') {
      const file = this.string();
      this.expect(',');
      this.keyword('offset');
      this.expect('=');
      const offset = this.integer('an offset');
      this.expect(',');
      this.keyword('length');
      this.expect('=');
      const length = this.integer('a length');
      this.expect('>');
      const expected = serializedByteLength(dtype, shape);
      if (length !== expected) throw this.error(`weight '${name}' needs ${expected} bytes, but its length is ${length}`, at);
      const baseDir = this.options.baseDir ?? process.cwd();
      let cached: Tensor | undefined;
      return {
        ...base,
        byteLength: length,
        location: { kind: 'external', file, offset, length },
        load: () => (cached ??= readExternal(path.resolve(baseDir, file), offset, length, name, dtype, shape)),
      };
    }
    if (kind === 'elided') {
      const digest = this.string();
      this.expect('>');
      const weight: Weight = {
        ...base,
        byteLength: serializedByteLength(dtype, shape),
        location: { kind: 'inline' },
        load: () => {
          throw new LlmccError(
            `the data of weight '${name}' was elided from the text IR (${digest}); ` +
              'print it with a larger inline limit, or compile from the original model',
          );
        },
      };
      markElided(weight, digest);
      return weight;
    }
    throw this.error(`expected 'dense', 'external' or 'elided', got '${kind}'`, at);
  }

  type(): TensorType {
    this.skipSpace();
    const at = this.pos;
    const dtype = this.ident('a dtype');
    if (!isDType(dtype)) throw this.error(`unknown dtype '${dtype}'`, at);
    this.expect('[');
    const dims: Dim[] = [];
    let unknownRank = false;
    if (!this.eat(']')) {
      do {
        this.skipSpace();
        const dimAt = this.pos;
        if (this.peek('"')) {
          dims.push(this.string());
          continue;
        }
        const bare = this.match(BARE_DIM);
        if (bare === undefined) throw this.error('expected a dim', dimAt);
        if (bare === '*') unknownRank = true;
        else dims.push(INTEGER.test(bare) ? Number(bare) : bare);
      } while (this.eat(','));
      this.expect(']');
      if (unknownRank && dims.length) throw this.error("'*' (unknown rank) must be the only dim", at);
    }
    const type: TensorType = { dtype, shape: unknownRank ? undefined : dims };
    if (this.peek('quant')) type.quant = this.quant();
    return type;
  }

  private quant(): QuantInfo {
    this.keyword('quant');
    this.expect('<');
    const fields = new Map<string, string | WeightLayout>();
    let sparsity: QuantInfo['sparsity'];
    do {
      const key = this.ident('a quant field');
      this.expect('=');
      this.skipSpace();
      if (key === 'layout') {
        const kind = this.match(/[A-Za-z_-]+/y);
        if (kind === 'codes-nk') fields.set(key, { kind: 'codes-nk' });
        else if (kind === 'bitplanes') {
          this.expect('(');
          this.keyword('g');
          this.expect('=');
          const g = this.integer('g');
          this.expect(',');
          this.keyword('rows');
          this.expect('=');
          const rowsPerTile = this.integer('rows');
          // Optional (absent: one index per byte, the older form).
          let indicesPerByte: 1 | 2 | undefined;
          if (this.eat(',')) {
            this.keyword('per_byte');
            this.expect('=');
            const perByte = this.integer('per_byte');
            if (perByte !== 1 && perByte !== 2) throw this.error(`per_byte must be 1 or 2, got ${perByte}`);
            indicesPerByte = perByte;
          }
          this.expect(')');
          fields.set(key, { kind: 'bitplanes', g, rowsPerTile, ...(indicesPerByte === 2 ? { indicesPerByte } : {}) });
        } else throw this.error(`unknown quant layout '${kind ?? ''}'`);
      } else if (key === 'sparsity') {
        const n = this.integer('sparsity N');
        this.expect(':');
        sparsity = { n, m: this.integer('sparsity M') };
      } else {
        const value = this.match(/[A-Za-z0-9_]+/y);
        if (value === undefined) throw this.error(`expected a value for quant field '${key}'`);
        fields.set(key, value);
      }
    } while (this.eat(','));
    this.expect('>');
    const field = (key: string): string => {
      const value = fields.get(key);
      if (typeof value !== 'string') throw this.error(`quant<…> needs '${key}'`);
      return value;
    };
    const bits = Number(field('bits'));
    if (![1, 2, 3, 4, 8].includes(bits)) throw this.error(`quant bits must be 1, 2, 3, 4 or 8, got ${bits}`);
    const scaleDtype = field('scale');
    if (scaleDtype !== 'f32' && scaleDtype !== 'f16') throw this.error(`quant scale must be f32 or f16, got ${scaleDtype}`);
    const layout = fields.get('layout');
    if (!layout || typeof layout === 'string') throw this.error("quant<…> needs 'layout'");
    return {
      bits: bits as WeightBits,
      ternary: field('ternary') === 'true',
      groupSize: Number(field('group')),
      symmetric: field('symmetric') === 'true',
      scaleDtype,
      layout,
      ...(sparsity ? { sparsity } : {}),
    };
  }

  private valueName(): string {
    this.expect('%');
    if (this.text[this.pos] === '"') return this.string();
    const name = this.match(BARE_VALUE);
    if (name === undefined) throw this.error('expected a value name after %');
    return name;
  }

  // ---- tokens ----

  private skipSpace(): void {
    const text = this.text;
    while (this.pos < text.length) {
      const c = text[this.pos];
      if (c === ' ' || c === '\t' || c === '\n' || c === '\r') this.pos++;
      else if (c === '/' && text[this.pos + 1] === '/') {
        while (this.pos < text.length && text[this.pos] !== '\n') this.pos++;
      } else break;
    }
  }

  private peek(token: string): boolean {
    this.skipSpace();
    return this.text.startsWith(token, this.pos);
  }

  private eat(token: string): boolean {
    if (!this.peek(token)) return false;
    this.pos += token.length;
    return true;
  }

  private expect(token: string): void {
    if (!this.eat(token)) throw this.error(`expected '${token}'${this.found()}`);
  }

  /** A word that must not run on into an identifier (`graph`, not `graphs`). */
  private keyword(word: string): void {
    this.skipSpace();
    const end = this.pos + word.length;
    if (!this.text.startsWith(word, this.pos) || /[A-Za-z0-9_]/.test(this.text[end] ?? '')) {
      throw this.error(`expected '${word}'${this.found()}`);
    }
    this.pos = end;
  }

  private match(pattern: RegExp): string | undefined {
    pattern.lastIndex = this.pos;
    const m = pattern.exec(this.text);
    if (!m) return undefined;
    this.pos += m[0].length;
    return m[0];
  }

  private ident(what: string): string {
    this.skipSpace();
    const name = this.match(IDENT);
    if (name === undefined) throw this.error(`expected ${what}${this.found()}`);
    return name;
  }

  private integer(what: string): number {
    this.skipSpace();
    const at = this.pos;
    const number = this.numberToken();
    if (!number || number.isFloat) throw this.error(`expected an integer (${what})`, at);
    return Number(number.text);
  }

  private numberToken(): NumberToken | undefined {
    this.skipSpace();
    const text = this.match(NUMBER);
    if (text === undefined) return undefined;
    return { text, isFloat: !INTEGER.test(text) };
  }

  /** A JSON string literal. */
  private string(): string {
    this.skipSpace();
    const start = this.pos;
    if (this.text[start] !== '"') throw this.error(`expected a string${this.found()}`);
    let i = start + 1;
    while (i < this.text.length && this.text[i] !== '"') {
      if (this.text[i] === '\n') break;
      i += this.text[i] === '\\' ? 2 : 1;
    }
    if (this.text[i] !== '"') throw this.error('unterminated string', start);
    this.pos = i + 1;
    try {
      return JSON.parse(this.text.slice(start, i + 1)) as string;
    } catch {
      throw this.error('bad escape in string', start);
    }
  }

  private found(): string {
    this.skipSpace();
    if (this.pos >= this.text.length) return ', found the end of the text';
    const rest = this.text.slice(this.pos, this.pos + 12).split('\n')[0];
    return `, found '${rest}'`;
  }

  private error(message: string, at = this.pos): LlmccError {
    let line = 1;
    let lineStart = 0;
    for (let i = 0; i < at && i < this.text.length; i++) {
      if (this.text[i] === '\n') {
        line++;
        lineStart = i + 1;
      }
    }
    const column = at - lineStart + 1;
    return new LlmccError(message, `${this.options.file ?? 'line'}${this.options.file ? ':' : ' '}${line}:${column}`);
  }
}

function numberValue(token: NumberToken): number {
  const t = token.text;
  if (t === 'nan' || t === '-nan') return NaN;
  if (t === 'inf') return Infinity;
  if (t === '-inf') return -Infinity;
  return Number(t);
}

function readExternal(file: string, offset: number, length: number, name: string, dtype: DType, shape: number[]): Tensor {
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch {
    throw new LlmccError(`cannot open the external data of weight '${name}'`, file);
  }
  try {
    const bytes = new Uint8Array(length);
    const read = fs.readSync(fd, bytes, 0, length, offset);
    if (read !== length) {
      throw new LlmccError(`external data of weight '${name}' ends early: wanted ${length} bytes at offset ${offset}, got ${read}`, file);
    }
    return decodeTensorBytes(dtype, shape, bytes);
  } finally {
    fs.closeSync(fd);
  }
}
