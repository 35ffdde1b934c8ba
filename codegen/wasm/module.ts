/**
 * Builds one WebAssembly module (baseline SIMD128, no relaxed SIMD) from kernels in the shared
 * form, with binaryen: imports `env.memory`, exports each kernel by name, validates, optimizes,
 * emits. Buffer params are byte offsets into that memory; element indices are scaled here.
 *
 * Transcendentals and f16 conversions become calls to internal helper functions built from the
 * target-neutral expansions in codegen/mathlib.ts; binaryen inlines them where it pays.
 * Typing conventions are those documented in codegen/builder.ts.
 */
import type Binaryen from 'binaryen';
import binaryen from './binaryen.js';
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
import { mathFunction, type MathFunction, type MathOp } from '../mathlib.js';

type Ref = Binaryen.ExpressionRef;

export interface WasmBuildOptions {
  /** Run binaryen's optimizer (level 3). Default true. */
  optimize?: boolean;
  /** Import a shared memory (for worker threads); needs a `maximum` on the Memory. Default false. */
  sharedMemory?: boolean;
  /** Maximum pages declared for a shared memory import. Default 65536 (4 GiB). */
  maximumPages?: number;
}

export function buildWasmModule(kernels: Kernel[], options: WasmBuildOptions = {}): Uint8Array {
  const module = new binaryen.Module();
  try {
    const shared = options.sharedMemory ?? false;
    let features =
      binaryen.Features.SIMD128 |
      binaryen.Features.NontrappingFPToInt |
      binaryen.Features.SignExt |
      binaryen.Features.BulkMemory |
      binaryen.Features.MutableGlobals;
    if (shared) features |= binaryen.Features.Atomics;
    module.setFeatures(features);
    // Non-shared memories are imported without a maximum so any Memory the runtime grows fits.
    const maximum = shared ? (options.maximumPages ?? 65536) : -1;
    module.setMemory(1, maximum, null, [], shared);
    module.addMemoryImport('0', 'env', 'memory', shared);

    const helpers = new HelperTable(module);
    const names = new Set<string>();
    for (const kernel of kernels) {
      if (names.has(kernel.name)) throw new Error(`wasm builder: duplicate kernel name ${kernel.name}`);
      names.add(kernel.name);
      compileKernel(module, kernel, helpers);
      module.addFunctionExport(kernel.name, kernel.name);
    }
    if (!module.validate()) throw new Error('wasm builder: generated module does not validate');
    if (options.optimize ?? true) {
      binaryen.setOptimizeLevel(3);
      binaryen.setShrinkLevel(0);
      // Math helpers are small and called from hot loops: inline them.
      binaryen.setFlexibleInlineMaxSize(400);
      binaryen.setAlwaysInlineMaxSize(60);
      module.optimize();
    }
    return module.emitBinary();
  } finally {
    module.dispose();
  }
}

/** Wasm value type of a kernel-form type. */
function wasmType(t: ValueType): Binaryen.Type {
  if (isVector(t)) return binaryen.v128;
  return t === 'f32' || t === 'f16' ? binaryen.f32 : binaryen.i32;
}

function isFloat(t: ValueType): boolean {
  return t === 'f32' || t === 'f16' || t === 'f32x4';
}

function isUnsigned(t: ValueType): boolean {
  return t === 'u32' || t === 'u8' || t === 'u16' || t === 'u8x16';
}

/** Internal helper functions (math expansions, f16 conversions), created on first use. */
class HelperTable {
  private readonly created = new Map<string, string>();
  private readonly building = new Set<string>();

  constructor(private readonly module: Binaryen.Module) {}

  get(op: MathOp, type: ValueType): string {
    const key = `llmcc_${op}_${type}`;
    const existing = this.created.get(key);
    if (existing) return existing;
    if (this.building.has(key)) throw new Error(`wasm builder: ${key} depends on itself`);
    this.building.add(key);
    const fn = mathFunction(op, type);
    compileMathFunction(this.module, key, fn, this);
    this.building.delete(key);
    this.created.set(key, key);
    return key;
  }
}

function compileKernel(module: Binaryen.Module, kernel: Kernel, helpers: HelperTable): void {
  const fc = new FunctionCompiler(module, helpers, kernel.name);
  const paramTypes: Binaryen.Type[] = [];
  for (const p of kernel.params) {
    if (p.kind === 'buffer') {
      fc.declareParam(p.name, 'i32');
      fc.buffers.set(p.name, p.elem);
    } else {
      fc.declareParam(p.name, p.type);
    }
    paramTypes.push(p.kind === 'buffer' ? binaryen.i32 : wasmType(p.type));
  }
  const body = module.block(null, fc.stmts(kernel.body), binaryen.none);
  module.addFunction(kernel.name, binaryen.createType(paramTypes), binaryen.none, fc.varTypes(), body);
}

