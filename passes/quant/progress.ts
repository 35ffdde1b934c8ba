/**
 * Progress of weight quantization on large models (minutes at 1B parameters). The pass calls
 * `reportQuantProgress`; a host that wants it shown (the CLI prints to stderr) installs a
 * sink once. Small models report nothing, so command output stays unchanged for them.
 */

export interface QuantProgress {
  /** Layers quantized so far, of `total`. */
  done: number;
  total: number;
  /** Float weight bytes quantized so far, of `totalBytes`. */
  bytes: number;
  totalBytes: number;
  layer: string;
  elapsedMs: number;
}

export type QuantProgressSink = (progress: QuantProgress) => void;

/** Below this many float weight bytes a pass reports no progress. */
export const PROGRESS_MIN_BYTES = 64 * 2 ** 20;

let installed: QuantProgressSink | undefined;

export function setQuantProgressSink(sink: QuantProgressSink | undefined): void {
  installed = sink;
}

export function quantProgressSink(): QuantProgressSink | undefined {
  return installed;
}

/** One line for a terminal or a log: layers, MiB, elapsed and the current layer. */
export function formatQuantProgress(p: QuantProgress): string {
  const mib = (n: number): string => (n / 2 ** 20).toFixed(0);
  return `quantize-weights: ${p.done}/${p.total} layers, ${mib(p.bytes)}/${mib(p.totalBytes)} MiB, ${(p.elapsedMs / 1000).toFixed(1)} s (${p.layer})`;
}

/** A sink writing one line at most every `intervalMs` (and the last one), for logs and terminals. */
export function lineProgressSink(write: (line: string) => void, intervalMs = 2000): QuantProgressSink {
  let last = -Infinity;
  return (p) => {
    if (p.done < p.total && p.elapsedMs - last < intervalMs) return;
    last = p.elapsedMs;
    write(formatQuantProgress(p));
  };
}
