import type { Model } from '../ir/graph.js';
import type { Tensor } from '../ir/tensor.js';

/** A prepared model on one target: feeds in, outputs out (by graph output name). */
export interface Session {
  readonly inputNames: string[];
  readonly outputNames: string[];
  run(feeds: ReadonlyMap<string, Tensor>): Promise<Map<string, Tensor>>;
}

/** What every target offers the CLI, the conformance runner and the differential tools. */
export interface Backend {
  readonly name: string;
  readonly description: string;
  /** Whether this target can execute an op; drives `inspect`'s support table and UNSUPPORTED. */
  supports(domain: string, op: string): boolean;
  /**
   * Runs through an external toolchain (a C compiler and an emulator): seconds per model, so
   * fuzzing and `llmcc diff` include it only when named with `--targets`.
   */
  readonly external?: boolean;
  /** Verifies, lowers and loads a model; throws LlmccError for anything it cannot run. */
  prepare(model: Model): Promise<Session>;
}