function compileMathFunction(module: Binaryen.Module, name: string, fn: MathFunction, helpers: HelperTable): void {
  const fc = new FunctionCompiler(module, helpers, name);
  fc.declareParam(fn.arg, fn.argType);
  const stmts = fc.stmts(fn.body);
  const result = fc.expr(fn.result);
  const body = module.block(null, [...stmts, result], wasmType(fn.result.type));
  module.addFunction(name, wasmType(fn.argType), wasmType(fn.result.type), fc.varTypes(), body);
}

class FunctionCompiler {
  readonly buffers = new Map<string, ScalarType>();
  private readonly locals = new Map<string, { index: number; type: ValueType }>();
  private readonly vars: Binaryen.Type[] = [];
  private paramCount = 0;
  private labels = 0;

  constructor(
    private readonly m: Binaryen.Module,
    private readonly helpers: HelperTable,
    private readonly fnName: string,
  ) {}

  declareParam(name: string, type: ValueType): void {
    if (this.vars.length > 0) throw new Error('wasm builder: params after locals');
    if (this.locals.has(name)) throw new Error(`wasm builder: ${this.fnName}: duplicate param ${name}`);
    this.locals.set(name, { index: this.paramCount++, type });
  }

  varTypes(): Binaryen.Type[] {
    return this.vars;
  }

  private declareLocal(name: string, type: ValueType): number {
    const existing = this.locals.get(name);
    if (existing) {
      if (wasmType(existing.type) !== wasmType(type) || existing.index < this.paramCount) {
        throw new Error(`wasm builder: ${this.fnName}: ${name} redeclared as ${type}`);
      }
      existing.type = type;
      return existing.index;
    }
    const index = this.paramCount + this.vars.length;
    this.vars.push(wasmType(type));
    this.locals.set(name, { index, type });
    return index;
  }

  private temp(type: ValueType): number {
    const index = this.paramCount + this.vars.length;
    this.vars.push(wasmType(type));
    return index;
  }

  private local(name: string): { index: number; type: ValueType } {
    const l = this.locals.get(name);
    if (!l) throw new Error(`wasm builder: ${this.fnName}: unknown variable ${name}`);
    return l;
  }

  private fail(message: string): never {
    throw new Error(`wasm builder: ${this.fnName}: ${message}`);
  }

  // -------------------------------------------------------------------------------------------
  // Statements

  stmts(list: Stmt[]): Ref[] {
    return list.map((s) => this.stmt(s));
  }

  private stmt(s: Stmt): Ref {
    const m = this.m;
    switch (s.kind) {
      case 'let': {
        const value = this.expr(s.init);
        const index = this.declareLocal(s.name, s.type);
        return m.local.set(index, value);
      }
      case 'assign': {
        const l = this.local(s.name);
        return m.local.set(l.index, this.expr(s.value));
      }
      case 'store':
        return this.store(s.buffer, s.index, s.value);
      case 'if': {
        const thenRef = m.block(null, this.stmts(s.then), binaryen.none);
        const elseRef = s.else && s.else.length > 0 ? m.block(null, this.stmts(s.else), binaryen.none) : undefined;
        return m.if(this.condition(s.cond), thenRef, elseRef);
      }
      case 'for':
        return this.forLoop(s);
    }
  }

  /** A scalar condition as wasm i32 (non-zero = true). */
  private condition(cond: Expr): Ref {
    if (isVector(cond.type)) this.fail('vector used as a condition');
    if (cond.type === 'f32') return this.m.f32.ne(this.expr(cond), this.m.f32.const(0));
    return this.expr(cond);
  }

