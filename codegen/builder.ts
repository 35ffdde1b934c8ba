/**
 * An ergonomic DSL for constructing kernels in the shared form (codegen/kernel.ts).
 *
 *   const k = new KernelBuilder('relu_f32');
 *   const x = k.buffer('x', 'f32', 'read');
 *   const y = k.buffer('y', 'f32', 'write');
 *   const n = k.scalar('n');
 *   k.stripLoop('i', 0, n, 4,
 *     (i) => y.storeVec(i, max(x.loadVec(i, 'f32x4'), 0)),
 *     (i) => y.store(i, max(x.load(i), 0)));
 *   const kernel = k.build();
 *
 * Expression helpers are free functions over plain `Expr` objects; a bare number operand takes
 * the type of the other operand (a vector type means "this value in every lane").
 *
 * Typing conventions of the kernel form (the wasm builder implements exactly these):
 * - Scalar i8/u8/i16/u16 values compute as i32 (no wrapping); only loads/stores narrow. f16
 *   is a storage type only: loading an f16 buffer yields an f32 value, storing f32 into an f16
 *   buffer rounds to nearest even.
 * - Signedness of div/rem/shr/comparisons/widening comes from the operand type (u32/u8x16 are
 *   unsigned, everything else signed).
 * - Comparisons yield `i32` 0/1 for scalars and an all-ones/all-zeros lane mask for vectors
 *   (f32x4 → i32x4, other vectors keep their type). `select` takes an i32 condition for scalars
 *   and a lane mask of the same width for vectors.
 * - float → int `cast` truncates toward zero and saturates (NaN → 0) instead of trapping.
 * - `for` loops run while `var < end` (checked before the first iteration), `step` > 0.
 */
import {
  isVector,
  laneType,
  laneCount,
  type BinaryOp,
  type Expr,
  type Kernel,
  type Param,
  type ScalarType,
  type Stmt,
  type UnaryOp,
  type ValueType,
  type VectorType,
} from './kernel.js';

export type ExprLike = Expr | number;
export type { Expr, Stmt, Kernel, Param, ScalarType, ValueType, VectorType } from './kernel.js';

// ---------------------------------------------------------------------------------------------
// Constants and coercion

export function constant(type: ValueType, value: number): Expr {
  return { kind: 'const', type, value };
}
export const f32 = (value: number): Expr => constant('f32', value);
export const i32 = (value: number): Expr => constant('i32', value);
export const u32 = (value: number): Expr => constant('u32', value);

/** Turns a bare number into a constant of `type`; leaves expressions alone. */
export function lift(x: ExprLike, type: ValueType): Expr {
  return typeof x === 'number' ? constant(type, x) : x;
}

function typeOfPair(a: ExprLike, b: ExprLike, what: string): ValueType {
  if (typeof a !== 'number') return a.type;
  if (typeof b !== 'number') return b.type;
  throw new Error(`kernel builder: ${what} needs at least one typed operand`);
}

function sameType(op: string, a: Expr, b: Expr): void {
  if (a.type !== b.type) throw new Error(`kernel builder: ${op} on ${a.type} and ${b.type}`);
}

/** The type of a comparison result for operands of type `t`. */
export function maskType(t: ValueType): ValueType {
  if (!isVector(t)) return 'i32';
  return t === 'f32x4' ? 'i32x4' : t;
}

// ---------------------------------------------------------------------------------------------
// Arithmetic

export function binary(op: BinaryOp, a: ExprLike, b: ExprLike): Expr {
  const type = typeOfPair(a, b, op);
  const ea = lift(a, type);
  const eb = lift(b, type);
  // Shift amounts of vector shifts are scalars.
  if ((op === 'shl' || op === 'shr' || op === 'shr_u') && isVector(ea.type)) {
    const amount = lift(b, 'i32');
    return { kind: 'binary', op, a: ea, b: amount, type: ea.type };
  }
  sameType(op, ea, eb);
  const isCompare = op === 'eq' || op === 'ne' || op === 'lt' || op === 'le' || op === 'gt' || op === 'ge';
  return { kind: 'binary', op, a: ea, b: eb, type: isCompare ? maskType(type) : type };
}

