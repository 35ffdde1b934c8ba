import type { OpDef } from '../types.js';
import { attention } from './Attention.js';
import { embedLayerNormalization } from './EmbedLayerNormalization.js';
import { fastGelu } from './FastGelu.js';
import { groupQueryAttention } from './GroupQueryAttention.js';
import { matMulNBits } from './MatMulNBits.js';
import { multiHeadAttention } from './MultiHeadAttention.js';
import { rotaryEmbedding } from './RotaryEmbedding.js';
import { simplifiedLayerNormalization, simplifiedLayerNormalizationMs } from './SimplifiedLayerNormalization.js';
import { skipLayerNormalization, skipSimplifiedLayerNormalization } from './SkipLayerNormalization.js';

/**
 * The microsoft group's ops; each lives in its own file in this folder. They follow ONNX
 * Runtime's CPU kernels (contrib ops). SimplifiedLayerNormalization is registered in the
 * ai.onnx domain too, where ORT (and the GenAI model builder) puts it.
 */
export const microsoftOps: OpDef[] = [
  attention,
  embedLayerNormalization,
  fastGelu,
  groupQueryAttention,
  matMulNBits,
  multiHeadAttention,
  rotaryEmbedding,
  simplifiedLayerNormalization,
  simplifiedLayerNormalizationMs,
  skipLayerNormalization,
  skipSimplifiedLayerNormalization,
];