  private forLoop(s: Extract<Stmt, { kind: 'for' }>): Ref {
    const m = this.m;
    const id = this.labels++;
    const loopLabel = `loop${id}`;
    const i = this.declareLocal(s.name, 'i32');
    const prologue: Ref[] = [m.local.set(i, this.expr(s.start))];
    // The bound is evaluated once, as the kernel form's loops do not change it.
    let end: () => Ref;
    if (s.end.kind === 'const') {
      const value = s.end.value;
      end = () => m.i32.const(value);
    } else if (s.end.kind === 'param' || s.end.kind === 'var') {
      const index = this.local(s.end.name).index;
      end = () => m.local.get(index, binaryen.i32);
    } else {
      const t = this.temp('i32');
      prologue.push(m.local.set(t, this.expr(s.end)));
      end = () => m.local.get(t, binaryen.i32);
    }
    const body = this.stmts(s.body);
    const increment = m.local.set(i, m.i32.add(m.local.get(i, binaryen.i32), m.i32.const(s.step)));
    const again = m.br(loopLabel, m.i32.lt_s(m.local.get(i, binaryen.i32), end()));
    const loop = m.loop(loopLabel, m.block(null, [...body, increment, again], binaryen.none));
    return m.block(null, [...prologue, m.if(m.i32.lt_s(m.local.get(i, binaryen.i32), end()), loop)], binaryen.none);
  }

  // -------------------------------------------------------------------------------------------
  // Memory

  private bufferElem(name: string): ScalarType {
    const elem = this.buffers.get(name);
    if (!elem) this.fail(`unknown buffer ${name}`);
    return elem;
  }

  /** Byte address of element `index` of a buffer of `elem`. */
  private address(buffer: string, index: Expr, elem: ScalarType): Ref {
    const m = this.m;
    const base = m.local.get(this.local(buffer).index, binaryen.i32);
    const size = byteSize(elem);
    if (index.kind === 'const') return m.i32.add(base, m.i32.const(index.value * size));
    const idx = this.expr(index);
    const scaled = size === 1 ? idx : m.i32.shl(idx, m.i32.const(Math.log2(size)));
    return m.i32.add(base, scaled);
  }

  /**
   * Address and memarg offset of element `index` for a vector load/store: a constant term
   * `x + c` (c ≥ 0) becomes the instruction's offset, so V8 folds it into the addressing mode
   * instead of computing x + c per access (equal for every in-bounds access).
   */
  private vectorAddress(buffer: string, index: Expr, elem: ScalarType): [Ref, number] {
    if (index.kind === 'binary' && index.op === 'add' && index.b.kind === 'const' && index.a.kind !== 'const') {
      const offset = index.b.value * byteSize(elem);
      if (Number.isInteger(offset) && offset >= 0 && offset < 2 ** 31) return [this.address(buffer, index.a, elem), offset];
    }
    return [this.address(buffer, index, elem), 0];
  }

  private load(e: Extract<Expr, { kind: 'load' }>): Ref {
    const m = this.m;
    const elem = this.bufferElem(e.buffer);
    const t = e.type;
    const size = byteSize(elem);
    if (isVector(t)) {
      const lane = laneType(t);
      const laneBytes = byteSize(lane);
      if (elem === 'f16') {
        if (t !== 'f32x4') this.fail(`load ${t} from an f16 buffer`);
        return this.f16VectorLoad(e);
      }
      if (laneBytes === size && isFloat(lane) === isFloat(elem)) {
        const [base, offset] = this.vectorAddress(e.buffer, e.index, elem);
        return m.v128.load(offset, size, base);
      }
      const addr = this.address(e.buffer, e.index, elem);
      // Widening loads: 8 narrow elements → i16x8, 4 → i32x4.
      if (t === 'i16x8' && size === 1) return isUnsigned(elem) ? m.v128.load8x8_u(0, 1, addr) : m.v128.load8x8_s(0, 1, addr);
      if (t === 'i32x4' && size === 2) return isUnsigned(elem) ? m.v128.load16x4_u(0, 2, addr) : m.v128.load16x4_s(0, 2, addr);
      if (t === 'i32x4' && size === 1) {
        const bytes = m.v128.load32_zero(0, 1, addr);
        const halves = isUnsigned(elem) ? m.i16x8.extend_low_i8x16_u(bytes) : m.i16x8.extend_low_i8x16_s(bytes);
        return isUnsigned(elem) ? m.i32x4.extend_low_i16x8_u(halves) : m.i32x4.extend_low_i16x8_s(halves);
      }
      return this.fail(`load ${t} from a ${elem} buffer`);
    }
    const addr = this.address(e.buffer, e.index, elem);
    switch (elem) {
      case 'f32':
        if (t !== 'f32') this.fail(`load ${t} from an f32 buffer`);
        return m.f32.load(0, 4, addr);
      case 'f16':
        if (t !== 'f32' && t !== 'f16') this.fail(`load ${t} from an f16 buffer`);
        return m.call(this.helpers.get('f16_to_f32', 'i32'), [m.i32.load16_u(0, 2, addr)], binaryen.f32);
      default:
        if (isFloat(t)) this.fail(`load ${t} from a ${elem} buffer`);
        switch (elem) {
          case 'i32': case 'u32': return m.i32.load(0, 4, addr);
          case 'i16': return m.i32.load16_s(0, 2, addr);
          case 'u16': return m.i32.load16_u(0, 2, addr);
          case 'i8': return m.i32.load8_s(0, 1, addr);
          case 'u8': return m.i32.load8_u(0, 1, addr);
        }
    }
    return this.fail(`load from a ${elem} buffer`);
  }

