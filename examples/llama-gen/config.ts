import * as fs from 'node:fs';
import { LlmccError } from '../../ir/errors.js';

/** The shape of a LLaMA-style decoder (Hugging Face LlamaConfig field names, camel-cased). */
export interface LlamaConfig {
  vocabSize: number;
  hiddenSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  intermediateSize: number;
  maxPositions: number;
  ropeTheta: number;
  rmsEps: number;
}

/** Small enough for unit tests on the reference interpreter (~0.1 M parameters). */
export const TINY: LlamaConfig = {
  vocabSize: 256,
  hiddenSize: 64,
  numLayers: 2,
  numHeads: 4,
  numKvHeads: 2,
  intermediateSize: 128,
  maxPositions: 128,
  ropeTheta: 10000,
  rmsEps: 1e-5,
};

/**
 * LLaMA-3.2-1B-like shapes with a 32000-token vocabulary and an untied lm_head:
 * 16 × 60.8 M (layers) + 2 × 65.5 M (embedding, lm_head) ≈ 1.10 B parameters.
 */
export const ONE_B: LlamaConfig = {
  vocabSize: 32000,
  hiddenSize: 2048,
  numLayers: 16,
  numHeads: 32,
  numKvHeads: 8,
  intermediateSize: 8192,
  maxPositions: 2048,
  ropeTheta: 500000,
  rmsEps: 1e-5,
};

export const PRESETS: Record<string, LlamaConfig> = { tiny: TINY, '1b': ONE_B };

export function headDim(config: LlamaConfig): number {
  return config.hiddenSize / config.numHeads;
}

/** Parameters the generated graph holds (weights only, not the rotary tables). */
export function parameterCount(c: LlamaConfig): number {
  const d = headDim(c);
  const attention = c.hiddenSize * (c.numHeads * d) * 2 + c.hiddenSize * (c.numKvHeads * d) * 2;
  const mlp = 3 * c.hiddenSize * c.intermediateSize;
  const layer = attention + mlp + 2 * c.hiddenSize;
  return c.numLayers * layer + 2 * c.vocabSize * c.hiddenSize + c.hiddenSize;
}

const FIELDS: { key: keyof LlamaConfig; hf: string; integer: boolean }[] = [
  { key: 'vocabSize', hf: 'vocab_size', integer: true },
  { key: 'hiddenSize', hf: 'hidden_size', integer: true },
  { key: 'numLayers', hf: 'num_hidden_layers', integer: true },
  { key: 'numHeads', hf: 'num_attention_heads', integer: true },
  { key: 'numKvHeads', hf: 'num_key_value_heads', integer: true },
  { key: 'intermediateSize', hf: 'intermediate_size', integer: true },
  { key: 'maxPositions', hf: 'max_position_embeddings', integer: true },
  { key: 'ropeTheta', hf: 'rope_theta', integer: false },
  { key: 'rmsEps', hf: 'rms_norm_eps', integer: false },
];

/** Checks the divisibility rules the graph relies on; throws LlmccError naming the field. */
export function validateConfig(c: LlamaConfig, where = 'config'): LlamaConfig {
  for (const { key, integer } of FIELDS) {
    const v = c[key];
    if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0 || (integer && !Number.isInteger(v))) {
      throw new LlmccError(`${key} must be a positive ${integer ? 'integer' : 'number'}, got ${String(v)}`, where);
    }
  }
  if (c.hiddenSize % c.numHeads !== 0) throw new LlmccError(`hiddenSize ${c.hiddenSize} is not a multiple of numHeads ${c.numHeads}`, where);
  if (headDim(c) % 2 !== 0) throw new LlmccError(`head dim ${headDim(c)} must be even for rotary embedding`, where);
  if (c.numHeads % c.numKvHeads !== 0) throw new LlmccError(`numHeads ${c.numHeads} is not a multiple of numKvHeads ${c.numKvHeads}`, where);
  return c;
}

/**
 * A preset name (`tiny`, `1b`) or a JSON file. The file may use our camel-case keys or a
 * Hugging Face config.json's names (`hidden_size`, `num_key_value_heads`, …); keys it
 * leaves out come from `tiny`.
 */
export function resolveConfig(nameOrFile: string): LlamaConfig {
  const preset = PRESETS[nameOrFile];
  if (preset) return { ...preset };
  let raw: unknown;
  try {
    raw = JSON.parse(fs.readFileSync(nameOrFile, 'utf8'));
  } catch (error) {
    throw new LlmccError(`--config must be ${Object.keys(PRESETS).join(' or ')} or a readable JSON file (${(error as Error).message})`, nameOrFile);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new LlmccError('config file must hold a JSON object', nameOrFile);
  const obj = raw as Record<string, unknown>;
  const config: LlamaConfig = { ...TINY };
  for (const { key, hf } of FIELDS) {
    const value = obj[key] ?? obj[hf];
    if (value === undefined) continue;
    if (typeof value !== 'number') throw new LlmccError(`${key} must be a number, got ${JSON.stringify(value)}`, nameOrFile);
    config[key] = value;
  }
  // Hugging Face configs may leave num_key_value_heads out, meaning plain multi-head attention.
  if (obj.numKvHeads === undefined && obj.num_key_value_heads === undefined && (obj.numHeads !== undefined || obj.num_attention_heads !== undefined)) {
    config.numKvHeads = config.numHeads;
  }
  return validateConfig(config, nameOrFile);
}
