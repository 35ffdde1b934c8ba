import type { Model, Node } from '../../ir/graph.js';
import { inferTypes } from '../../ir/infer.js';
import { LlmccError } from '../../ir/errors.js';
import { RewriteContext } from './context.js';
import { matchesAt, type Match, type OpPattern } from './pattern.js';

/** One named rewrite, tried at every node; counted by name each time it fires. */
export interface RewriteRule {
  readonly name: string;
  /** Rewrites the graph around `node` (the candidate root) when the rule applies; true if it did. */
  tryAt(node: Node, ctx: RewriteContext): boolean;
}

/**
 * A rule from a matcher and an edit: `match` returns what the edit needs at this node, or
 * undefined; `apply` performs it.
 */
export function defineRule<M>(
  name: string,
  match: (node: Node, ctx: RewriteContext) => M | undefined,
  apply: (match: M, ctx: RewriteContext) => void,
): RewriteRule {
  return {
    name,
    tryAt(node, ctx) {
      const m = match(node, ctx);
      if (m === undefined) return false;
      apply(m, ctx);
      return true;
    },
  };
}

export interface PatternRuleSpec {
  name: string;
  /** The pattern, or alternatives tried in order (one rule name for several spellings). */
  pattern: OpPattern | readonly OpPattern[];
  /** Constraints beyond the pattern's own (shapes, dtypes, constant values). */
  check?(match: Match, ctx: RewriteContext): boolean;
  /**
   * The nodes replacing the match; together they must define the root's outputs that are read.
   * They may also redefine outputs of `shared` matched nodes (which are then removed too).
   */
  replace(match: Match, ctx: RewriteContext): Node[];
}

/** A rule from a declarative pattern: match, check, replace the matched subgraph. */
export function patternRule(spec: PatternRuleSpec): RewriteRule {
  return defineRule<Match>(
    spec.name,
    (node, ctx) => {
      const patterns = Array.isArray(spec.pattern) ? spec.pattern : [spec.pattern as OpPattern];
      for (const pattern of patterns) {
        for (const m of matchesAt(pattern, node, ctx)) if (!spec.check || spec.check(m, ctx)) return m;
      }
      return undefined;
    },
    (match, ctx) => replaceMatch(ctx, match, spec.replace(match, ctx), spec.name),
  );
}

/**
 * Swaps the matched nodes for `replacement`: every matched node is removed except `shared` ones
 * whose outputs the replacement does not redefine. The replacement goes where the first removed
 * node whose output it redefines stood (the root, or an earlier shared node), so the order stays
 * topological: its inputs are captured values, defined before any matched node.
 */
export function replaceMatch(ctx: RewriteContext, match: Match, replacement: Node[], rule: string): void {
  const graph = ctx.graph;
  const redefined = new Set(replacement.flatMap((n) => n.outputs.filter((o) => o)));
  const rootReads = match.root.outputs.filter((o) => o && (ctx.isGraphOutput(o) || ctx.readers(o).length > 0));
  for (const out of rootReads) {
    if (!redefined.has(out)) throw new LlmccError(`rewrite ${rule}: replacement does not define '${out}'`);
  }
  const removed = new Set(match.matched.filter((n) => !match.sharedNodes.has(n) || n.outputs.some((o) => o && redefined.has(o))));
  const at = graph.nodes.findIndex((n) => removed.has(n) && n.outputs.some((o) => o && redefined.has(o)));
  if (at < 0) throw new LlmccError(`rewrite ${rule}: the root is not in the graph`);
  const before = graph.nodes.slice(0, at).filter((n) => !removed.has(n));
  const after = graph.nodes.slice(at).filter((n) => !removed.has(n));
  graph.nodes = [...before, ...replacement, ...after];
  for (const value of redefined) graph.valueInfo.delete(value);
}

export interface RewriteOptions {
  /** Most sweeps over the graph before giving up on reaching a fixed point (default 8). */
  maxSweeps?: number;
}

export interface RewriteReport {
  /** Firings per rule name (every rule listed, 0 when it never fired). */
  fired: Record<string, number>;
  sweeps: number;
  /** False when maxSweeps ran out while rules still fired. */
  converged: boolean;
}

function refreshTypes(model: Model): void {
  try {
    inferTypes(model.graph, model.opsets);
  } catch {
    // Rules needing a type decline to fire when it is unknown.
  }
}

/**
 * Applies `rules` until none fires (a fixed point) or `maxSweeps` sweeps. One sweep tries each
 * rule, in order, at every node; types are re-inferred between sweeps, so a rule needing the
 * type of a value an earlier rewrite made fires on the next sweep.
 */
export function rewriteToFixedPoint(model: Model, rules: readonly RewriteRule[], options: RewriteOptions = {}): RewriteReport {
  const maxSweeps = options.maxSweeps ?? 8;
  const fired: Record<string, number> = Object.fromEntries(rules.map((r) => [r.name, 0]));
  let sweeps = 0;
  while (sweeps < maxSweeps) {
    sweeps++;
    refreshTypes(model);
    const ctx = new RewriteContext(model);
    let any = false;
    for (const rule of rules) {
      let alive = new Set(model.graph.nodes);
      for (const node of [...model.graph.nodes]) {
        if (!alive.has(node) || !rule.tryAt(node, ctx)) continue;
        ctx.refresh();
        alive = new Set(model.graph.nodes);
        fired[rule.name]++;
        any = true;
      }
    }
    if (!any) return { fired, sweeps, converged: true };
  }
  return { fired, sweeps, converged: false };
}
