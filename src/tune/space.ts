/** A kernel's configuration space: every combination of its knobs' values. */
import type { TuningKnob } from '../../targets/wasm/kernel-def.js';

export type Knobs = Record<string, number>;

export function defaultKnobs(space: readonly TuningKnob[]): Knobs {
  return Object.fromEntries(space.map((knob) => [knob.name, knob.default]));
}

/** Every configuration, in knob order (the first knob varies slowest). */
export function enumerateSpace(space: readonly TuningKnob[]): Knobs[] {
  let configs: Knobs[] = [{}];
  for (const knob of space) configs = configs.flatMap((c) => knob.values.map((v) => ({ ...c, [knob.name]: v })));
  return configs;
}

export function sameKnobs(a: Knobs, b: Knobs): boolean {
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  return [...keys].every((k) => a[k] === b[k]);
}

/** How many knobs differ from the defaults: the tie-breaker (and the order without a cost model). */
export function distanceFromDefault(space: readonly TuningKnob[], knobs: Knobs): number {
  return space.filter((knob) => knobs[knob.name] !== knob.default).length;
}

export function knobsText(knobs: Knobs): string {
  const parts = Object.entries(knobs).map(([k, v]) => `${k}=${v}`);
  return parts.length ? parts.join(' ') : '(none)';
}
