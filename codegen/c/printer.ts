/**
 * Prints kernels in the shared form (codegen/kernel.ts) as C99 functions with NEON intrinsics
 * (or SIMDe's equivalents on the host; see prelude.ts). Follows the typing conventions of
 * codegen/builder.ts exactly as the WASM builder does: narrow scalars compute as int32_t,
 * f16 is a storage type (uint16_t) converted with codegen/mathlib.ts expansions, i32 wraps.
 *
 * Buffer params become typed pointers (float *, int8_t *, …), scalar params int32_t/float.
 * Kernel-form names are prefixed (`v_`) so they cannot collide with C keywords or libm.
 * Transcendentals become `static inline` helpers printed from the mathlib expansions, so the
 * numbers match the WASM target's.
 */
import {
  byteSize,
  isVector,
  laneCount,
  laneType,
  type BinaryOp,
  type Expr,
  type Kernel,
  type ScalarType,
  type Stmt,
  type UnaryOp,
  type ValueType,
  type VectorType,
} from '../kernel.js';
import { mathFunction, type MathOp } from '../mathlib.js';

const SCALAR_COMPARE: Partial<Record<BinaryOp, string>> = { eq: '==', ne: '!=', lt: '<', le: '<=', gt: '>', ge: '>=' };

/** The printed C source of a set of kernels: math helpers first, then one function per kernel. */
export interface PrintedKernels {
  /** `static inline` math helpers the kernels call. */
  helpers: string;
  /** One C function per kernel, in input order. */
  functions: string[];
}

export interface CPrintOptions {
  /** Prefix of every function name (namespaces kernels of several programs in one file). */
  prefix?: string;
  /** `static` functions (one translation unit) or external ones. Default true. */
  static?: boolean;
}

export function printKernels(kernels: readonly Kernel[], options: CPrintOptions = {}): PrintedKernels {
  const helpers = new HelperSet(options.prefix ?? '');
  const names = new Set<string>();
  const functions = kernels.map((kernel) => {
    if (names.has(kernel.name)) throw new Error(`C printer: duplicate kernel name ${kernel.name}`);
    names.add(kernel.name);
    return printKernel(kernel, helpers, options);
  });
  return { helpers: helpers.print(), functions };
}

/** The C function name of a kernel. */
export function cKernelName(kernel: Pick<Kernel, 'name'>, prefix = ''): string {
  return `${prefix}${kernel.name.replace(/[^A-Za-z0-9_]/g, '_')}`;
}

/** C element type of a buffer of `elem`. */
export function cElemType(elem: ScalarType): string {
  return ({ f32: 'float', i32: 'int32_t', u32: 'uint32_t', i16: 'int16_t', u16: 'uint16_t', i8: 'int8_t', u8: 'uint8_t', f16: 'uint16_t' } as const)[elem];
}

/** C type of a value of a kernel-form type. */
export function cValueType(t: ValueType): string {
  switch (t) {
    case 'f32': case 'f16': return 'float';
    case 'u32': return 'uint32_t';
    case 'f32x4': return 'float32x4_t';
    case 'i32x4': return 'int32x4_t';
    case 'i16x8': return 'int16x8_t';
    case 'i8x16': return 'int8x16_t';
    case 'u8x16': return 'uint8x16_t';
    default: return 'int32_t';
  }
}

/** NEON intrinsic suffix of a vector type. */
function sfx(t: VectorType): string {
  return ({ f32x4: 'f32', i32x4: 's32', i16x8: 's16', i8x16: 's8', u8x16: 'u8' } as const)[t];
}

/** The unsigned suffix of the same lane width (what NEON comparisons return). */
function maskSfx(t: VectorType): string {
  return ({ f32x4: 'u32', i32x4: 'u32', i16x8: 'u16', i8x16: 'u8', u8x16: 'u8' } as const)[t];
}

function reinterpret(e: string, from: string, to: string): string {
  return from === to ? e : `vreinterpretq_${to}_${from}(${e})`;
}

function isFloat(t: ValueType): boolean {
  return t === 'f32' || t === 'f16' || t === 'f32x4';
}

function isUnsigned(t: ValueType): boolean {
  return t === 'u32' || t === 'u8' || t === 'u16' || t === 'u8x16';
}

/** A C float literal that reads back as exactly `Math.fround(value)`. */
export function floatLiteral(value: number): string {
  if (Number.isNaN(value)) return 'NAN';
  if (value === Infinity) return 'INFINITY';
  if (value === -Infinity) return '(-INFINITY)';
  const f = Math.fround(value);
  if (!Number.isFinite(f)) return f > 0 ? 'INFINITY' : '(-INFINITY)';
  if (Object.is(f, -0)) return '(-0.0f)';
  const text = f.toPrecision(9);
  const literal = /[.e]/.test(text) ? `${text}f` : `${text}.0f`;
  return f < 0 ? `(${literal})` : literal;
}

/** A C int32_t literal of `value` wrapped to 32 bits. */
export function intLiteral(value: number): string {
  const v = value | 0;
  if (v === -2147483648) return '(-2147483647 - 1)';
  return v < 0 ? `(${v})` : String(v);
}

