/**
 * CumSum on wasm: running sums along the axis; `exclusive` shifts by one, `reverse` runs from
 * the end. The axis is an input tensor: the kernel reads it from the arena at run time (so a
 * constant and a fed axis work alike) and splits the input dims, passed as launch args, into
 * outer × length × inner. Floats accumulate in f32, integers in i32 (wrapping, as the arena
 * stores them).
 */
import { KernelBuilder, add, eq, i32, lt, mul, select, sub, type Expr } from '../../../codegen/builder.js';
import type { LaunchShapes, WasmKernelDef } from '../kernel-def.js';
import type { Node } from '../../../ir/graph.js';
import { checkAxis } from './ArgMax.js';
import { checkArity, checkElems, computeOf, elemOf, wrapInt } from './elementwise.js';
import { intAttr } from './nn-util.js';


export const cumSumKernel: WasmKernelDef = {
  domain: '',
  op: 'CumSum',
  check(ctx) {
    const input = ctx.inputs[0];
    if (!input || input.dtype === 'string' || input.dtype === 'bool') return `CumSum does not accept ${input?.dtype ?? 'unknown'} inputs`;
    const reason = checkArity(ctx, 2, 1) ?? checkElems(ctx);
    if (reason) return reason;
    if (!input.shape) return 'input rank is unknown';
    if (input.shape.length === 0) return 'CumSum needs an input of rank 1 or more';
    const axis = ctx.inputs[1];
    if (!axis || !elemOf(axis.dtype) || (axis.dtype !== 'i32' && axis.dtype !== 'i64')) return `the axis must be int32 or int64, got ${axis?.dtype ?? 'none'}`;
    if (axis.shape && axis.shape.reduce((a, b) => (typeof a === 'number' && typeof b === 'number' ? a * b : a), 1) !== 1) {
      return `the axis must be a scalar, got shape [${axis.shape.join(',')}]`;
    }
    const constant = ctx.constant(1);
    return constant ? checkAxis(constant.numbers()[0], input.shape.length) : undefined;
  },
  build(ctx) {
    const rank = ctx.inputs[0]!.shape!.length;
    const dtype = ctx.inputs[0]!.dtype;
    const exclusive = intAttr(ctx.node, 'exclusive', 0) === 1;
    const reverse = intAttr(ctx.node, 'reverse', 0) === 1;
    const k = new KernelBuilder(ctx.name);
    const input = k.buffer('in0', elemOf(dtype)!, 'read');
    const axisInput = k.buffer('in1', 'i32', 'read');
    const out = k.buffer('out0', elemOf(ctx.outputs[0].dtype)!, 'write');
    const dims = Array.from({ length: rank }, (_, d) => k.scalar(`dim${d}`));
    // An axis out of range was refused by the reference semantics; here it reads as no axis
    // (length 1), which keeps every access in bounds.
    const rawAxis = k.let('raw_axis', axisInput.load(0));
    const axis = k.let('axis', select(lt(rawAxis, 0), add(rawAxis, rank), rawAxis));
    let outerProduct: Expr = i32(1);
    let lengthValue: Expr = i32(1);
    let innerProduct: Expr = i32(1);
    dims.forEach((dim, d) => {
      outerProduct = mul(outerProduct, select(lt(i32(d), axis), dim, 1));
      lengthValue = select(eq(axis, d), dim, lengthValue);
      innerProduct = mul(innerProduct, select(lt(axis, d), dim, 1));
    });
    const outer = k.let('outer', outerProduct);
    const length = k.let('length', lengthValue);
    const inner = k.let('inner', innerProduct);
    const ct = computeOf(dtype);
    const zero: Expr = { kind: 'const', type: ct, value: 0 };
    k.loop('o', 0, outer, (o) => {
      const rowBase = k.let('row', mul(o, mul(length, inner)));
      k.loop('i', 0, inner, (i) => {
        const base = k.let('base', add(rowBase, i));
        const sum = k.mut('sum', zero);
        k.loop('s', 0, length, (s) => {
          const position = reverse ? sub(sub(length, 1), s) : s;
          const at = k.let('at', add(base, mul(position, inner)));
          // Read before writing: the output may share the input's buffer.
          const x = k.let('x', input.load(at));
          const next = k.let('next', ct === 'f32' ? add(sum, x) : wrapInt(add(sum, x), dtype));
          out.store(at, exclusive ? sum : next);
          k.set(sum, next);
        });
      });
    });
    return k.build();
  },
  args(_node: Node, shapes: LaunchShapes) {
    return [...(shapes.inputs[0] ?? [])];
  },
};
