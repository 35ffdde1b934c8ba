import type { ModelDiff, NodeDiff, TargetDiff } from './run.js';
import { describeValue, firstDivergence } from './run.js';

/** The largest disagreement of one op type on one target, over every value it produced. */
export interface OpRow {
  op: string;
  target: string;
  values: number;
  /** Values beyond tolerance. */
  beyond: number;
  maxAbs: number;
  maxRel: number;
  maxUlp: number;
  tolUse: number;
  /** The value with the largest tolerance use, and the model it is in. */
  worst: NodeDiff;
  worstModel: string;
}

function opName(v: NodeDiff): string {
  return v.domain && v.domain !== 'ai.onnx' ? `${v.domain}.${v.op}` : v.op;
}

/** Groups every compared value by (op type, target), keeping the maxima and the worst node. */
export function rowsByOp(diffs: readonly ModelDiff[]): OpRow[] {
  const rows = new Map<string, OpRow>();
  for (const model of diffs) {
    for (const target of model.targets) {
      for (const v of target.values) {
        const key = `${opName(v)}\0${target.target}`;
        let row = rows.get(key);
        if (!row) {
          row = { op: opName(v), target: target.target, values: 0, beyond: 0, maxAbs: 0, maxRel: 0, maxUlp: 0, tolUse: -1, worst: v, worstModel: model.name };
          rows.set(key, row);
        }
        row.values++;
        if (v.diff.tolUse > 1) row.beyond++;
        row.maxAbs = Math.max(row.maxAbs, v.diff.maxAbs);
        row.maxRel = Math.max(row.maxRel, v.diff.maxRel);
        row.maxUlp = Math.max(row.maxUlp, v.diff.maxUlp);
        if (v.diff.tolUse > row.tolUse) {
          row.tolUse = v.diff.tolUse;
          row.worst = v;
          row.worstModel = model.name;
        }
      }
    }
  }
  return [...rows.values()].sort((a, b) => b.tolUse - a.tolUse || a.op.localeCompare(b.op) || a.target.localeCompare(b.target));
}

function num(x: number): string {
  if (x === 0) return '0';
  if (!Number.isFinite(x)) return String(x);
  return Math.abs(x) >= 1e4 || Math.abs(x) < 1e-3 ? x.toExponential(2) : x.toPrecision(3);
}

function table(header: string[], body: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((r) => r[i].length)));
  const line = (cells: string[]): string => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]))).join('  ');
  return [line(header), ...body.map(line)].join('\n');
}

/**
 * The per-op table: one row per op type and target, largest tolerance use first.
 * `tol×` is max |target − ref| / (atol + rtol·|ref|); above 1 is beyond tolerance.
 */
export function formatOpTable(rows: readonly OpRow[], withModel: boolean): string {
  if (rows.length === 0) return '(no values compared)';
  return table(
    ['op', 'target', 'values', 'beyond', 'max abs', 'max rel', 'max ulp', 'tol×', 'worst'],
    rows.map((r) => [
      r.op, r.target, String(r.values), String(r.beyond), num(r.maxAbs), num(r.maxRel), num(r.maxUlp), num(r.tolUse),
      `${withModel ? `${r.worstModel}: ` : ''}${describeValue(r.worst)}${r.worst.diff.structural ? ` (${r.worst.diff.structural})` : ''}`,
    ]));
}

/** One line per target: compared values, first divergence, or why it was skipped. */
export function formatTargetLines(model: ModelDiff): string[] {
  return model.targets.map((t: TargetDiff) => {
    if (t.status === 'skipped') return `${t.target}: skipped: ${t.reason}`;
    const first = firstDivergence(t);
    const missing = (t.missing.length ? `; ${t.missing.length} values not compared` : '') + (t.reason ? ` (${t.reason})` : '');
    const verdict = first ? `first beyond tolerance: ${describeValue(first)} (tol× ${num(first.diff.tolUse)})` : 'all within tolerance';
    return `${t.target}: ${t.values.length} values compared, ${verdict}${missing}`;
  });
}

/** Whether every compared value of every target is within tolerance. */
export function withinTolerance(diffs: readonly ModelDiff[]): boolean {
  return diffs.every((m) => m.targets.every((t) => t.values.every((v) => v.diff.tolUse <= 1)));
}