/** Math helpers used by the printed kernels, printed on demand from the mathlib expansions. */
class HelperSet {
  private readonly printed = new Map<string, string>();
  private readonly order: string[] = [];

  constructor(private readonly prefix: string) {}

  /** The C name of the helper computing `op` on `type`, printing it on first use. */
  use(op: MathOp, type: ValueType): string {
    const name = `${this.prefix}llmcc_${op}_${type}`;
    if (this.printed.has(name)) return name;
    this.printed.set(name, '');
    const fn = mathFunction(op, type);
    const printer = new FunctionPrinter(name, this, new Map());
    const body = printer.block(fn.body, '  ');
    const result = printer.expr(fn.result);
    const text = `static inline ${cValueType(fn.result.type)} ${name}(${cValueType(fn.argType)} v_${fn.arg}) {\n${body}  return ${result};\n}\n`;
    this.printed.set(name, text);
    this.order.push(name);
    return name;
  }

  print(): string {
    return this.order.map((name) => this.printed.get(name)).join('\n');
  }
}

function printKernel(kernel: Kernel, helpers: HelperSet, options: CPrintOptions): string {
  const buffers = new Map<string, ScalarType>();
  const params = kernel.params.map((p) => {
    if (p.kind === 'buffer') {
      buffers.set(p.name, p.elem);
      const constness = p.access === 'read' ? 'const ' : '';
      return `${constness}${cElemType(p.elem)} *v_${p.name}`;
    }
    return `${p.type === 'f32' ? 'float' : 'int32_t'} v_${p.name}`;
  });
  const printer = new FunctionPrinter(kernel.name, helpers, buffers);
  const body = printer.block(kernel.body, '  ');
  // Parameters a specialised kernel never reads would warn under -Wextra.
  const used = usedNames(kernel.body);
  const unused = kernel.params.filter((p) => !used.has(p.name)).map((p) => `  (void)v_${p.name};\n`).join('');
  const storage = options.static ?? true ? 'static ' : '';
  const signature = params.length ? params.join(', ') : 'void';
  return `${storage}void ${cKernelName(kernel, options.prefix)}(${signature}) {\n${unused}${body}}\n`;
}

/** Every variable, param and buffer name read (or stored to, for buffers) anywhere in `stmts`. */
function usedNames(stmts: readonly Stmt[]): Set<string> {
  const names = new Set<string>();
  const visitExpr = (e: Expr): void => {
    switch (e.kind) {
      case 'const': return;
      case 'param': case 'var': names.add(e.name); return;
      case 'load': names.add(e.buffer); visitExpr(e.index); return;
      case 'binary': visitExpr(e.a); visitExpr(e.b); return;
      case 'unary': case 'cast': case 'bitcast': case 'splat': case 'extract': case 'reduce': case 'widen': case 'pairwise_add':
        visitExpr(e.a); return;
      case 'select': visitExpr(e.cond); visitExpr(e.a); visitExpr(e.b); return;
      case 'lookup16': visitExpr(e.table); visitExpr(e.indices); return;
      case 'dot_i16': case 'shuffle': visitExpr(e.a); visitExpr(e.b); return;
      case 'dot_i8': visitExpr(e.acc); visitExpr(e.a); visitExpr(e.b); return;
    }
  };
  const visit = (list: readonly Stmt[]): void => {
    for (const s of list) {
      switch (s.kind) {
        case 'let': visitExpr(s.init); break;
        case 'assign': visitExpr(s.value); break;
        case 'store': names.add(s.buffer); visitExpr(s.index); visitExpr(s.value); break;
        case 'for': visitExpr(s.start); visitExpr(s.end); visit(s.body); break;
        case 'if': visitExpr(s.cond); visit(s.then); if (s.else) visit(s.else); break;
      }
    }
  };
  visit(stmts);
  return names;
}

class FunctionPrinter {
  private temps = 0;

  constructor(
    private readonly fnName: string,
    private readonly helpers: HelperSet,
    private readonly buffers: ReadonlyMap<string, ScalarType>,
  ) {}

  private fail(message: string): never {
    throw new Error(`C printer: ${this.fnName}: ${message}`);
  }

  // -------------------------------------------------------------------------------------------
  // Statements

  block(list: readonly Stmt[], indent: string): string {
    const readHere = usedNames(list);
    return list.map((s) => this.stmt(s, indent, readHere)).join('');
  }

