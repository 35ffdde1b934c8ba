/**
 * Progress of a tune on stderr: a cli-progress bar when stderr is a terminal, else one plain
 * line per op (logs and CI stay readable).
 */
import cliProgress from 'cli-progress';
import type { TuneProgress } from './tuner.js';

export function stderrProgress(stream: NodeJS.WriteStream = process.stderr): TuneProgress {
  if (stream.isTTY) {
    const bar = new cliProgress.SingleBar({
      stream, format: 'tuning |{bar}| {value}/{total} ops | {label}', hideCursor: true, clearOnComplete: true,
    }, cliProgress.Presets.shades_classic);
    return {
      start: (total) => bar.start(total, 0, { label: '' }),
      tick: (done, label) => bar.update(done, { label }),
      stop: () => bar.stop(),
    };
  }
  let total = 0;
  return {
    start: (n) => { total = n; },
    tick: (done, label) => { stream.write(`tune: ${done}/${total} ${label}\n`); },
    stop: () => undefined,
  };
}