export const add = (a: ExprLike, b: ExprLike): Expr => binary('add', a, b);
export const sub = (a: ExprLike, b: ExprLike): Expr => binary('sub', a, b);
export const mul = (a: ExprLike, b: ExprLike): Expr => binary('mul', a, b);
export const div = (a: ExprLike, b: ExprLike): Expr => binary('div', a, b);
export const rem = (a: ExprLike, b: ExprLike): Expr => binary('rem', a, b);
export const min = (a: ExprLike, b: ExprLike): Expr => binary('min', a, b);
export const max = (a: ExprLike, b: ExprLike): Expr => binary('max', a, b);
export const and = (a: ExprLike, b: ExprLike): Expr => binary('and', a, b);
export const or = (a: ExprLike, b: ExprLike): Expr => binary('or', a, b);
export const xor = (a: ExprLike, b: ExprLike): Expr => binary('xor', a, b);
export const shl = (a: ExprLike, b: ExprLike): Expr => binary('shl', a, b);
export const shr = (a: ExprLike, b: ExprLike): Expr => binary('shr', a, b);
/** Logical right shift of integer vector lanes (signed lane types too). */
export const shrU = (a: ExprLike, b: ExprLike): Expr => binary('shr_u', a, b);
export const addSat = (a: ExprLike, b: ExprLike): Expr => binary('add_sat', a, b);
export const eq = (a: ExprLike, b: ExprLike): Expr => binary('eq', a, b);
export const ne = (a: ExprLike, b: ExprLike): Expr => binary('ne', a, b);
export const lt = (a: ExprLike, b: ExprLike): Expr => binary('lt', a, b);
export const le = (a: ExprLike, b: ExprLike): Expr => binary('le', a, b);
export const gt = (a: ExprLike, b: ExprLike): Expr => binary('gt', a, b);
export const ge = (a: ExprLike, b: ExprLike): Expr => binary('ge', a, b);

/** Sum of several terms (left to right); numbers take the first typed operand's type. */
export function sum(...terms: ExprLike[]): Expr {
  const typed = terms.find((t): t is Expr => typeof t !== 'number');
  if (!typed) throw new Error('kernel builder: sum needs a typed term');
  return terms.map((t) => lift(t, typed.type)).reduce((acc, t) => add(acc, t));
}

export function unary(op: UnaryOp, a: Expr): Expr {
  return { kind: 'unary', op, a, type: a.type };
}
export const neg = (a: Expr): Expr => unary('neg', a);
export const abs = (a: Expr): Expr => unary('abs', a);
export const sqrt = (a: Expr): Expr => unary('sqrt', a);
export const floor = (a: Expr): Expr => unary('floor', a);
export const ceil = (a: Expr): Expr => unary('ceil', a);
export const trunc = (a: Expr): Expr => unary('trunc', a);
export const nearest = (a: Expr): Expr => unary('nearest', a);
export const not = (a: Expr): Expr => unary('not', a);
export const exp = (a: Expr): Expr => unary('exp', a);
export const log = (a: Expr): Expr => unary('log', a);
export const tanh = (a: Expr): Expr => unary('tanh', a);
export const erf = (a: Expr): Expr => unary('erf', a);
export const sin = (a: Expr): Expr => unary('sin', a);
export const cos = (a: Expr): Expr => unary('cos', a);
export const sigmoid = (a: Expr): Expr => unary('sigmoid', a);

export function cast(a: Expr, type: ValueType): Expr {
  return a.type === type ? a : { kind: 'cast', a, type };
}
export function bitcast(a: Expr, type: ValueType): Expr {
  return a.type === type ? a : { kind: 'bitcast', a, type };
}

/** `cond ? a : b`; see the header for the condition's type. */
export function select(cond: Expr, a: ExprLike, b: ExprLike): Expr {
  const type = typeOfPair(a, b, 'select');
  const ea = lift(a, type);
  const eb = lift(b, type);
  sameType('select', ea, eb);
  return { kind: 'select', cond, a: ea, b: eb, type };
}

