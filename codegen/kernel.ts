/**
 * The shared kernel form: a small, typed, structured program that every target prints or
 * builds from (WASM through binaryen, WGSL, C with NEON intrinsics, HLS C++). Kernels are
 * generated per op by templates (targets/<t>/kernels), specialised on what is static (dtypes,
 * ranks, attributes, tile sizes) and parameterised by scalars for what is not (dims, strides).
 *
 * Deliberately small: scalars and 128-bit vectors, loads/stores on typed buffers, structured
 * loops and ifs, and the handful of vector ops the low-bit kernels need (table lookup,
 * widening, pairwise add, dot). Anything target-specific (intrinsic names, pragmas,
 * workgroups) is the printer's business, guided by loop hints.
 */

/** Scalar element types a kernel computes with or reads from memory. */
export type ScalarType = 'f32' | 'i32' | 'u32' | 'i16' | 'u16' | 'i8' | 'u8' | 'f16';

/** 128-bit vector types (WASM v128, NEON q registers, WGSL vec4 / packed emulation). */
export type VectorType = 'f32x4' | 'i32x4' | 'i16x8' | 'i8x16' | 'u8x16';

export type ValueType = ScalarType | VectorType;

export function isVector(t: ValueType): t is VectorType {
  return t.includes('x');
}

export function laneType(t: VectorType): ScalarType {
  return ({ f32x4: 'f32', i32x4: 'i32', i16x8: 'i16', i8x16: 'i8', u8x16: 'u8' } as const)[t];
}

export function laneCount(t: VectorType): number {
  return ({ f32x4: 4, i32x4: 4, i16x8: 8, i8x16: 16, u8x16: 16 } as const)[t];
}

/** Bytes of one element of a buffer of this scalar type. */
export function byteSize(t: ScalarType): number {
  return ({ f32: 4, i32: 4, u32: 4, i16: 2, u16: 2, i8: 1, u8: 1, f16: 2 } as const)[t];
}

/** A kernel parameter: a typed buffer (pointer) or a scalar (dim, stride, constant). */
export type Param =
  | { kind: 'buffer'; name: string; elem: ScalarType; access: 'read' | 'write' | 'readwrite' }
  | { kind: 'scalar'; name: string; type: 'i32' | 'f32' };

export type BinaryOp =
  | 'add' | 'sub' | 'mul' | 'div' | 'rem' | 'min' | 'max'
  | 'and' | 'or' | 'xor' | 'shl' | 'shr'
  | 'eq' | 'ne' | 'lt' | 'le' | 'gt' | 'ge'
  /** Saturating adds for narrow integer vectors. */
  | 'add_sat'
  /** Logical right shift of integer vector lanes, whatever their signedness (i16x8.shr_u). */
  | 'shr_u';

export type UnaryOp =
  | 'neg' | 'abs' | 'sqrt' | 'floor' | 'ceil' | 'trunc' | 'nearest' | 'not'
  /** Transcendentals: targets with no native form expand them with codegen/mathlib.ts. */
  | 'exp' | 'log' | 'tanh' | 'erf' | 'sin' | 'cos' | 'sigmoid';

export type Expr =
  | { kind: 'const'; type: ValueType; value: number }
  | { kind: 'param'; name: string; type: ValueType }
  | { kind: 'var'; name: string; type: ValueType }
  /** Element `index` (in elements, not bytes) of a buffer; a vector type loads consecutive lanes. */
  | { kind: 'load'; buffer: string; index: Expr; type: ValueType }
  | { kind: 'binary'; op: BinaryOp; a: Expr; b: Expr; type: ValueType }
  | { kind: 'unary'; op: UnaryOp; a: Expr; type: ValueType }
  /** Numeric conversion (float→int truncates toward zero); vector casts convert lane-wise. */
  | { kind: 'cast'; a: Expr; type: ValueType }
  /** Reinterprets the bits (same width). */
  | { kind: 'bitcast'; a: Expr; type: ValueType }
  | { kind: 'select'; cond: Expr; a: Expr; b: Expr; type: ValueType }
  /** Broadcast a scalar to every lane. */
  | { kind: 'splat'; a: Expr; type: VectorType }
  | { kind: 'extract'; a: Expr; lane: number; type: ScalarType }
  /** Horizontal reduction of a vector's lanes to a scalar. */
  | { kind: 'reduce'; op: 'add' | 'max' | 'min'; a: Expr; type: ScalarType }
  /**
   * 16-entry byte table lookup: lane i = table[indices[i]] for indices < 16, else 0
   * (WASM i8x16.swizzle, NEON vqtbl1q_s8, x86 pshufb with masking).
   */
  | { kind: 'lookup16'; table: Expr; indices: Expr; type: 'i8x16' | 'u8x16' }
  /** Widen the low or high half of a narrow vector (i8x16 → i16x8, i16x8 → i32x4), signed or not. */
  | { kind: 'widen'; half: 'low' | 'high'; signed: boolean; a: Expr; type: VectorType }
  /** Pairwise add of adjacent lanes into lanes twice as wide (i8x16 → i16x8, i16x8 → i32x4). */
  | { kind: 'pairwise_add'; signed: boolean; a: Expr; type: VectorType }
  /** i16x8 · i16x8 → i32x4: products of adjacent lane pairs summed (WASM i32x4.dot_i16x8_s). */
  | { kind: 'dot_i16'; a: Expr; b: Expr; type: 'i32x4' }
  /**
   * i8x16 · i8x16 accumulated into i32x4, exactly NEON vdotq_s32: lane i = acc[i] +
   * Σ_{j<4} a[4i+j]·b[4i+j] (products and sums in i32, so −128·−128 pairs cannot overflow).
   */
  | { kind: 'dot_i8'; acc: Expr; a: Expr; b: Expr; type: 'i32x4' }
  /** Byte shuffle of two vectors by constant lane indices (0–15 from a, 16–31 from b). */
  | { kind: 'shuffle'; a: Expr; b: Expr; lanes: number[]; type: VectorType };

export type Stmt =
  | { kind: 'let'; name: string; type: ValueType; init: Expr; mutable: boolean }
  | { kind: 'assign'; name: string; value: Expr }
  | { kind: 'store'; buffer: string; index: Expr; value: Expr }
  | {
      kind: 'for';
      /** Loop variable, i32, visible in `body`. */
      name: string;
      start: Expr;
      end: Expr;
      step: number;
      body: Stmt[];
      /**
       * Hints for printers: `parallel` iterations are independent (WGSL maps them to
       * invocations, HLS may unroll/pipeline, threads may split them); `unroll` is a request.
       */
      hints?: { parallel?: boolean; unroll?: number; pipeline?: boolean };
    }
  | { kind: 'if'; cond: Expr; then: Stmt[]; else?: Stmt[] };

export interface Kernel {
  /** Unique within a bundle; becomes the exported symbol. */
  name: string;
  params: Param[];
  body: Stmt[];
}
