import { add, mul } from '../../../codegen/builder.js';
import type { Node } from '../../../ir/graph.js';
import type { LaunchShapes, WasmKernelDef } from '../kernel-def.js';
import { checkArenaTypes, clampI, declareIO, rankOf, scalars, shapeIn, intAttr } from './nn-util.js';
import { emitRotary } from './rotary-util.js';


function layout(node: Node, shapes: LaunchShapes): number[] {
  const x = shapeIn(shapes, 0);
  let batch: number, heads: number, seq: number, headSize: number, strides: number[];
  if (x.length === 4) {
    [batch, heads, seq, headSize] = x;
    strides = [heads * seq * headSize, headSize, seq * headSize];
  } else {
    heads = intAttr(node, 'num_heads', 1);
    [batch, seq] = x;
    headSize = x[2] / heads;
    strides = [seq * x[2], x[2], headSize];
  }
  const rotaryDim = intAttr(node, 'rotary_embedding_dim', 0) || headSize;
  const cacheRows = shapeIn(shapes, 1)[0];
  return [batch, heads, seq, headSize, rotaryDim, rotaryDim / 2, ...strides, cacheRows];
}

/**
 * ai.onnx RotaryEmbedding (opset 23): X [B, H, S, D] or [B, S, H*D]; caches
 * [max_position, dim/2] indexed by position_ids [B, S], or [B, S, dim/2] without them.
 * Position ids are clamped into the cache (a kernel cannot report the reference's error).
 */
export const rotaryEmbeddingKernel: WasmKernelDef = {
  domain: '',
  op: 'RotaryEmbedding',
  check(ctx) {
    const rank = rankOf(ctx.inputs[0]);
    if (rank !== 3 && rank !== 4) return 'X must have a known rank of 3 or 4';
    if (rank === 3 && intAttr(ctx.node, 'num_heads', 0) <= 0) return 'num_heads is required for a 3-D input';
    return checkArenaTypes(ctx);
  },
  build(ctx) {
    const interleaved = intAttr(ctx.node, 'interleaved', 0) !== 0;
    const { k, inputs, outputs } = declareIO(ctx);
    const [batch, heads, seq, headSize, rotaryDim, half, xb, xs, xh, cacheRows] = scalars(k, 'p', 10);
    const [x, cos, sin, positions] = inputs;
    k.loop('b', 0, batch, (b) => k.loop('s', 0, seq, (s) => {
      const token = k.let('token', add(mul(b, seq), s));
      const row = positions ? k.let('row', clampI(positions.load(token), 0, add(cacheRows, -1))) : token;
      const cacheBase = k.let('cache_base', mul(row, half));
      k.loop('h', 0, heads, (h) => {
        const base = k.let('base', add(add(mul(b, xb), mul(s, xs)), mul(h, xh)));
        emitRotary(k, { src: x!, srcBase: base, dst: outputs[0]!, dstBase: base, cos: cos!, sin: sin!, cacheBase, half, rotaryDim, headSize, interleaved });
      });
    }), { parallel: true });
    return k.build();
  },
  args: layout,
};