export function splat(a: ExprLike, type: VectorType): Expr {
  return { kind: 'splat', a: lift(a, vectorScalarType(type)), type };
}
export function extract(a: Expr, lane: number): Expr {
  if (!isVector(a.type)) throw new Error(`kernel builder: extract from scalar ${a.type}`);
  return { kind: 'extract', a, lane, type: computeType(laneType(a.type)) };
}
/** Horizontal add/max/min of all lanes. */
export function reduce(op: 'add' | 'max' | 'min', a: Expr): Expr {
  if (!isVector(a.type)) throw new Error(`kernel builder: reduce of scalar ${a.type}`);
  return { kind: 'reduce', op, a, type: computeType(laneType(a.type)) };
}
export function lookup16(table: Expr, indices: Expr, type: 'i8x16' | 'u8x16' = 'i8x16'): Expr {
  return { kind: 'lookup16', table, indices, type };
}
/** Widens a half: i8x16/u8x16 → i16x8, i16x8 → i32x4. */
export function widen(half: 'low' | 'high', signed: boolean, a: Expr): Expr {
  return { kind: 'widen', half, signed, a, type: widerType(a.type) };
}
export function pairwiseAdd(signed: boolean, a: Expr): Expr {
  return { kind: 'pairwise_add', signed, a, type: widerType(a.type) };
}
export function dotI16(a: Expr, b: Expr): Expr {
  return { kind: 'dot_i16', a, b, type: 'i32x4' };
}
/** `acc` (i32x4) plus the sum of each 4 adjacent byte products of a and b (i8x16): NEON vdotq_s32. */
export function dotI8(acc: Expr, a: Expr, b: Expr): Expr {
  if (acc.type !== 'i32x4' || a.type !== 'i8x16' || b.type !== 'i8x16') {
    throw new Error(`kernel builder: dotI8 needs i32x4, i8x16, i8x16, got ${acc.type}, ${a.type}, ${b.type}`);
  }
  return { kind: 'dot_i8', acc, a, b, type: 'i32x4' };
}
export function shuffle(a: Expr, b: Expr, lanes: number[]): Expr {
  if (lanes.length !== 16) throw new Error('kernel builder: shuffle needs 16 byte lanes');
  return { kind: 'shuffle', a, b, lanes, type: a.type as VectorType };
}

function widerType(t: ValueType): VectorType {
  if (t === 'i8x16' || t === 'u8x16') return 'i16x8';
  if (t === 'i16x8') return 'i32x4';
  throw new Error(`kernel builder: cannot widen ${t}`);
}

/** The scalar type a lane value computes as (narrow integers compute as i32). */
export function computeType(t: ScalarType): ScalarType {
  if (t === 'i8' || t === 'u8' || t === 'i16' || t === 'u16') return 'i32';
  if (t === 'f16') return 'f32';
  return t;
}

function vectorScalarType(t: VectorType): ScalarType {
  return computeType(laneType(t));
}

export { laneCount, laneType, isVector };

// ---------------------------------------------------------------------------------------------
// Buffers

/** A buffer parameter; loads are expressions, stores append to the builder's current block. */
export class BufferRef {
  constructor(
    private readonly builder: KernelBuilder,
    readonly name: string,
    readonly elem: ScalarType,
  ) {}

  /** Scalar element `index`; narrow integers load as i32, f16 as f32. */
  load(index: ExprLike, type: ValueType = computeType(this.elem)): Expr {
    return { kind: 'load', buffer: this.name, index: lift(index, 'i32'), type };
  }
  /** Consecutive lanes starting at element `index`. */
  loadVec(index: ExprLike, type: VectorType): Expr {
    return { kind: 'load', buffer: this.name, index: lift(index, 'i32'), type };
  }
  store(index: ExprLike, value: ExprLike): void {
    this.builder.store(this, index, value);
  }
  storeVec(index: ExprLike, value: Expr): void {
    this.builder.store(this, index, value);
  }
}

// ---------------------------------------------------------------------------------------------
// The builder

export interface LoopOptions {
  step?: number;
  parallel?: boolean;
  unroll?: number;
  pipeline?: boolean;
}

export class KernelBuilder {
  private readonly params: Param[] = [];
  private readonly blocks: Stmt[][] = [[]];
  private readonly usedNames = new Set<string>();

  constructor(readonly name: string) {}

  /** A name not used yet in this kernel (locals and loop variables share one namespace). */
  fresh(base: string): string {
    let name = base;
    for (let i = 1; this.usedNames.has(name); i++) name = `${base}_${i}`;
    this.usedNames.add(name);
    return name;
  }

  buffer(name: string, elem: ScalarType, access: 'read' | 'write' | 'readwrite' = 'read'): BufferRef {
    this.claimParamName(name);
    this.params.push({ kind: 'buffer', name, elem, access });
    return new BufferRef(this, name, elem);
  }

  scalar(name: string, type: 'i32' | 'f32' = 'i32'): Expr {
    this.claimParamName(name);
    this.params.push({ kind: 'scalar', name, type });
    return { kind: 'param', name, type };
  }