  private stmt(s: Stmt, indent: string, readInBlock: ReadonlySet<string>): string {
    switch (s.kind) {
      case 'let': {
        const constness = s.mutable ? '' : 'const ';
        const line = `${indent}${constness}${cValueType(s.type)} v_${s.name} = ${this.expr(s.init)};\n`;
        // A local nothing reads (specialisation dropped its use) would warn under -Wall.
        return readInBlock.has(s.name) ? line : `${line}${indent}(void)v_${s.name};\n`;
      }
      case 'assign':
        return `${indent}v_${s.name} = ${this.expr(s.value)};\n`;
      case 'store':
        return `${indent}${this.store(s.buffer, s.index, s.value)};\n`;
      case 'if': {
        let text = `${indent}if (${this.condition(s.cond)}) {\n${this.block(s.then, indent + '  ')}${indent}}`;
        if (s.else && s.else.length) text += ` else {\n${this.block(s.else, indent + '  ')}${indent}}`;
        return `${text}\n`;
      }
      case 'for': {
        // The bound is evaluated once, like the WASM builder does.
        const end = `e${this.temps++}_${s.name}`;
        const v = `v_${s.name}`;
        const hint = s.hints?.unroll && s.hints.unroll > 1 ? `${indent}  /* unroll ${s.hints.unroll} requested */\n` : '';
        return `${indent}{\n${hint}${indent}  const int32_t ${end} = ${this.expr(s.end)};\n` +
          `${indent}  for (int32_t ${v} = ${this.expr(s.start)}; ${v} < ${end}; ${v} += ${s.step}) {\n` +
          `${this.block(s.body, indent + '    ')}${indent}  }\n${indent}}\n`;
      }
    }
  }

  private condition(cond: Expr): string {
    if (isVector(cond.type)) this.fail('vector used as a condition');
    const c = this.expr(cond);
    return cond.type === 'f32' ? `(${c}) != 0.0f` : c;
  }

  // -------------------------------------------------------------------------------------------
  // Memory

  private bufferElem(name: string): ScalarType {
    const elem = this.buffers.get(name);
    if (!elem) this.fail(`unknown buffer ${name}`);
    return elem;
  }

  private pointer(buffer: string, index: Expr): string {
    return `v_${buffer} + ${this.expr(index)}`;
  }

  private load(e: Extract<Expr, { kind: 'load' }>): string {
    const elem = this.bufferElem(e.buffer);
    const t = e.type;
    const size = byteSize(elem);
    if (isVector(t)) {
      const p = this.pointer(e.buffer, e.index);
      if (elem === 'f16') {
        if (t !== 'f32x4') this.fail(`load ${t} from an f16 buffer`);
        const widened = `vreinterpretq_s32_u32(vmovl_u16(vld1_u16(${p})))`;
        return `${this.helpers.use('f16_to_f32', 'i32x4')}(${widened})`;
      }
      const lane = laneType(t);
      if (byteSize(lane) === size && isFloat(lane) === isFloat(elem)) {
        const natural = naturalSuffix(elem);
        return reinterpret(`vld1q_${natural}(${p})`, natural, sfx(t));
      }
      if (t === 'i16x8' && size === 1) {
        return isUnsigned(elem) ? `vreinterpretq_s16_u16(vmovl_u8(vld1_u8(${p})))` : `vmovl_s8(vld1_s8(${p}))`;
      }
      if (t === 'i32x4' && size === 2) {
        return isUnsigned(elem) ? `vreinterpretq_s32_u32(vmovl_u16(vld1_u16(${p})))` : `vmovl_s16(vld1_s16(${p}))`;
      }
      if (t === 'i32x4' && size === 1) return isUnsigned(elem) ? `llmcc_load4_u8(${p})` : `llmcc_load4_s8(${p})`;
      return this.fail(`load ${t} from a ${elem} buffer`);
    }
    const at = `v_${e.buffer}[${this.expr(e.index)}]`;
    if (elem === 'f32') {
      if (t !== 'f32') this.fail(`load ${t} from an f32 buffer`);
      return at;
    }
    if (elem === 'f16') {
      if (t !== 'f32' && t !== 'f16') this.fail(`load ${t} from an f16 buffer`);
      return `${this.helpers.use('f16_to_f32', 'i32')}((int32_t)${at})`;
    }
    if (isFloat(t)) this.fail(`load ${t} from a ${elem} buffer`);
    if (elem === 'u32' && t !== 'u32') return `llmcc_u32_as_i32(${at})`;
    if (elem !== 'u32' && t === 'u32') return `(uint32_t)${at}`;
    return `(${cValueType(t)})${at}`;
  }

