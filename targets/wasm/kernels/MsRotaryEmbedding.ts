import { add, eq, mul, select } from '../../../codegen/builder.js';
import type { Node } from '../../../ir/graph.js';
import type { LaunchShapes, WasmKernelDef } from '../kernel-def.js';
import { checkArenaTypes, clampI, declareIO, product, rankOf, scalars, shapeIn, intAttr } from './nn-util.js';
import { emitRotary } from './rotary-util.js';


/** Position modes: rows b*S+s of a 3-D cache, p0 + s from one position id, or ids (B, S). */
const FROM_CACHE = 0, FROM_OFFSET = 1, PER_TOKEN = 2;

function layout(node: Node, shapes: LaunchShapes): number[] {
  const x = shapeIn(shapes, 0);
  const cos = shapeIn(shapes, 2);
  const positions = shapes.inputs[1];
  const transposed = x.length === 4;
  const batch = x[0];
  const seq = transposed ? x[2] : x[1];
  const hidden = transposed ? x[1] * x[3] : x[2];
  const numHeads = intAttr(node, 'num_heads', 0);
  const rotaryAttr = intAttr(node, 'rotary_embedding_dim', 0);
  const cacheWidth = cos[cos.length - 1];
  const headSize = transposed ? x[3] : rotaryAttr === 0 && numHeads <= 0 ? cacheWidth * 2 : hidden / numHeads;
  const rotaryDim = rotaryAttr > 0 ? rotaryAttr : headSize;
  const heads = transposed ? x[1] : hidden / headSize;
  const strides = transposed ? [heads * seq * headSize, headSize, seq * headSize] : [seq * hidden, hidden, headSize];
  const mode = !positions ? FROM_CACHE : product(positions) === 1 ? FROM_OFFSET : PER_TOKEN;
  const cacheRows = cos.length === 2 ? cos[0] : batch * seq;
  return [batch, heads, seq, headSize, rotaryDim, rotaryDim / 2, ...strides, cacheRows, mode];
}

/**
 * com.microsoft RotaryEmbedding: input (B, S, hidden) or (B, N, S, H); position_ids (B, S)
 * or one element p (positions p, p+1, …); caches (max_position, dim/2), or (B, S, dim/2)
 * without position ids. Rows are clamped into the cache.
 */
export const msRotaryEmbeddingKernel: WasmKernelDef = {
  domain: 'com.microsoft',
  op: 'RotaryEmbedding',
  check(ctx) {
    const rank = rankOf(ctx.inputs[0]);
    if (rank !== 3 && rank !== 4) return 'input must have a known rank of 3 or 4';
    if (intAttr(ctx.node, 'is_packed_batching', 0) !== 0) return 'is_packed_batching=1 is not supported';
    if (intAttr(ctx.node, 'rotary_embedding_dim', 0) > 0 && intAttr(ctx.node, 'num_heads', 0) <= 0) return 'num_heads must be given with rotary_embedding_dim';
    return checkArenaTypes(ctx);
  },
  build(ctx) {
    const interleaved = intAttr(ctx.node, 'interleaved', 0) !== 0;
    const { k, inputs, outputs } = declareIO(ctx);
    const [batch, heads, seq, headSize, rotaryDim, half, xb, xs, xh, cacheRows, mode] = scalars(k, 'p', 11);
    const [x, positions, cos, sin] = inputs;
    k.loop('b', 0, batch, (b) => k.loop('s', 0, seq, (s) => {
      const token = k.let('token', add(mul(b, seq), s));
      let row = token;
      if (positions) {
        const perToken = k.let('per_token', eq(mode, PER_TOKEN));
        const id = k.let('id', positions.load(select(perToken, token, 0)));
        row = k.let('row', select(perToken, id, add(id, s)));
      }
      const cacheBase = k.let('cache_base', mul(clampI(row, 0, add(cacheRows, -1)), half));
      k.loop('h', 0, heads, (h) => {
        const base = k.let('base', add(add(mul(b, xb), mul(s, xs)), mul(h, xh)));
        emitRotary(k, { src: x!, srcBase: base, dst: outputs[0]!, dstBase: base, cos: cos!, sin: sin!, cacheBase, half, rotaryDim, headSize, interleaved });
      });
    }), { parallel: true });
    return k.build();
  },
  args: layout,
};