  /** An immutable local. */
  let(name: string, init: ExprLike, type?: ValueType): Expr {
    return this.declare(name, init, type, false);
  }

  /** A mutable local; update it with `set`. */
  mut(name: string, init: ExprLike, type?: ValueType): Expr {
    return this.declare(name, init, type, true);
  }

  set(target: Expr, value: ExprLike): void {
    if (target.kind !== 'var') throw new Error('kernel builder: set needs a variable');
    const v = lift(value, target.type);
    sameType(`set ${target.name}`, target, v);
    this.emit({ kind: 'assign', name: target.name, value: v });
  }

  store(buffer: BufferRef | string, index: ExprLike, value: ExprLike): void {
    const name = typeof buffer === 'string' ? buffer : buffer.name;
    const elem = this.bufferElem(name);
    this.emit({ kind: 'store', buffer: name, index: lift(index, 'i32'), value: lift(value, computeType(elem)) });
  }

  /** `for (name = start; name < end; name += step) body(name)`. */
  loop(name: string, start: ExprLike, end: ExprLike, body: (i: Expr) => void, options: LoopOptions = {}): void {
    const varName = this.fresh(name);
    const i: Expr = { kind: 'var', name: varName, type: 'i32' };
    const stmts = this.collect(() => body(i));
    const { step = 1, ...hintFields } = options;
    if (!(step > 0) || !Number.isInteger(step)) throw new Error(`kernel builder: loop step ${step}`);
    const hints = Object.keys(hintFields).length > 0 ? hintFields : undefined;
    this.emit({
      kind: 'for',
      name: varName,
      start: lift(start, 'i32'),
      end: lift(end, 'i32'),
      step,
      body: stmts,
      ...(hints ? { hints } : {}),
    });
  }

  /**
   * A loop over [start, end) in strips of `width` (vectorBody gets the strip's first index),
   * then a scalar tail for the remainder.
   */
  stripLoop(
    name: string,
    start: ExprLike,
    end: ExprLike,
    width: number,
    vectorBody: (i: Expr) => void,
    scalarBody: (i: Expr) => void,
    options: Omit<LoopOptions, 'step'> = {},
  ): void {
    const s = this.let(`${name}_start`, lift(start, 'i32'));
    const e = this.let(`${name}_end`, lift(end, 'i32'));
    const count = sub(e, s);
    const vectorEnd = this.let(`${name}_vend`, add(s, sub(count, rem(count, width))));
    this.loop(name, s, vectorEnd, vectorBody, { ...options, step: width });
    this.loop(`${name}_tail`, vectorEnd, e, scalarBody);
  }

  if(cond: Expr, then: () => void, otherwise?: () => void): void {
    const thenStmts = this.collect(then);
    const elseStmts = otherwise ? this.collect(otherwise) : undefined;
    this.emit({ kind: 'if', cond, then: thenStmts, ...(elseStmts ? { else: elseStmts } : {}) });
  }

  /** Appends a raw statement (for forms the helpers do not cover). */
  emit(stmt: Stmt): void {
    this.blocks[this.blocks.length - 1].push(stmt);
  }

  build(): Kernel {
    if (this.blocks.length !== 1) throw new Error('kernel builder: build() inside a block');
    return { name: this.name, params: [...this.params], body: this.blocks[0] };
  }

  private declare(name: string, init: ExprLike, type: ValueType | undefined, mutable: boolean): Expr {
    const value = lift(init, type ?? (typeof init === 'number' ? 'i32' : init.type));
    if (type && value.type !== type) throw new Error(`kernel builder: ${name} is ${type}, init is ${value.type}`);
    const varName = this.fresh(name);
    this.emit({ kind: 'let', name: varName, type: value.type, init: value, mutable });
    return { kind: 'var', name: varName, type: value.type };
  }

  private collect(fill: () => void): Stmt[] {
    this.blocks.push([]);
    try {
      fill();
    } catch (error) {
      // Pop so a caught exception leaves the builder consistent.
      this.blocks.pop();
      throw error;
    }
    return this.blocks.pop() as Stmt[];
  }

  private claimParamName(name: string): void {
    if (this.usedNames.has(name)) throw new Error(`kernel builder: duplicate name ${name}`);
    this.usedNames.add(name);
  }

  private bufferElem(name: string): ScalarType {
    const p = this.params.find((q) => q.name === name);
    if (!p || p.kind !== 'buffer') throw new Error(`kernel builder: no buffer ${name}`);
    return p.elem;
  }
}
