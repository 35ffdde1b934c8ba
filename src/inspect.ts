import type { Graph, Model, TensorType } from '../ir/graph.js';
import type { Backend } from '../targets/backend.js';

export interface InspectReport {
  file: string;
  irVersion: number;
  producer: string;
  opsets: { domain: string; version: number }[];
  /** Domain-qualified op → node count (subgraphs included), most frequent first. */
  ops: { op: string; count: number }[];
  parameters: { count: number; bytes: number; byDtype: { dtype: string; count: number; bytes: number }[] };
  inputs: { name: string; type: string }[];
  outputs: { name: string; type: string }[];
  /** One row per op in the model, one column per target. */
  support: { targets: string[]; rows: { op: string; supported: Record<string, boolean> }[] };
  /** Per target, every op it cannot run (all at once). */
  unsupported: Record<string, string[]>;
}

export function formatType(type: TensorType | undefined): string {
  if (!type) return '(untyped)';
  return type.shape ? `${type.dtype}[${type.shape.join(',')}]` : `${type.dtype}[*]`;
}

function qualified(domain: string, op: string): string {
  return domain ? `${domain}.${op}` : op;
}

function countOps(graph: Graph, counts: Map<string, { domain: string; op: string; count: number }>): void {
  for (const node of graph.nodes) {
    const key = qualified(node.domain, node.op);
    const entry = counts.get(key) ?? { domain: node.domain, op: node.op, count: 0 };
    entry.count++;
    counts.set(key, entry);
    for (const attr of node.attributes.values()) {
      if (attr.kind === 'graph') countOps(attr.value, counts);
      if (attr.kind === 'graphs') attr.value.forEach((g) => countOps(g, counts));
    }
  }
}

export function inspectModel(model: Model, backends: readonly Backend[]): InspectReport {
  const graph = model.graph;
  const counts = new Map<string, { domain: string; op: string; count: number }>();
  countOps(graph, counts);
  const ops = [...counts.entries()]
    .sort((a, b) => b[1].count - a[1].count || a[0].localeCompare(b[0]));

  const byDtype = new Map<string, { dtype: string; count: number; bytes: number }>();
  for (const weight of graph.initializers.values()) {
    const entry = byDtype.get(weight.dtype) ?? { dtype: weight.dtype, count: 0, bytes: 0 };
    entry.count += weight.shape.reduce((a, b) => a * b, 1);
    entry.bytes += weight.byteLength;
    byDtype.set(weight.dtype, entry);
  }
  const dtypes = [...byDtype.values()].sort((a, b) => b.bytes - a.bytes);

  const rows = ops.map(([op, { domain, op: name }]) => ({
    op,
    supported: Object.fromEntries(backends.map((b) => [b.name, b.supports(domain, name)])),
  }));
  const unsupported = Object.fromEntries(backends.map((b) => [b.name, rows.filter((r) => !r.supported[b.name]).map((r) => r.op)]));

  return {
    file: model.path ?? '',
    irVersion: model.irVersion,
    producer: model.producer,
    opsets: [...model.opsets.entries()].map(([domain, version]) => ({ domain: domain || 'ai.onnx', version })),
    ops: ops.map(([op, { count }]) => ({ op, count })),
    parameters: {
      count: dtypes.reduce((a, d) => a + d.count, 0),
      bytes: dtypes.reduce((a, d) => a + d.bytes, 0),
      byDtype: dtypes,
    },
    inputs: graph.inputs.map((i) => ({ name: i.name, type: formatType(i.type) })),
    outputs: graph.outputs.map((o) => ({ name: o.name, type: formatType(o.type) })),
    support: { targets: backends.map((b) => b.name), rows },
    unsupported,
  };
}

function humanBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  return `${i ? v.toFixed(2) : v} ${units[i]}`;
}

/** The human-readable form of an inspect report. */
export function renderInspectReport(r: InspectReport): string {
  const lines: string[] = [];
  lines.push(`model: ${r.file}`);
  lines.push(`ir_version ${r.irVersion}, producer "${r.producer}"`);
  lines.push(`opsets: ${r.opsets.map((o) => `${o.domain} ${o.version}`).join(', ')}`);
  lines.push('', `parameters: ${r.parameters.count.toLocaleString('en-US')} (${humanBytes(r.parameters.bytes)})`);
  for (const d of r.parameters.byDtype) {
    lines.push(`  ${d.dtype.padEnd(6)} ${d.count.toLocaleString('en-US').padStart(15)}  ${humanBytes(d.bytes)}`);
  }
  lines.push('', 'inputs:');
  for (const i of r.inputs) lines.push(`  ${i.name}: ${i.type}`);
  lines.push('outputs:');
  for (const o of r.outputs) lines.push(`  ${o.name}: ${o.type}`);
  const width = Math.max(2, ...r.ops.map((o) => o.op.length));
  lines.push('', `${'op'.padEnd(width)}  ${'count'.padStart(5)}  ${r.support.targets.join('  ')}`);
  r.ops.forEach((o, k) => {
    const marks = r.support.targets.map((t) => (r.support.rows[k].supported[t] ? 'yes' : 'NO').padEnd(t.length));
    lines.push(`${o.op.padEnd(width)}  ${String(o.count).padStart(5)}  ${marks.join('  ')}`);
  });
  lines.push('');
  for (const t of r.support.targets) {
    const missing = r.unsupported[t];
    lines.push(missing.length
      ? `target ${t}: ${missing.length} unsupported op(s): ${missing.join(', ')}`
      : `target ${t}: all ops supported`);
  }
  return lines.join('\n');
}
