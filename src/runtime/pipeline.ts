/**
 * Decoder pipelines: a genai_config.json whose `model.decoder.pipeline` chains several graphs
 * (embeddings → transformer → language-model head) by value names. This module parses and checks
 * that section and builds one composite `DecoderEngine` from one engine per stage, so that
 * `generate()` binds and runs it like a single decoder graph. The stage that owns the KV cache
 * carries it (wasm: the cache stays in that stage's memory). Browser-safe: no `node:` imports;
 * files are reached through callbacks.
 */
import { LlmccError } from '../../ir/errors.js';
import type { Tensor } from '../../ir/tensor.js';
import type { DecoderEngine, ValueSignature } from './generate.js';
import type { CarriedPair } from './session.js';

/** One stage as genai_config.json declares it. */
export interface PipelineStage {
  name: string;
  /** As written in the config, relative to the config's folder. */
  filename: string;
  inputs: string[];
  outputs: string[];
}

export interface PipelineConfig {
  stages: PipelineStage[];
  /** Values the generator feeds (the decoder's declared inputs): any stage input not made by an earlier stage. */
  decoderInputs: string[];
}

/** A stage runner: an llmcc session on any target, or onnxruntime in the tests. */
export type StageEngine = DecoderEngine;

export interface PipelineEngine extends DecoderEngine {
  /** Each stage with the engine that runs it, in run order. */
  readonly stages: readonly { stage: PipelineStage; engine: StageEngine }[];
}

type StepRunner = { run(feeds: Map<string, Tensor>): Promise<Map<string, Tensor>> };

/** onnxruntime-genai's input names when the config leaves them out. */
const DEFAULT_DECODER_INPUTS: Record<string, string> = {
  input_ids: 'input_ids',
  attention_mask: 'attention_mask',
  position_ids: 'position_ids',
  past_key_names: 'past_key_values.%d.key',
  past_value_names: 'past_key_values.%d.value',
};

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isStringArray = (v: unknown): v is string[] => Array.isArray(v) && v.every((s) => typeof s === 'string');

function decoderOf(config: unknown): Record<string, unknown> | undefined {
  const model = isRecord(config) ? config.model : undefined;
  const decoder = isRecord(model) ? model.decoder : undefined;
  return isRecord(decoder) ? decoder : undefined;
}

/** Whether a parsed genai_config.json describes a pipeline of graphs. */
export function isPipelineConfig(config: unknown): boolean {
  return decoderOf(config)?.pipeline !== undefined;
}

/**
 * Reads and checks `model.decoder.pipeline` (stages run in the listed order). `where` names the
 * config file in errors. Every stage input must be made by an earlier stage or be a decoder input.
 */
export function parsePipelineConfig(config: unknown, where: string): PipelineConfig {
  const decoder = decoderOf(config);
  const pipeline = decoder?.pipeline;
  if (!Array.isArray(pipeline) || pipeline.length === 0) throw new LlmccError('model.decoder.pipeline must be a non-empty array of stages', where);
  const stages: PipelineStage[] = [];
  for (const group of pipeline) {
    if (!isRecord(group)) throw new LlmccError('each model.decoder.pipeline entry must be an object of named stages', where);
    for (const [name, raw] of Object.entries(group)) {
      const at = `pipeline stage '${name}'`;
      if (!isRecord(raw)) throw new LlmccError(`${at} must be an object`, where);
      if (typeof raw.filename !== 'string' || raw.filename === '') throw new LlmccError(`${at} has no 'filename'`, where);
      // Stage graphs live next to the config, as external data lives next to its model.
      if (/^([a-z]:)?[\\/]/i.test(raw.filename) || raw.filename.split(/[\\/]/).includes('..')) {
        throw new LlmccError(`${at}: filename '${raw.filename}' leaves the config's folder`, where);
      }
      if (!isStringArray(raw.inputs) || !isStringArray(raw.outputs)) throw new LlmccError(`${at} needs 'inputs' and 'outputs' as arrays of names`, where);
      // Stages skipped on the prompt or on decode steps change the values per step: not supported.
      for (const key of ['run_on_prompt', 'run_on_token_gen'] as const) {
        if (raw[key] !== undefined && raw[key] !== true) throw new LlmccError(`${at}: '${key}: ${JSON.stringify(raw[key])}' is not supported (every stage runs on every step)`, where);
      }
      if (raw.output_names_forwarder !== undefined) throw new LlmccError(`${at}: 'output_names_forwarder' is not supported`, where);
      if (stages.some((s) => s.name === name)) throw new LlmccError(`${at} is declared twice`, where);
      stages.push({ name, filename: raw.filename, inputs: [...raw.inputs], outputs: [...raw.outputs] });
    }
  }
  if (stages.length === 0) throw new LlmccError('model.decoder.pipeline declares no stage', where);

  const decoderInputs = declaredDecoderInputs(decoder);
  const produced = new Map<string, string>();
  for (const stage of stages) {
    for (const input of stage.inputs) {
      if (!produced.has(input) && !decoderInputs.includes(input)) {
        throw new LlmccError(`pipeline stage '${stage.name}' input '${input}' is produced by no earlier stage and is not a decoder input (model.decoder.inputs)`, where);
      }
    }
    for (const output of stage.outputs) {
      const earlier = produced.get(output);
      if (earlier) throw new LlmccError(`pipeline stage '${stage.name}' output '${output}' is already produced by stage '${earlier}'`, where);
      produced.set(output, stage.name);
    }
  }
  return { stages, decoderInputs };
}

