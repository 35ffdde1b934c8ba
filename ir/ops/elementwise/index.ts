import type { OpDef } from '../types.js';
import { unaryOps } from './unary.js';
import { Gelu } from './Gelu.js';
import { Swish } from './Swish.js';
import { arithmeticOps } from './arithmetic.js';
import { Pow } from './Pow.js';
import { Mod } from './Mod.js';
import { variadicOps } from './variadic.js';
import { compareOps } from './compare.js';
import { logicalOps } from './logical.js';
import { Cast } from './Cast.js';
import { CastLike } from './CastLike.js';
import { Clip } from './Clip.js';
import { softmaxOps } from './Softmax.js';
import { reduceOps } from './reduce.js';
import { argOps } from './ArgMax.js';
import { CumSum } from './CumSum.js';
import { TopK } from './TopK.js';

/** The elementwise group's ops; each lives in its own file in this folder. */
export const elementwiseOps: OpDef[] = [
  ...unaryOps,
  Gelu,
  Swish,
  ...arithmeticOps,
  Pow,
  Mod,
  ...variadicOps,
  ...compareOps,
  ...logicalOps,
  Cast,
  CastLike,
  Clip,
  ...softmaxOps,
  ...reduceOps,
  ...argOps,
  CumSum,
  TopK,
];
