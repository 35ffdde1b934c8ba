import type { OpDef } from '../types.js';
import { Concat } from './Concat.js';
import { Constant } from './Constant.js';
import { ConstantOfShape } from './ConstantOfShape.js';
import { Einsum } from './Einsum.js';
import { Expand } from './Expand.js';
import { Flatten } from './Flatten.js';
import { Gather } from './Gather.js';
import { GatherElements } from './GatherElements.js';
import { GatherND } from './GatherND.js';
import { Identity } from './Identity.js';
import { Loop } from './Loop.js';
import { Pad } from './Pad.js';
import { Range } from './Range.js';
import { Reshape } from './Reshape.js';
import { ScatterElements } from './ScatterElements.js';
import { ScatterND } from './ScatterND.js';
import { Shape } from './Shape.js';
import { Size } from './Size.js';
import { Slice } from './Slice.js';
import { Split } from './Split.js';
import { Squeeze } from './Squeeze.js';
import { TensorScatter } from './TensorScatter.js';
import { Tile } from './Tile.js';
import { Transpose } from './Transpose.js';
import { Trilu } from './Trilu.js';
import { Unsqueeze } from './Unsqueeze.js';
import { Where } from './Where.js';

/** The shape group's ops: shapes, indexing, data movement and control flow; one file per op. */
export const shapeOps: OpDef[] = [
  Identity, Constant, ConstantOfShape, Shape, Size, Reshape, Flatten, Squeeze, Unsqueeze, Transpose,
  Concat, Split, Slice, Gather, GatherElements, GatherND, ScatterND, ScatterElements, Expand, Tile,
  Pad, Range, Trilu, Where, Einsum, TensorScatter, Loop,
];