/** The decoder's input names (`%d` templates expanded over num_hidden_layers). */
function declaredDecoderInputs(decoder: Record<string, unknown> | undefined): string[] {
  const declared = isRecord(decoder?.inputs) ? decoder.inputs : {};
  const layers = typeof decoder?.num_hidden_layers === 'number' ? decoder.num_hidden_layers : 0;
  const names: string[] = [];
  for (const template of Object.values({ ...DEFAULT_DECODER_INPUTS, ...declared })) {
    if (typeof template !== 'string') continue;
    if (!template.includes('%d')) { names.push(template); continue; }
    for (let l = 0; l < layers; l++) names.push(template.replace('%d', String(l)));
  }
  return names;
}

/**
 * Where a stage's graph file is, relative to the config's folder: the config's `filename`, or
 * `<name without .onnx>/model.onnx` (the layout of ../shared/models, one folder per graph).
 */
export function stageFileCandidates(stage: PipelineStage): string[] {
  const stem = stage.filename.replace(/\.onnx$/i, '');
  return [stage.filename, `${stem}/model.onnx`];
}

/** The file of each stage (see `stageFileCandidates`); a missing one is an error naming the stage. */
export async function resolveStageFiles(config: PipelineConfig, exists: (relative: string) => boolean | Promise<boolean>, where: string): Promise<string[]> {
  const files: string[] = [];
  for (const stage of config.stages) {
    const candidates = stageFileCandidates(stage);
    let found: string | undefined;
    for (const candidate of candidates) {
      if (await exists(candidate)) { found = candidate; break; }
    }
    if (!found) throw new LlmccError(`pipeline stage '${stage.name}': model file '${candidates[0]}' not found (nor '${candidates[1]}')`, where);
    files.push(found);
  }
  return files;
}

/** Parses the config, finds the stage files and opens one engine per stage; returns the composite. */
export async function openPipeline(
  config: unknown,
  io: { where: string; exists(relative: string): boolean | Promise<boolean>; stageEngine(relative: string, stage: PipelineStage): Promise<StageEngine> },
): Promise<PipelineEngine> {
  const parsed = parsePipelineConfig(config, io.where);
  const files = await resolveStageFiles(parsed, io.exists, io.where);
  const engines: StageEngine[] = [];
  for (let i = 0; i < parsed.stages.length; i++) engines.push(await io.stageEngine(files[i], parsed.stages[i]));
  return pipelineEngine(parsed, engines, io.where);
}

/**
 * The composite engine: runs the stages in order per step, each fed its listed inputs from the
 * step's feeds and earlier stages' outputs. Its inputs are the values no stage makes; its outputs
 * the stage outputs no later stage reads (logits, present cache), so generate() binds unchanged.
 */