  private store(buffer: string, index: Expr, value: Expr): string {
    const elem = this.bufferElem(buffer);
    const t = value.type;
    const v = this.expr(value);
    if (isVector(t)) {
      const p = this.pointer(buffer, index);
      if (elem === 'f16') {
        if (t !== 'f32x4') this.fail(`store ${t} to an f16 buffer`);
        const bits = `${this.helpers.use('f32_to_f16', 'f32x4')}(${v})`;
        return `vst1_u16(${p}, vmovn_u32(vreinterpretq_u32_s32(${bits})))`;
      }
      const natural = naturalSuffix(elem);
      const lane = laneType(t);
      if (byteSize(lane) === byteSize(elem) && isFloat(lane) === isFloat(elem)) {
        return `vst1q_${natural}(${p}, ${reinterpret(v, sfx(t), natural)})`;
      }
      // A vector store writes its 16 bytes at the element index, whatever the lane width.
      return `vst1q_u8((uint8_t *)(${p}), ${reinterpret(v, sfx(t), 'u8')})`;
    }
    const at = `v_${buffer}[${this.expr(index)}]`;
    switch (elem) {
      case 'f32':
        if (t !== 'f32' && t !== 'f16') this.fail(`store ${t} to an f32 buffer`);
        return `${at} = ${v}`;
      case 'f16':
        if (t !== 'f32') this.fail(`store ${t} to an f16 buffer`);
        return `${at} = (uint16_t)${this.helpers.use('f32_to_f16', 'f32')}(${v})`;
      default: {
        if (isFloat(t)) this.fail(`store ${t} to a ${elem} buffer`);
        const bits = t === 'u32' ? v : `(uint32_t)(${v})`;
        switch (elem) {
          case 'u32': return `${at} = ${bits}`;
          case 'i32': return `${at} = ${t === 'u32' ? `llmcc_u32_as_i32(${v})` : v}`;
          case 'u16': return `${at} = (uint16_t)${bits}`;
          case 'u8': return `${at} = (uint8_t)${bits}`;
          case 'i16': return `${at} = (int16_t)llmcc_wrap_i16((int32_t)${bits})`;
          case 'i8': return `${at} = (int8_t)llmcc_wrap_i8((int32_t)${bits})`;
        }
      }
    }
  }

  // -------------------------------------------------------------------------------------------
  // Expressions

  expr(e: Expr): string {
    switch (e.kind) {
      case 'const':
        return this.constant(e.type, e.value);
      case 'param':
      case 'var':
        return `v_${e.name}`;
      case 'load':
        return this.load(e);
      case 'binary':
        return this.binary(e.op, e.a, e.b);
      case 'unary':
        return this.unary(e.op, e.a);
      case 'cast':
        return this.cast(e.a, e.type);
      case 'bitcast':
        return this.bitcast(e.a, e.type);
      case 'select': {
        if (isVector(e.type)) {
          const t = e.type;
          const c = reinterpret(this.expr(e.cond), sfx(e.cond.type as VectorType), 'u8');
          const picked = `vbslq_u8(${c}, ${reinterpret(this.expr(e.a), sfx(t), 'u8')}, ${reinterpret(this.expr(e.b), sfx(t), 'u8')})`;
          return reinterpret(picked, 'u8', sfx(t));
        }
        return `(${this.condition(e.cond)} ? ${this.expr(e.a)} : ${this.expr(e.b)})`;
      }
      case 'splat':
        return this.splat(this.expr(e.a), e.type);
      case 'extract':
        return this.extract(this.expr(e.a), e.a.type as VectorType, e.lane);
      case 'reduce':
        return this.reduce(e.op, e.a);
      case 'lookup16': {
        const indices = reinterpret(this.expr(e.indices), sfx(e.indices.type as VectorType), 'u8');
        const table = this.expr(e.table);
        const tableType = e.table.type as VectorType;
        if (e.type === 'u8x16') return `vqtbl1q_u8(${reinterpret(table, sfx(tableType), 'u8')}, ${indices})`;
        return `vqtbl1q_s8(${reinterpret(table, sfx(tableType), 's8')}, ${indices})`;
      }
      case 'widen':
        return this.widen(e.half, e.signed, e.a);
      case 'pairwise_add':
        return this.pairwiseAdd(e.signed, e.a);
      case 'dot_i16':
        return `llmcc_dot_i16(${this.expr(e.a)}, ${this.expr(e.b)})`;
      case 'dot_i8': {
        // b = one i32 lane of a vector broadcast: SDOT by element (no DUP) with +dotprod.
        const b = e.b;
        if (b.kind === 'bitcast' && b.a.kind === 'splat' && b.a.a.kind === 'extract' && b.a.a.a.type === 'i32x4') {
          const source = reinterpret(this.expr(b.a.a.a), 's32', 's8');
          return `llmcc_dot_lane_s8(${this.expr(e.acc)}, ${this.expr(e.a)}, ${source}, ${b.a.a.lane})`;
        }
        return `llmcc_dot_s8(${this.expr(e.acc)}, ${this.expr(e.a)}, ${this.expr(e.b)})`;
      }
      case 'shuffle': {
        const t = e.type;
        const a = reinterpret(this.expr(e.a), sfx(e.a.type as VectorType), 'u8');
        const b = reinterpret(this.expr(e.b), sfx(e.b.type as VectorType), 'u8');
        const lanes = `(const uint8_t[16]){ ${e.lanes.join(', ')} }`;
        return reinterpret(`llmcc_shuffle(${a}, ${b}, ${lanes})`, 'u8', sfx(t));
      }
    }
  }

  private constant(type: ValueType, value: number): string {
    if (!isVector(type)) {
      if (isFloat(type)) return floatLiteral(value);
      if (type === 'u32') return `${value >>> 0}u`;
      return intLiteral(value);
    }
    switch (type) {
      case 'f32x4': return `vdupq_n_f32(${floatLiteral(value)})`;
      case 'i32x4': return `vdupq_n_s32(${intLiteral(value)})`;
      case 'i16x8': return `vdupq_n_s16(${intLiteral((value << 16) >> 16)})`;
      case 'i8x16': return `vdupq_n_s8(${intLiteral((value << 24) >> 24)})`;
      case 'u8x16': return `vdupq_n_u8(${value & 0xff})`;
    }
  }

