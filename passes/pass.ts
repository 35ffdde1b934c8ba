import type { Model } from '../ir/graph.js';

/** What a pass reports: whether it changed the model and named counts (`--stats`). */
export interface PassResult {
  changed: boolean;
  stats: Record<string, number>;
}

/** One named transformation of the IR; each lives in its own file with its own tests. */
export interface Pass<Options = void> {
  readonly name: string;
  run(model: Model, options: Options): PassResult;
}
