/**
 * The one error type llmcc raises for bad input. The CLI prints it as
 * `llmcc: error: <message>, <where>` and exits 2; anything else is a bug.
 */
export class LlmccError extends Error {
  /** Where the problem is: a file, a node name, an op — whatever locates it for the user. */
  readonly where: string | undefined;

  constructor(message: string, where?: string) {
    super(oneLine(where ? `${message}, ${where}` : message));
    this.name = 'LlmccError';
    this.where = where;
  }
}

/**
 * Messages are one line: line breaks become spaces (as the CLI prints them) and other
 * control characters (e.g. inside names from a damaged file) are written as escapes.
 */
function oneLine(text: string): string {
  return text
    .replace(/\s*[\r\n]+\s*/g, ' ')
    // eslint-disable-next-line no-control-regex
    .replace(/[\u0000-\u001f\u007f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** Names a node for error messages: `node "name" (Op)`. */
export function describeNode(node: { name: string; op: string; domain: string }): string {
  const op = node.domain && node.domain !== 'ai.onnx' ? `${node.domain}.${node.op}` : node.op;
  return `node "${node.name}" (${op})`;
}