  private splat(v: string, type: VectorType): string {
    switch (type) {
      case 'f32x4': return `vdupq_n_f32(${v})`;
      case 'i32x4': return `vdupq_n_s32(${v})`;
      case 'i16x8': return `vdupq_n_s16((int16_t)llmcc_wrap_i16(${v}))`;
      case 'i8x16': return `vdupq_n_s8((int8_t)llmcc_wrap_i8(${v}))`;
      case 'u8x16': return `vdupq_n_u8((uint8_t)llmcc_wrap_u8(${v}))`;
    }
  }

  private extract(v: string, type: VectorType, lane: number): string {
    switch (type) {
      case 'f32x4': return `vgetq_lane_f32(${v}, ${lane})`;
      default: return `(int32_t)vgetq_lane_${sfx(type)}(${v}, ${lane})`;
    }
  }

  private reduce(op: 'add' | 'max' | 'min', a: Expr): string {
    const type = a.type as VectorType;
    const v = this.expr(a);
    if (type === 'f32x4') {
      if (op === 'add') {
        // Lanes in order, as the WASM target sums them.
        return `llmcc_reduce_add_f32(${v})`;
      }
      return `v${op}vq_f32(${v})`;
    }
    if (op === 'add') {
      switch (type) {
        case 'i32x4': return `vaddvq_s32(${v})`;
        case 'i16x8': return `vaddlvq_s16(${v})`;
        case 'i8x16': return `(int32_t)vaddlvq_s8(${v})`;
        case 'u8x16': return `(int32_t)vaddlvq_u8(${v})`;
      }
    }
    return `(int32_t)v${op}vq_${sfx(type)}(${v})`;
  }

  private widen(half: 'low' | 'high', signed: boolean, a: Expr): string {
    const from = a.type as VectorType;
    let v = this.expr(a);
    if (from === 'i8x16' || from === 'u8x16') {
      const s = signed ? 's8' : 'u8';
      v = reinterpret(v, sfx(from), s);
      const wide = half === 'low' ? `vmovl_${s}(vget_low_${s}(${v}))` : `vmovl_high_${s}(${v})`;
      return signed ? wide : `vreinterpretq_s16_u16(${wide})`;
    }
    if (from === 'i16x8') {
      const s = signed ? 's16' : 'u16';
      v = reinterpret(v, 's16', s);
      const wide = half === 'low' ? `vmovl_${s}(vget_low_${s}(${v}))` : `vmovl_high_${s}(${v})`;
      return signed ? wide : `vreinterpretq_s32_u32(${wide})`;
    }
    return this.fail(`widen ${from}`);
  }

  /** `acc + widen(half, signed, x)` as vaddw(_high). */
  private widenAdd(acc: Expr, w: Extract<Expr, { kind: 'widen' }>): string {
    const from = w.a.type as VectorType;
    const narrow = from === 'i16x8' ? (w.signed ? 's16' : 'u16') : (w.signed ? 's8' : 'u8');
    const wide = from === 'i16x8' ? (w.signed ? 's32' : 'u32') : (w.signed ? 's16' : 'u16');
    const accSfx = sfx(acc.type as VectorType);
    const x = reinterpret(this.expr(w.a), sfx(from), narrow);
    const sum = w.half === 'low'
      ? `vaddw_${narrow}(${reinterpret(this.expr(acc), accSfx, wide)}, vget_low_${narrow}(${x}))`
      : `vaddw_high_${narrow}(${reinterpret(this.expr(acc), accSfx, wide)}, ${x})`;
    return reinterpret(sum, wide, accSfx);
  }

  private pairwiseAdd(signed: boolean, a: Expr): string {
    const from = a.type as VectorType;
    // Two pairwise adds of bytes are a sum of 4 bytes: one SDOT/UDOT with +dotprod.
    if (from === 'i16x8' && a.kind === 'pairwise_add' && a.signed === signed && (a.a.type === 'i8x16' || a.a.type === 'u8x16')) {
      return this.sum4('vdupq_n_s32(0)', signed, a.a);
    }
    const v = this.expr(a);
    if (from === 'i8x16' || from === 'u8x16') {
      return signed ? `vpaddlq_s8(${reinterpret(v, sfx(from), 's8')})` : `vreinterpretq_s16_u16(vpaddlq_u8(${reinterpret(v, sfx(from), 'u8')}))`;
    }
    if (from === 'i16x8') return signed ? `vpaddlq_s16(${v})` : `vreinterpretq_s32_u32(vpaddlq_u16(vreinterpretq_u16_s16(${v})))`;
    return this.fail(`pairwise_add ${from}`);
  }

  /** `acc + (sum of each 4 adjacent bytes of x)`, with vdotq when built with +dotprod. */
  private sum4(acc: string, signed: boolean, x: Expr): string {
    const v = this.expr(x);
    const from = x.type as VectorType;
    return signed ? `llmcc_sum4_s8(${acc}, ${reinterpret(v, sfx(from), 's8')})` : `llmcc_sum4_u8(${acc}, ${reinterpret(v, sfx(from), 'u8')})`;
  }