export function pipelineEngine(config: PipelineConfig, engines: StageEngine[], where = 'genai_config.json'): PipelineEngine {
  if (engines.length !== config.stages.length) throw new LlmccError(`the pipeline has ${config.stages.length} stages but ${engines.length} engines were given`, where);
  const stages = config.stages.map((stage, i) => ({ stage, engine: engines[i] }));
  const producedBy = new Map<string, ValueSignature>();
  const inputs: ValueSignature[] = [];
  stages.forEach(({ stage, engine }) => {
    const graphInputs = new Map(engine.inputs.map((v) => [v.name, v]));
    const graphOutputs = new Map(engine.outputs.map((v) => [v.name, v]));
    for (const name of stage.inputs) {
      const own = graphInputs.get(name);
      if (!own) throw new LlmccError(`pipeline stage '${stage.name}' lists input '${name}', which its graph does not have (inputs: ${[...graphInputs.keys()].join(', ')})`, where);
      const from = producedBy.get(name);
      if (from && from.dtype !== own.dtype) throw new LlmccError(`pipeline stage '${stage.name}' input '${name}' is ${own.dtype} but the earlier stage makes ${from.dtype}`, where);
      if (!from && !inputs.some((v) => v.name === name)) inputs.push(own);
    }
    for (const name of graphInputs.keys()) {
      if (!stage.inputs.includes(name)) throw new LlmccError(`pipeline stage '${stage.name}' graph input '${name}' is not in the stage's inputs, so nothing feeds it`, where);
    }
    for (const name of stage.outputs) {
      const own = graphOutputs.get(name);
      if (!own) throw new LlmccError(`pipeline stage '${stage.name}' lists output '${name}', which its graph does not have (outputs: ${[...graphOutputs.keys()].join(', ')})`, where);
      producedBy.set(name, own);
    }
  });
  const readLater = (index: number, name: string): boolean => config.stages.slice(index + 1).some((s) => s.inputs.includes(name));
  const outputs: ValueSignature[] = [];
  config.stages.forEach((stage, i) => {
    for (const name of stage.outputs) if (!readLater(i, name)) outputs.push(producedBy.get(name)!);
  });
  const inputNames = new Set(inputs.map((v) => v.name));

  /** One step through all stages; `runners[i]` runs stage i, `carried[i]` its values kept on the target. */
  const step = async (feeds: Map<string, Tensor>, runners: StepRunner[], carried: Set<string>[]): Promise<Map<string, Tensor>> => {
    for (const name of feeds.keys()) {
      if (!inputNames.has(name)) throw new LlmccError(`'${name}' is not an input of the pipeline (inputs: ${[...inputNames].join(', ')})`, where);
    }
    const values = new Map(feeds);
    for (let i = 0; i < stages.length; i++) {
      const { stage } = stages[i];
      const stageFeeds = new Map<string, Tensor>();
      for (const name of stage.inputs) {
        if (carried[i].has(name)) continue;
        const value = values.get(name);
        if (!value) throw new LlmccError(`pipeline stage '${stage.name}' needs '${name}', which neither the feeds nor an earlier stage gave`, where);
        stageFeeds.set(name, value);
      }
      const result = await runners[i].run(stageFeeds);
      for (const name of stage.outputs) {
        if (carried[i].has(name)) continue;
        const value = result.get(name);
        if (!value) throw new LlmccError(`pipeline stage '${stage.name}' returned no '${name}'`, where);
        values.set(name, value);
      }
    }
    const result = new Map<string, Tensor>();
    for (const { name } of outputs) {
      const value = values.get(name);
      if (value) result.set(name, value);
    }
    return result;
  };

  const plain = stages.map(({ engine }) => engine);
  const nothingCarried = stages.map(() => new Set<string>());
  return {
    inputs,
    outputs,
    stages,
    run: (feeds) => step(feeds, plain, nothingCarried),
    // Engines specialised on shapes (neon) build per stage from the decoder's plan; values that
    // earlier stages make are sized from their declared dims.
    prepare: async (plan) => { for (const { engine } of stages) await engine.prepare?.(plan); },
    close: async () => {
      const outcomes = await Promise.allSettled(stages.map(({ engine }) => engine.close?.()));
      const failed = outcomes.find((o): o is PromiseRejectedResult => o.status === 'rejected');
      if (failed) throw failed.reason;
    },
    carry: (pairs) => {
      const owned = carriedByStage(config, pairs, where);
      // Stages without pairs run as before; each owning stage keeps its pairs on its target.
      const runners = stages.map(({ stage, engine }, i): StepRunner => {
        if (owned[i].length === 0) return engine;
        if (!engine.carry) throw new LlmccError(`pipeline stage '${stage.name}' runs on an engine that cannot keep its cache`, where);
        return engine.carry(owned[i]);
      });
      const carried = owned.map((list) => new Set(list.flatMap((p) => [p.input, p.output])));
      return { run: (feeds) => step(feeds, runners, carried) };
    },
  };
}

/** Each pair assigned to the one stage that reads its input and makes its output; no other stage may read either. */
function carriedByStage(config: PipelineConfig, pairs: CarriedPair[], where: string): CarriedPair[][] {
  const owned = config.stages.map((): CarriedPair[] => []);
  for (const pair of pairs) {
    const owner = config.stages.findIndex((s) => s.inputs.includes(pair.input) && s.outputs.includes(pair.output));
    if (owner < 0) throw new LlmccError(`carried pair '${pair.input}' <- '${pair.output}' is not the input and output of one pipeline stage`, where);
    const sharedWith = config.stages.find((s, i) => i !== owner && (s.inputs.includes(pair.input) || s.inputs.includes(pair.output)));
    if (sharedWith) throw new LlmccError(`carried pair '${pair.input}' <- '${pair.output}' is also read by pipeline stage '${sharedWith.name}', so it cannot stay on the target`, where);
    owned[owner].push(pair);
  }
  return owned;
}
