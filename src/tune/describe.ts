/** Short human labels of tuned ops for reports (the signature itself is the key, not for reading). */
import type { KernelBuildContext } from '../../targets/wasm/kernel-def.js';
import type { TuningEntry } from './db.js';
import { normalDim } from './signature.js';
import { knobsText } from './space.js';

export function opLabel(ctx: KernelBuildContext): string {
  const shapes = ctx.inputs
    .filter((t) => t)
    .slice(0, 2)
    .map((t) => (t!.shape ? `[${t!.shape.map(normalDim).join(',')}]` : '[?]'));
  const op = ctx.node.domain ? `${ctx.node.domain}.${ctx.node.op}` : ctx.node.op;
  return `${op} ${shapes.join('x')}`;
}

export function figuresText(entry: TuningEntry): string {
  return entry.figures
    .map((f) => `${f.regime} ${f.defaultMs.toFixed(4)} → ${f.tunedMs.toFixed(4)} ms (×${(f.defaultMs / f.tunedMs).toFixed(2)})`)
    .join(', ');
}

export function entryText(entry: TuningEntry): string {
  return `${knobsText(entry.knobs)} [${entry.measured}/${entry.spaceSize} measured] ${figuresText(entry)}`;
}