  /** `pairwise_add(pairwise_add(bytes))`: the operand a dot-product accumulate can absorb. */
  private sum4Operand(e: Expr): { signed: boolean; x: Expr } | undefined {
    if (e.kind !== 'pairwise_add' || e.type !== 'i32x4') return undefined;
    const inner = e.a;
    if (inner.kind !== 'pairwise_add' || inner.signed !== e.signed) return undefined;
    if (inner.a.type !== 'i8x16' && inner.a.type !== 'u8x16') return undefined;
    return { signed: e.signed, x: inner.a };
  }

  private binary(op: BinaryOp, a: Expr, b: Expr): string {
    const t = a.type;
    if (isVector(t)) {
      // acc + widen(half of x): one widening add (SADDW/UADDW), the LUT kernels' int16 accumulation.
      if (op === 'add' && (t === 'i16x8' || t === 'i32x4')) {
        const widened = b.kind === 'widen' ? b : a.kind === 'widen' ? a : undefined;
        if (widened && widened.kind === 'widen') return this.widenAdd(widened === b ? a : b, widened);
      }
      if (op === 'add' && t === 'i32x4') {
        const right = this.sum4Operand(b);
        if (right) return this.sum4(this.expr(a), right.signed, right.x);
        const left = this.sum4Operand(a);
        if (left) return this.sum4(this.expr(b), left.signed, left.x);
      }
      return this.vectorBinary(op, a, b, t);
    }
    const x = this.expr(a);
    const y = this.expr(b);
    // Comparisons give an i32 0/1 for every scalar type (C's own operators are defined there).
    const compare = SCALAR_COMPARE[op];
    if (compare) return `(int32_t)(${x} ${compare} ${y})`;
    if (isFloat(t)) {
      switch (op) {
        case 'add': return `(${x} + ${y})`;
        case 'sub': return `(${x} - ${y})`;
        case 'mul': return `(${x} * ${y})`;
        case 'div': return `(${x} / ${y})`;
        case 'min': return `llmcc_fmin(${x}, ${y})`;
        case 'max': return `llmcc_fmax(${x}, ${y})`;
        default: return this.fail(`${op} on f32`);
      }
    }
    if (t === 'u32') {
      switch (op) {
        case 'add': return `(${x} + ${y})`;
        case 'sub': return `(${x} - ${y})`;
        case 'mul': return `(${x} * ${y})`;
        case 'div': return `llmcc_div_u32(${x}, ${y})`;
        case 'rem': return `llmcc_rem_u32(${x}, ${y})`;
        case 'min': return `llmcc_min_u32(${x}, ${y})`;
        case 'max': return `llmcc_max_u32(${x}, ${y})`;
        case 'and': return `(${x} & ${y})`;
        case 'or': return `(${x} | ${y})`;
        case 'xor': return `(${x} ^ ${y})`;
        case 'shl': return `llmcc_shl_u32(${x}, (uint32_t)(${y}))`;
        case 'shr': return `llmcc_shr_u32(${x}, (uint32_t)(${y}))`;
        default: return this.fail(`${op} on u32`);
      }
    }
    // i32 and the narrow integer types (which compute as i32, values already in range).
    const u = isUnsigned(t);
    switch (op) {
      case 'add': return `llmcc_add_i32(${x}, ${y})`;
      case 'sub': return `llmcc_sub_i32(${x}, ${y})`;
      case 'mul': return `llmcc_mul_i32(${x}, ${y})`;
      case 'div': return u ? `(int32_t)llmcc_div_u32((uint32_t)(${x}), (uint32_t)(${y}))` : `llmcc_div_i32(${x}, ${y})`;
      case 'rem': return u ? `(int32_t)llmcc_rem_u32((uint32_t)(${x}), (uint32_t)(${y}))` : `llmcc_rem_i32(${x}, ${y})`;
      case 'min': return `llmcc_min_i32(${x}, ${y})`;
      case 'max': return `llmcc_max_i32(${x}, ${y})`;
      case 'and': return `(${x} & ${y})`;
      case 'or': return `(${x} | ${y})`;
      case 'xor': return `(${x} ^ ${y})`;
      case 'shl': return `llmcc_shl_i32(${x}, ${y})`;
      case 'shr': return u ? `(int32_t)llmcc_shr_u32((uint32_t)(${x}), (uint32_t)(${y}))` : `llmcc_shr_i32(${x}, ${y})`;
      default: return this.fail(`${op} on ${t}`);
    }
  }

