import type { DType } from '../../dtype.js';
import { Tensor } from '../../tensor.js';
import { broadcastIndex, broadcastShapes, shapesEqual } from './shape.js';

/** Applies f over broadcast inputs; the result is converted to `dtype`. */
export function mapBroadcast(
  inputs: readonly Tensor[],
  dtype: DType,
  f: (args: number[]) => number,
): Tensor {
  const outShape = broadcastShapes(...inputs.map((t) => t.shape)) as number[];
  const size = outShape.reduce((a, b) => a * b, 1);
  const views = inputs.map((t) => t.numbers());
  const maps = inputs.map((t) => (shapesEqual(t.shape, outShape) ? undefined : broadcastIndex(outShape, t.shape)));
  const values = new Float64Array(size);
  const args = new Array<number>(inputs.length);
  for (let i = 0; i < size; i++) {
    for (let k = 0; k < inputs.length; k++) {
      const m = maps[k];
      args[k] = views[k][m ? m[i] : i];
    }
    values[i] = f(args);
  }
  return Tensor.fromNumbers(dtype, outShape, values);
}

export function mapUnary(input: Tensor, dtype: DType, f: (x: number) => number): Tensor {
  const src = input.numbers();
  const values = new Float64Array(src.length);
  for (let i = 0; i < src.length; i++) values[i] = f(src[i]);
  return Tensor.fromNumbers(dtype, input.shape, values);
}
