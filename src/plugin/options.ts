import { LlmccError } from '../../ir/errors.js';
import type { LoweringOptions } from '../../passes/pipeline.js';
import { loweringFromFlags, type LoweringFlags } from '../cli/lowering-options.js';
import type { OutsideRootPolicy } from './confine.js';

/** Targets that produce a bundle the runtime's `load(url)` reads. */
export const BUNDLE_TARGETS = ['wasm'] as const;
export type BundleTarget = (typeof BUNDLE_TARGETS)[number];

/** What a model is compiled with: the plugin's defaults, overridden per import by the query. */
export interface ModelCompileSettings {
  target?: BundleTarget;
  /** Apply low-bit lowering (implied by any of the lowering options below). */
  lower?: boolean;
  /** Quantize float MatMul/Gemm weights to this many bits (like `--bits`). */
  bits?: 1 | 2 | 3 | 4 | 8 | 'ternary';
  group?: number;
  asym?: boolean;
  keep?: string[];
  table?: 'i8' | 'f32';
  g?: number;
  fuse?: boolean;
}

export interface LlmccPluginOptions extends ModelCompileSettings {
  /** The import query that marks a model import: `./m.onnx?llmcc` (default `llmcc`). */
  query?: string;
  /** Models outside Vite's `root`: refused unless true, or inside one of these folders. */
  allowOutsideRoot?: OutsideRootPolicy;
}

/** Settings made concrete: what the cache key and the compiler see. */
export interface ResolvedSettings {
  target: BundleTarget;
  lowering?: LoweringOptions;
  /** Stable text of the settings, part of the cache key and of messages. */
  key: string;
}

const LOWERING_KEYS = ['bits', 'group', 'asym', 'keep', 'table', 'g', 'fuse'] as const;
const QUERY_KEYS = new Set<string>(['target', 'lower', ...LOWERING_KEYS]);

function flagValue(value: string, key: string, where: string): boolean {
  if (value === '' || value === 'true' || value === '1') return true;
  if (value === 'false' || value === '0') return false;
  throw new LlmccError(`import query '${key}=${value}' expects true or false`, where);
}

/** Per-import overrides: `?llmcc&bits=4&group=64&table=f32&fuse=false&keep=*lm_head*`. */
export function settingsFromQuery(params: URLSearchParams, marker: string, where: string): ModelCompileSettings {
  const out: ModelCompileSettings = {};
  for (const [key, value] of params) {
    if (key === marker) continue;
    if (!QUERY_KEYS.has(key)) {
      throw new LlmccError(`unknown import query '${key}' (known: ${[...QUERY_KEYS].join(', ')})`, where);
    }
    switch (key) {
      case 'target': out.target = value as BundleTarget; break;
      case 'lower': out.lower = flagValue(value, key, where); break;
      case 'asym': out.asym = flagValue(value, key, where); break;
      case 'fuse': out.fuse = flagValue(value, key, where); break;
      case 'bits': out.bits = (value === 'ternary' ? 'ternary' : Number(value)) as ModelCompileSettings['bits']; break;
      case 'group': out.group = Number(value); break;
      case 'g': out.g = Number(value); break;
      case 'table': out.table = value as 'i8' | 'f32'; break;
      case 'keep': out.keep = [...(out.keep ?? []), value]; break;
    }
  }
  return out;
}

/** Defaults, then overrides; validated through the same code as the CLI flags. */
export function resolveSettings(defaults: ModelCompileSettings, overrides: ModelCompileSettings, where: string): ResolvedSettings {
  const s: ModelCompileSettings = { ...stripUndefined(defaults), ...stripUndefined(overrides) };
  const target = s.target ?? 'wasm';
  if (!(BUNDLE_TARGETS as readonly string[]).includes(target)) {
    throw new LlmccError(`target '${target}' cannot be bundled by the vite plugin (bundle targets: ${BUNDLE_TARGETS.join(', ')})`, where);
  }
  const lower = s.lower ?? LOWERING_KEYS.some((k) => s[k] !== undefined);
  if (!lower) return { target, key: JSON.stringify({ target }) };
  const flags: LoweringFlags = {
    bits: s.bits === undefined ? undefined : String(s.bits),
    group: String(s.group ?? 32),
    asym: s.asym,
    keep: s.keep,
    table: s.table ?? 'i8',
    g: String(s.g ?? 4),
    fuse: s.fuse ?? true,
  };
  if (flags.bits !== undefined && !['1', '2', '3', '4', '8', 'ternary'].includes(flags.bits)) {
    throw new LlmccError(`bits must be 1, 2, 3, 4, 8 or 'ternary', got '${flags.bits}'`, where);
  }
  if (flags.table !== 'i8' && flags.table !== 'f32') throw new LlmccError(`table must be i8 or f32, got '${flags.table}'`, where);
  let lowering: LoweringOptions;
  try {
    lowering = loweringFromFlags(flags, target);
  } catch (error) {
    if (error instanceof LlmccError) throw new LlmccError(error.message, where);
    throw error;
  }
  return { target, lowering, key: JSON.stringify({ target, lowering }) };
}

function stripUndefined(s: ModelCompileSettings): ModelCompileSettings {
  return Object.fromEntries(Object.entries(s).filter(([, v]) => v !== undefined)) as ModelCompileSettings;
}