  private vectorBinary(op: BinaryOp, a: Expr, b: Expr, t: VectorType): string {
    const s = sfx(t);
    const x = this.expr(a);
    if (op === 'shl' || op === 'shr' || op === 'shr_u') return this.vectorShift(op, x, b, t);
    const y = this.expr(b);
    if (op === 'and' || op === 'or' || op === 'xor') {
      const name = op === 'and' ? 'vandq' : op === 'or' ? 'vorrq' : 'veorq';
      const is = t === 'f32x4' ? 'u32' : s;
      return reinterpret(`${name}_${is}(${reinterpret(x, s, is)}, ${reinterpret(y, s, is)})`, is, s);
    }
    const compare: Partial<Record<BinaryOp, string>> = { eq: 'vceqq', lt: 'vcltq', le: 'vcleq', gt: 'vcgtq', ge: 'vcgeq' };
    const mask = (t === 'f32x4' ? 'i32x4' : t) as VectorType;
    if (op in compare) return reinterpret(`${compare[op]}_${s}(${x}, ${y})`, maskSfx(t), sfx(mask));
    if (op === 'ne') return reinterpret(`vmvnq_${maskSfx(t)}(vceqq_${s}(${x}, ${y}))`, maskSfx(t), sfx(mask));
    // x + (v >>u n): one USRA (shift right and accumulate), as the LUT kernel's odd-row sums.
    if (op === 'add' && t !== 'f32x4' && b.kind === 'binary' && b.op === 'shr_u' && b.b.kind === 'const' && (b.b.value & (128 / laneCount(t) - 1)) !== 0) {
      const u = maskSfx(t);
      return reinterpret(`vsraq_n_${u}(${reinterpret(x, s, u)}, ${reinterpret(this.expr(b.a), s, u)}, ${b.b.value & (128 / laneCount(t) - 1)})`, u, s);
    }
    switch (op) {
      case 'add': return `vaddq_${s}(${x}, ${y})`;
      case 'sub': return `vsubq_${s}(${x}, ${y})`;
      case 'mul':
        if (t === 'i8x16' || t === 'u8x16') break;
        return t === 'f32x4' ? `vmulq_f32(${x}, ${y})` : `llmcc_vmulq_${s}(${x}, ${y})`;
      case 'div':
        if (t !== 'f32x4') break;
        return `llmcc_vdivq_f32(${x}, ${y})`;
      case 'min': return `vminq_${s}(${x}, ${y})`;
      case 'max': return `vmaxq_${s}(${x}, ${y})`;
      case 'add_sat':
        if (t === 'i32x4' || t === 'f32x4') break;
        return `vqaddq_${s}(${x}, ${y})`;
    }
    return this.fail(`${op} on ${t}`);
  }

  /** Vector shifts by a scalar count taken modulo the lane width (as WASM does). */
  private vectorShift(op: 'shl' | 'shr' | 'shr_u', x: string, amount: Expr, t: VectorType): string {
    if (t === 'f32x4') this.fail(`${op} on f32x4`);
    const bits = 128 / laneCount(t);
    const s = sfx(t);
    // Left shifts go through the unsigned lane type: the same SHL/USHL, and no signed-shift UB in SIMDe.
    const u = ({ i32x4: 'u32', i16x8: 'u16', i8x16: 'u8', u8x16: 'u8' } as const)[t];
    if (amount.kind === 'const') {
      const n = amount.value & (bits - 1);
      if (n === 0) return x;
      if (op === 'shr_u') return reinterpret(`vshrq_n_${u}(${reinterpret(x, s, u)}, ${n})`, u, s);
      return op === 'shl' ? reinterpret(`vshlq_n_${u}(${reinterpret(x, s, u)}, ${n})`, u, s) : `vshrq_n_${s}(${x}, ${n})`;
    }
    const count = `(${this.expr(amount)} & ${bits - 1})`;
    const signedLane = ({ i32x4: 's32', i16x8: 's16', i8x16: 's8', u8x16: 's8' } as const)[t];
    const countVec = (negate: boolean): string => {
      const c = negate ? `-${count}` : count;
      if (signedLane === 's32') return `vdupq_n_s32(${c})`;
      return `vdupq_n_${signedLane}((int${bits}_t)(${c}))`;
    };
    // NEON shifts by a register: a negative count shifts right (arithmetic for signed lanes).
    if (op === 'shl') return reinterpret(`vshlq_${u}(${reinterpret(x, s, u)}, ${countVec(false)})`, u, s);
    // USHL by a negative count: a logical right shift.
    if (op === 'shr_u') return reinterpret(`vshlq_${u}(${reinterpret(x, s, u)}, ${countVec(true)})`, u, s);
    return `vshlq_${s}(${x}, ${countVec(true)})`;
  }

