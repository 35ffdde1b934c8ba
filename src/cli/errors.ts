import { LlmccError } from '../../ir/errors.js';

/** Exit codes shared by every command. */
export const EXIT_OK = 0;
export const EXIT_MISMATCH = 1;
export const EXIT_INVALID = 2;

/** Prints an error the way every llmcc command does: one line, stack only with --verbose. */
export function reportError(error: unknown, verbose: boolean): number {
  const message = error instanceof LlmccError
    ? error.message
    : `internal error: ${error instanceof Error ? error.message : String(error)}`;
  process.stderr.write(`llmcc: error: ${message.replace(/\s*\n\s*/g, ' ')}\n`);
  if (verbose && error instanceof Error && error.stack) process.stderr.write(`${error.stack}\n`);
  return EXIT_INVALID;
}

/** `--filter <regex>` of conformance and diff: the pattern, or a one-line error when it does not compile. */
export function parseFilter(pattern: string | undefined): RegExp | undefined {
  if (pattern === undefined) return undefined;
  try {
    return new RegExp(pattern);
  } catch {
    throw new LlmccError(`--filter is not a valid regular expression: ${pattern}`);
  }
}