  private f16VectorLoad(e: Extract<Expr, { kind: 'load' }>): Ref {
    const m = this.m;
    const base = this.temp('i32');
    const parts: Ref[] = [m.local.set(base, this.address(e.buffer, e.index, 'f16'))];
    let vec = m.f32x4.splat(m.f32.const(0));
    for (let lane = 0; lane < 4; lane++) {
      const half = m.i32.load16_u(lane * 2, 2, m.local.get(base, binaryen.i32));
      const value = m.call(this.helpers.get('f16_to_f32', 'i32'), [half], binaryen.f32);
      vec = m.f32x4.replace_lane(vec, lane, value);
    }
    parts.push(vec);
    return m.block(null, parts, binaryen.v128);
  }

  private store(buffer: string, index: Expr, value: Expr): Ref {
    const m = this.m;
    const elem = this.bufferElem(buffer);
    const t = value.type;
    if (isVector(t)) {
      if (elem === 'f16') {
        if (t !== 'f32x4') this.fail(`store ${t} to an f16 buffer`);
        const base = this.temp('i32');
        const vec = this.temp('f32x4');
        const parts: Ref[] = [m.local.set(base, this.address(buffer, index, 'f16')), m.local.set(vec, this.expr(value))];
        for (let lane = 0; lane < 4; lane++) {
          const f = m.f32x4.extract_lane(m.local.get(vec, binaryen.v128), lane);
          const half = m.call(this.helpers.get('f32_to_f16', 'f32'), [f], binaryen.i32);
          parts.push(m.i32.store16(lane * 2, 2, m.local.get(base, binaryen.i32), half));
        }
        return m.block(null, parts, binaryen.none);
      }
      // A vector store writes its 16 bytes at the element index, whatever the lane width.
      const [base, offset] = this.vectorAddress(buffer, index, elem);
      return m.v128.store(offset, byteSize(elem), base, this.expr(value));
    }
    const addr = this.address(buffer, index, elem);
    const v = this.expr(value);
    switch (elem) {
      case 'f32':
        // f16-typed values are f32 values already rounded to half precision.
        if (t !== 'f32' && t !== 'f16') this.fail(`store ${t} to an f32 buffer`);
        return m.f32.store(0, 4, addr, v);
      case 'f16':
        if (t !== 'f32') this.fail(`store ${t} to an f16 buffer`);
        return m.i32.store16(0, 2, addr, m.call(this.helpers.get('f32_to_f16', 'f32'), [v], binaryen.i32));
      default:
        if (isFloat(t)) this.fail(`store ${t} to a ${elem} buffer`);
        switch (byteSize(elem)) {
          case 4: return m.i32.store(0, 4, addr, v);
          case 2: return m.i32.store16(0, 2, addr, v);
          default: return m.i32.store8(0, 1, addr, v);
        }
    }
  }

  // -------------------------------------------------------------------------------------------
  // Expressions