  private unary(op: UnaryOp, a: Expr): string {
    const t = a.type;
    switch (op) {
      case 'exp': case 'log': case 'tanh': case 'erf': case 'sin': case 'cos': case 'sigmoid': {
        if (t !== 'f32' && t !== 'f32x4') this.fail(`${op} on ${t}`);
        return `${this.helpers.use(op, t)}(${this.expr(a)})`;
      }
    }
    const x = this.expr(a);
    if (t === 'f32') {
      switch (op) {
        case 'neg': return `(-${x})`;
        case 'abs': return `fabsf(${x})`;
        case 'sqrt': return `sqrtf(${x})`;
        case 'floor': return `floorf(${x})`;
        case 'ceil': return `ceilf(${x})`;
        case 'trunc': return `truncf(${x})`;
        case 'nearest': return `nearbyintf(${x})`;
        default: return this.fail(`${op} on f32`);
      }
    }
    if (t === 'f32x4') {
      switch (op) {
        case 'neg': return `vnegq_f32(${x})`;
        case 'abs': return `vabsq_f32(${x})`;
        case 'sqrt': return `llmcc_vsqrtq_f32(${x})`;
        case 'floor': return `vrndmq_f32(${x})`;
        case 'ceil': return `vrndpq_f32(${x})`;
        case 'trunc': return `vrndq_f32(${x})`;
        case 'nearest': return `vrndnq_f32(${x})`;
        default: return this.fail(`${op} on f32x4`);
      }
    }
    if (isVector(t)) {
      const s = sfx(t);
      if (op === 'not') return `vmvnq_${s}(${x})`;
      if (op === 'neg') return t === 'u8x16' ? `vreinterpretq_u8_s8(vnegq_s8(vreinterpretq_s8_u8(${x})))` : `vnegq_${s}(${x})`;
      if (op === 'abs') return t === 'u8x16' ? x : `vabsq_${s}(${x})`;
      return this.fail(`${op} on ${t}`);
    }
    if (t === 'u32') {
      switch (op) {
        case 'neg': return `(0u - ${x})`;
        case 'not': return `(~${x})`;
        case 'abs': return x;
        default: return this.fail(`${op} on u32`);
      }
    }
    switch (op) {
      case 'neg': return `llmcc_neg_i32(${x})`;
      case 'not': return `(~${x})`;
      case 'abs': return isUnsigned(t) ? x : `llmcc_abs_i32(${x})`;
      default: return this.fail(`${op} on ${t}`);
    }
  }

  private cast(a: Expr, to: ValueType): string {
    const from = a.type;
    const x = this.expr(a);
    if (from === to) return x;
    if (isVector(from) || isVector(to)) {
      if (from === 'f32x4' && to === 'i32x4') return `vcvtq_s32_f32(${x})`;
      if (from === 'i32x4' && to === 'f32x4') return `vcvtq_f32_s32(${x})`;
      if (isVector(from) && isVector(to) && !isFloat(from) && !isFloat(to) && laneCount(from) === laneCount(to)) {
        return reinterpret(x, sfx(from), sfx(to));
      }
      return this.fail(`cast ${from} → ${to}`);
    }
    if (isFloat(from) && isFloat(to)) {
      if (to === 'f16') return `${this.helpers.use('round_f16', 'f32')}(${x})`;
      return x;
    }
    if (isFloat(from)) {
      if (to === 'u32') return `llmcc_f32_to_u32(${x})`;
      const wide = isUnsigned(to) ? `llmcc_u32_as_i32(llmcc_f32_to_u32(${x}))` : `llmcc_f32_to_i32(${x})`;
      return this.narrow(wide, to);
    }
    if (isFloat(to)) return from === 'u32' ? `(float)(${x})` : isUnsigned(from) ? `(float)(uint32_t)(${x})` : `(float)(${x})`;
    if (to === 'u32') return `(uint32_t)(${x})`;
    if (from === 'u32') return this.narrow(`llmcc_u32_as_i32(${x})`, to);
    return this.narrow(x, to);
  }

  /** Wraps an i32 to the range of a narrow integer type. */
  private narrow(x: string, to: ValueType): string {
    switch (to) {
      case 'i8': return `llmcc_wrap_i8(${x})`;
      case 'u8': return `llmcc_wrap_u8(${x})`;
      case 'i16': return `llmcc_wrap_i16(${x})`;
      case 'u16': return `llmcc_wrap_u16(${x})`;
      default: return x;
    }
  }

  private bitcast(a: Expr, to: ValueType): string {
    const from = a.type;
    const x = this.expr(a);
    if (from === to) return x;
    if (isVector(from) && isVector(to)) return reinterpret(x, sfx(from), sfx(to));
    if (from === 'f32' && !isFloat(to) && !isVector(to)) return to === 'u32' ? `(uint32_t)llmcc_f32_bits(${x})` : `llmcc_f32_bits(${x})`;
    if (!isFloat(from) && !isVector(from) && to === 'f32') return from === 'u32' ? `llmcc_bits_f32(llmcc_u32_as_i32(${x}))` : `llmcc_bits_f32(${x})`;
    if (!isFloat(from) && !isFloat(to) && !isVector(from) && !isVector(to)) {
      if (to === 'u32') return `(uint32_t)(${x})`;
      if (from === 'u32') return `llmcc_u32_as_i32(${x})`;
      return x;
    }
    return this.fail(`bitcast ${from} → ${to}`);
  }
}

/** The NEON suffix of a buffer's natural full-width vector load. */
function naturalSuffix(elem: ScalarType): string {
  return ({ f32: 'f32', i32: 's32', u32: 'u32', i16: 's16', u16: 'u16', i8: 's8', u8: 'u8', f16: 'u16' } as const)[elem];
}