  expr(e: Expr): Ref {
    const m = this.m;
    switch (e.kind) {
      case 'const':
        return this.constant(e.type, e.value);
      case 'param':
      case 'var': {
        const l = this.local(e.name);
        return m.local.get(l.index, wasmType(l.type));
      }
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
        if (isVector(e.type)) return m.v128.bitselect(this.expr(e.a), this.expr(e.b), this.expr(e.cond));
        return m.select(this.condition(e.cond), this.expr(e.a), this.expr(e.b));
      }
      case 'splat':
        return this.splat(e.a, e.type);
      case 'extract':
        return this.extract(this.expr(e.a), e.a.type as VectorType, e.lane);
      case 'reduce':
        return this.reduce(e.op, e.a);
      case 'lookup16':
        return m.i8x16.swizzle(this.expr(e.table), this.expr(e.indices));
      case 'widen': {
        const a = this.expr(e.a);
        const low = e.half === 'low';
        if (e.a.type === 'i8x16' || e.a.type === 'u8x16') {
          if (e.signed) return low ? m.i16x8.extend_low_i8x16_s(a) : m.i16x8.extend_high_i8x16_s(a);
          return low ? m.i16x8.extend_low_i8x16_u(a) : m.i16x8.extend_high_i8x16_u(a);
        }
        if (e.a.type === 'i16x8') {
          if (e.signed) return low ? m.i32x4.extend_low_i16x8_s(a) : m.i32x4.extend_high_i16x8_s(a);
          return low ? m.i32x4.extend_low_i16x8_u(a) : m.i32x4.extend_high_i16x8_u(a);
        }
        return this.fail(`widen ${e.a.type}`);
      }
      case 'pairwise_add': {
        const a = this.expr(e.a);
        if (e.a.type === 'i8x16' || e.a.type === 'u8x16') {
          return e.signed ? m.i16x8.extadd_pairwise_i8x16_s(a) : m.i16x8.extadd_pairwise_i8x16_u(a);
        }
        if (e.a.type === 'i16x8') return e.signed ? m.i32x4.extadd_pairwise_i16x8_s(a) : m.i32x4.extadd_pairwise_i16x8_u(a);
        return this.fail(`pairwise_add ${e.a.type}`);
      }
      case 'dot_i16':
        return m.i32x4.dot_i16x8_s(this.expr(e.a), this.expr(e.b));
      case 'dot_i8':
        return this.dotI8(e.acc, e.a, e.b);
      case 'shuffle':
        return m.i8x16.shuffle(this.expr(e.a), this.expr(e.b), e.lanes);
    }
  }

  /**
   * vdotq_s32 semantics: byte products widened to i16 (|−128·−128| fits), each adjacent pair
   * summed into i32 (two such products would not fit i16), then the even and odd i32 lanes of
   * [low pairs, high pairs] added: lane i = Σ of the products of bytes 4i..4i+3.
   */
  private dotI8(acc: Expr, a: Expr, b: Expr): Ref {
    const m = this.m;
    const ta = this.temp('i8x16');
    const tb = this.temp('i8x16');
    const ga = (): Ref => m.local.get(ta, binaryen.v128);
    const gb = (): Ref => m.local.get(tb, binaryen.v128);
    const lowPairs = m.i32x4.extadd_pairwise_i16x8_s(m.i16x8.extmul_low_i8x16_s(ga(), gb()));
    const highPairs = m.i32x4.extadd_pairwise_i16x8_s(m.i16x8.extmul_high_i8x16_s(ga(), gb()));
    const tl = this.temp('i32x4');
    const th = this.temp('i32x4');
    const gl = (): Ref => m.local.get(tl, binaryen.v128);
    const gh = (): Ref => m.local.get(th, binaryen.v128);
    const evens = m.i8x16.shuffle(gl(), gh(), [0, 1, 2, 3, 8, 9, 10, 11, 16, 17, 18, 19, 24, 25, 26, 27]);
    const odds = m.i8x16.shuffle(gl(), gh(), [4, 5, 6, 7, 12, 13, 14, 15, 20, 21, 22, 23, 28, 29, 30, 31]);
    return m.block(null, [
      m.local.set(ta, this.expr(a)),
      m.local.set(tb, this.expr(b)),
      m.local.set(tl, lowPairs),
      m.local.set(th, highPairs),
      m.i32x4.add(this.expr(acc), m.i32x4.add(evens, odds)),
    ], binaryen.v128);
  }

  private constant(type: ValueType, value: number): Ref {
    const m = this.m;
    if (!isVector(type)) return isFloat(type) ? m.f32.const(value) : m.i32.const(value | 0);
    const bytes = new Uint8Array(16);
    const view = new DataView(bytes.buffer);
    const lanes = laneCount(type);
    for (let lane = 0; lane < lanes; lane++) {
      switch (type) {
        case 'f32x4': view.setFloat32(lane * 4, value, true); break;
        case 'i32x4': view.setInt32(lane * 4, value | 0, true); break;
        case 'i16x8': view.setInt16(lane * 2, value, true); break;
        default: view.setUint8(lane, value & 0xff); break;
      }
    }
    return m.v128.const(bytes);
  }

  private splat(a: Expr, type: VectorType): Ref {
    const m = this.m;
    const v = this.expr(a);
    switch (type) {
      case 'f32x4': return m.f32x4.splat(v);
      case 'i32x4': return m.i32x4.splat(v);
      case 'i16x8': return m.i16x8.splat(v);
      default: return m.i8x16.splat(v);
    }
  }

  private extract(v: Ref, type: VectorType, lane: number): Ref {
    const m = this.m;
    switch (type) {
      case 'f32x4': return m.f32x4.extract_lane(v, lane);
      case 'i32x4': return m.i32x4.extract_lane(v, lane);
      case 'i16x8': return m.i16x8.extract_lane_s(v, lane);
      case 'i8x16': return m.i8x16.extract_lane_s(v, lane);
      case 'u8x16': return m.i8x16.extract_lane_u(v, lane);
    }
  }

  private reduce(op: 'add' | 'max' | 'min', a: Expr): Ref {
    const m = this.m;
    const type = a.type as VectorType;
    const t = this.temp(type);
    const lanes: Ref[] = [];
    for (let lane = 0; lane < laneCount(type); lane++) lanes.push(this.extract(m.local.get(t, binaryen.v128), type, lane));
    const scalarType: ValueType = type === 'f32x4' ? 'f32' : isUnsigned(type) ? 'u32' : 'i32';
    const parts: Ref[] = [m.local.set(t, this.expr(a))];
    let combined = lanes[0];
    for (const x of lanes.slice(1)) {
      if (op !== 'add' && scalarType !== 'f32') {
        // Integer min/max read each operand twice: go through locals.
        const ta = this.temp(scalarType);
        const tb = this.temp(scalarType);
        parts.push(m.local.set(ta, combined), m.local.set(tb, x));
        const ga = (): Ref => m.local.get(ta, binaryen.i32);
        const gb = (): Ref => m.local.get(tb, binaryen.i32);
        const less = isUnsigned(type) ? m.i32.lt_u(ga(), gb()) : m.i32.lt_s(ga(), gb());
        combined = op === 'min' ? m.select(less, ga(), gb()) : m.select(less, gb(), ga());
      } else {
        combined = this.scalarBinary(op, combined, x, scalarType);
      }
    }
    return m.block(null, [...parts, combined], wasmType(scalarType));
  }

  private binary(op: BinaryOp, a: Expr, b: Expr): Ref {
    const t = a.type;
    if (isVector(t)) return this.vectorBinary(op, this.expr(a), this.expr(b), t);
    if ((op === 'min' || op === 'max') && !isFloat(t)) {
      // Integer min/max: select needs each operand twice, so go through temps.
      const ta = this.temp(t);
      const tb = this.temp(t);
      const m = this.m;
      // Binaryen expressions are trees: every use needs its own local.get.
      const ga = (): Ref => m.local.get(ta, binaryen.i32);
      const gb = (): Ref => m.local.get(tb, binaryen.i32);
      const less = isUnsigned(t) ? m.i32.lt_u(ga(), gb()) : m.i32.lt_s(ga(), gb());
      const pick = op === 'min' ? m.select(less, ga(), gb()) : m.select(less, gb(), ga());
      return m.block(null, [m.local.set(ta, this.expr(a)), m.local.set(tb, this.expr(b)), pick], binaryen.i32);
    }
    return this.scalarBinary(op, this.expr(a), this.expr(b), t);
  }

  private scalarBinary(op: BinaryOp, a: Ref, b: Ref, t: ValueType): Ref {
    const m = this.m;
    if (isFloat(t)) {
      const f = m.f32;
      switch (op) {
        case 'add': return f.add(a, b);
        case 'sub': return f.sub(a, b);
        case 'mul': return f.mul(a, b);
        case 'div': return f.div(a, b);
        case 'min': return f.min(a, b);
        case 'max': return f.max(a, b);
        case 'eq': return f.eq(a, b);
        case 'ne': return f.ne(a, b);
        case 'lt': return f.lt(a, b);
        case 'le': return f.le(a, b);
        case 'gt': return f.gt(a, b);
        case 'ge': return f.ge(a, b);
        default: return this.fail(`${op} on f32`);
      }
    }
    const i = m.i32;
    const u = isUnsigned(t);
    switch (op) {
      case 'add': return i.add(a, b);
      case 'sub': return i.sub(a, b);
      case 'mul': return i.mul(a, b);
      case 'div': return u ? i.div_u(a, b) : i.div_s(a, b);
      case 'rem': return u ? i.rem_u(a, b) : i.rem_s(a, b);
      case 'and': return i.and(a, b);
      case 'or': return i.or(a, b);
      case 'xor': return i.xor(a, b);
      case 'shl': return i.shl(a, b);
      case 'shr': return u ? i.shr_u(a, b) : i.shr_s(a, b);
      case 'eq': return i.eq(a, b);
      case 'ne': return i.ne(a, b);
      case 'lt': return u ? i.lt_u(a, b) : i.lt_s(a, b);
      case 'le': return u ? i.le_u(a, b) : i.le_s(a, b);
      case 'gt': return u ? i.gt_u(a, b) : i.gt_s(a, b);
      case 'ge': return u ? i.ge_u(a, b) : i.ge_s(a, b);
      default: return this.fail(`${op} on ${t}`);
    }
  }

  private vectorBinary(op: BinaryOp, a: Ref, b: Ref, t: VectorType): Ref {
    const m = this.m;
    if (op === 'and') return m.v128.and(a, b);
    if (op === 'or') return m.v128.or(a, b);
    if (op === 'xor') return m.v128.xor(a, b);
    const u = isUnsigned(t);
    switch (t) {
      case 'f32x4': {
        const f = m.f32x4;
        switch (op) {
          case 'add': return f.add(a, b);
          case 'sub': return f.sub(a, b);
          case 'mul': return f.mul(a, b);
          case 'div': return f.div(a, b);
          case 'min': return f.min(a, b);
          case 'max': return f.max(a, b);
          case 'eq': return f.eq(a, b);
          case 'ne': return f.ne(a, b);
          case 'lt': return f.lt(a, b);
          case 'le': return f.le(a, b);
          case 'gt': return f.gt(a, b);
          case 'ge': return f.ge(a, b);
        }
        break;
      }
      case 'i32x4': {
        const v = m.i32x4;
        switch (op) {
          case 'add': return v.add(a, b);
          case 'sub': return v.sub(a, b);
          case 'mul': return v.mul(a, b);
          case 'min': return v.min_s(a, b);
          case 'max': return v.max_s(a, b);
          case 'shl': return v.shl(a, b);
          case 'shr': return v.shr_s(a, b);
          case 'shr_u': return v.shr_u(a, b);
          case 'eq': return v.eq(a, b);
          case 'ne': return v.ne(a, b);
          case 'lt': return v.lt_s(a, b);
          case 'le': return v.le_s(a, b);
          case 'gt': return v.gt_s(a, b);
          case 'ge': return v.ge_s(a, b);
        }
        break;
      }
      case 'i16x8': {
        const v = m.i16x8;
        switch (op) {
          case 'add': return v.add(a, b);
          case 'add_sat': return v.add_saturate_s(a, b);
          case 'sub': return v.sub(a, b);
          case 'mul': return v.mul(a, b);
          case 'min': return v.min_s(a, b);
          case 'max': return v.max_s(a, b);
          case 'shl': return v.shl(a, b);
          case 'shr': return v.shr_s(a, b);
          case 'shr_u': return v.shr_u(a, b);
          case 'eq': return v.eq(a, b);
          case 'ne': return v.ne(a, b);
          case 'lt': return v.lt_s(a, b);
          case 'le': return v.le_s(a, b);
          case 'gt': return v.gt_s(a, b);
          case 'ge': return v.ge_s(a, b);
        }
        break;
      }
      case 'i8x16':
      case 'u8x16': {
        const v = m.i8x16;
        switch (op) {
          case 'add': return v.add(a, b);
          case 'add_sat': return u ? v.add_saturate_u(a, b) : v.add_saturate_s(a, b);
          case 'sub': return v.sub(a, b);
          case 'min': return u ? v.min_u(a, b) : v.min_s(a, b);
          case 'max': return u ? v.max_u(a, b) : v.max_s(a, b);
          case 'shl': return v.shl(a, b);
          case 'shr': return u ? v.shr_u(a, b) : v.shr_s(a, b);
          case 'shr_u': return v.shr_u(a, b);
          case 'eq': return v.eq(a, b);
          case 'ne': return v.ne(a, b);
          case 'lt': return u ? v.lt_u(a, b) : v.lt_s(a, b);
          case 'le': return u ? v.le_u(a, b) : v.le_s(a, b);
          case 'gt': return u ? v.gt_u(a, b) : v.gt_s(a, b);
          case 'ge': return u ? v.ge_u(a, b) : v.ge_s(a, b);
        }
        break;
      }
    }
    return this.fail(`${op} on ${t}`);
  }

  private unary(op: UnaryOp, a: Expr): Ref {
    const m = this.m;
    const t = a.type;
    switch (op) {
      case 'exp': case 'log': case 'tanh': case 'erf': case 'sin': case 'cos': case 'sigmoid': {
        if (t !== 'f32' && t !== 'f32x4') this.fail(`${op} on ${t}`);
        return m.call(this.helpers.get(op, t), [this.expr(a)], wasmType(t));
      }
    }
    const x = this.expr(a);
    if (t === 'f32') {
      switch (op) {
        case 'neg': return m.f32.neg(x);
        case 'abs': return m.f32.abs(x);
        case 'sqrt': return m.f32.sqrt(x);
        case 'floor': return m.f32.floor(x);
        case 'ceil': return m.f32.ceil(x);
        case 'trunc': return m.f32.trunc(x);
        case 'nearest': return m.f32.nearest(x);
        default: return this.fail(`${op} on f32`);
      }
    }
    if (t === 'f32x4') {
      switch (op) {
        case 'neg': return m.f32x4.neg(x);
        case 'abs': return m.f32x4.abs(x);
        case 'sqrt': return m.f32x4.sqrt(x);
        case 'floor': return m.f32x4.floor(x);
        case 'ceil': return m.f32x4.ceil(x);
        case 'trunc': return m.f32x4.trunc(x);
        case 'nearest': return m.f32x4.nearest(x);
        default: return this.fail(`${op} on f32x4`);
      }
    }
    if (isVector(t)) {
      if (op === 'not') return m.v128.not(x);
      const neg = t === 'i32x4' ? m.i32x4.neg(x) : t === 'i16x8' ? m.i16x8.neg(x) : m.i8x16.neg(x);
      const abs = t === 'i32x4' ? m.i32x4.abs(x) : t === 'i16x8' ? m.i16x8.abs(x) : m.i8x16.abs(x);
      if (op === 'neg') return neg;
      if (op === 'abs' && !isUnsigned(t)) return abs;
      if (op === 'abs') return x;
      return this.fail(`${op} on ${t}`);
    }
    switch (op) {
      case 'neg': return m.i32.sub(m.i32.const(0), x);
      case 'not': return m.i32.xor(x, m.i32.const(-1));
      case 'abs': {
        if (isUnsigned(t)) return x;
        const tmp = this.temp('i32');
        const g = (): Ref => m.local.get(tmp, binaryen.i32);
        return m.block(null, [m.local.set(tmp, x), m.select(m.i32.lt_s(g(), m.i32.const(0)), m.i32.sub(m.i32.const(0), g()), g())], binaryen.i32);
      }
      default: return this.fail(`${op} on ${t}`);
    }
  }

  private cast(a: Expr, to: ValueType): Ref {
    const m = this.m;
    const from = a.type;
    const x = this.expr(a);
    if (from === to) return x;
    if (isVector(from) || isVector(to)) {
      if (from === 'f32x4' && to === 'i32x4') return m.i32x4.trunc_sat_f32x4_s(x);
      if (from === 'i32x4' && to === 'f32x4') return m.f32x4.convert_i32x4_s(x);
      if (isVector(from) && isVector(to) && !isFloat(from) && !isFloat(to) && laneCount(from) === laneCount(to)) return x;
      return this.fail(`cast ${from} → ${to}`);
    }
    if (isFloat(from) && isFloat(to)) {
      if (to === 'f16') return m.call(this.helpers.get('round_f16', 'f32'), [x], binaryen.f32);
      return x;
    }
    if (isFloat(from)) {
      const wide = isUnsigned(to) ? m.i32.trunc_u_sat.f32(x) : m.i32.trunc_s_sat.f32(x);
      return this.narrowInt(wide, to);
    }
    if (isFloat(to)) return isUnsigned(from) ? m.f32.convert_u.i32(x) : m.f32.convert_s.i32(x);
    return this.narrowInt(x, to);
  }

  /** Wraps an i32 to the range of a narrow integer type (two's complement, like a store would). */
  private narrowInt(x: Ref, to: ValueType): Ref {
    const m = this.m;
    switch (to) {
      case 'i8': return m.i32.extend8_s(x);
      case 'u8': return m.i32.and(x, m.i32.const(0xff));
      case 'i16': return m.i32.extend16_s(x);
      case 'u16': return m.i32.and(x, m.i32.const(0xffff));
      default: return x;
    }
  }

  private bitcast(a: Expr, to: ValueType): Ref {
    const m = this.m;
    const x = this.expr(a);
    const from = a.type;
    if (isVector(from) && isVector(to)) return x;
    if (from === 'f32' && !isFloat(to) && !isVector(to)) return m.i32.reinterpret(x);
    if (!isFloat(from) && !isVector(from) && to === 'f32') return m.f32.reinterpret(x);
    if (!isFloat(from) && !isFloat(to) && !isVector(from) && !isVector(to)) return x;
    return this.fail(`bitcast ${from} → ${to}`);
  }
}
