import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TINY } from '../examples/llama-gen/config.js';
import { generateDecoder } from '../examples/llama-gen/decoder.js';
import type { DecodeResult } from '../src/bench/decode.js';
import { llmcc } from './helpers/cli.js';
import { MODELS_DIR } from './helpers/paths.js';

/**
 * `llmcc bench decode` end to end on a tiny llama-gen decoder: llmcc-wasm at 4 bits (quantized
 * by llmcc), llmcc-wasm on the MatMulNBits graph, and onnxruntime-node on the same MatMulNBits
 * graph, each in its own child process, through the built CLI.
 */
const PROMPT = 4;
const NEW_TOKENS = 4;

let tmp: string;
let floatModel: string;
let nbitsModel: string;
beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'llmcc-bench-decode-'));
  await generateDecoder({ config: TINY, out: path.join(tmp, 'float'), ops: 'primitive', dtype: 'f32', externalData: false, seed: 0, testData: false });
  await generateDecoder({
    config: TINY, out: path.join(tmp, 'nbits'), ops: 'primitive', dtype: 'f32', externalData: true, seed: 0, testData: false,
    matmulNBits: { bits: 4, blockSize: 32 },
  });
  floatModel = path.join(tmp, 'float', 'model.onnx');
  nbitsModel = path.join(tmp, 'nbits', 'model.onnx');
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe('llmcc bench decode', () => {
  it('measures llmcc and onnxruntime-node rows, with ratios from the measured figures and the same ids on the same weights', () => {
    const json = path.join(tmp, 'decode.json');
    const args = [
      'bench', 'decode', '--model', floatModel, '--nbits-model', nbitsModel, '--bits', '4', '--llmcc-nbits',
      '--impls', 'llmcc,ort-node', '--prompt-length', String(PROMPT), '--max-tokens', String(NEW_TOKENS), '--bundle-dir', tmp, '--json', json,
    ];
    const run = llmcc(...args);
    expect(run.stderr).toContain('compiling');
    expect(run.code, run.stderr).toBe(0);
    const { results } = JSON.parse(fs.readFileSync(json, 'utf8')) as { results: DecodeResult[] };
    expect(results.map((r) => r.label)).toEqual([
      'llmcc-wasm 4-bit', 'llmcc-wasm 4-bit (MatMulNBits graph)', 'onnxruntime-node cpu 4-bit MatMulNBits',
    ]);
    const node = results[2]!;
    for (const r of results) {
      expect(r.error).toBeUndefined();
      for (const figure of [r.loadMs, r.ttftMs, r.tokensPerS, r.peakRssMiB]) expect(figure).toBeGreaterThan(0);
      expect(r.tokens).toHaveLength(NEW_TOKENS);
      for (const id of r.tokens) expect(Number.isInteger(id) && id >= 0 && id < TINY.vocabSize).toBe(true);
      // Ratios are this run's tokens/s over ORT's; no ort-web row, so none against it.
      expect(r.vsNode).toBeCloseTo(r.tokensPerS / node.tokensPerS, 10);
      expect(r.vsWeb).toBeUndefined();
    }
    expect(results[0]!.cacheResident).toBe(true);
    // The same MatMulNBits weights on llmcc and ORT: the same greedy ids.
    expect(results[1]!.tokens).toEqual(node.tokens);

    // The table prints each row's figures and its ratio; the ids line says whether they agree.
    const lines = run.stdout.trim().split('\n');
    for (const r of results) {
      const row = lines.find((l) => l.startsWith(r.label.padEnd(42)));
      expect(row, r.label).toBeDefined();
      expect(row).toContain(r.tokensPerS.toFixed(2));
      expect(row!.trim().endsWith(`${r.vsNode!.toFixed(2)}x`)).toBe(true);
    }
    const same = results[0]!.tokens.join() === node.tokens.join();
    expect(lines.at(-1)).toMatch(same ? /^token ids identical across all rows/ : /^token ids differ between rows/);

    // A second run reuses the bundles (newer than the models) instead of compiling again.
    const again = llmcc(...args.filter((a) => a !== '--llmcc-nbits').map((a) => (a === 'llmcc,ort-node' ? 'llmcc' : a)));
    expect(again.code, again.stderr).toBe(0);
    expect(again.stderr).toContain('reusing');
    expect(again.stderr).not.toContain('compiling');
  }, 300_000);
});

describe('llmcc bench decoders', () => {
  it('runs every decoder folder on llmcc-wasm, onnxruntime-web and -node with the same ids, ratios from the measured figures', () => {
    // One shared decoder (gpt2) in a folder of its own, so the run stays short.
    const models = path.join(tmp, 'models');
    fs.mkdirSync(models);
    fs.symlinkSync(path.join(MODELS_DIR, 'genai-tiny-random-gpt2-fp32'), path.join(models, 'gpt2'));
    const json = path.join(tmp, 'decoders.json');
    const run = llmcc('bench', 'decoders', '--models', models, '--max-tokens', '6', '--bundle-dir', path.join(tmp, 'decoder-bundles'), '--json', json);
    expect(run.code, run.stdout + run.stderr).toBe(0);
    const report = JSON.parse(fs.readFileSync(json, 'utf8')) as { decoders: { model: string; results: (DecodeResult & { vsWeb?: number })[] }[] };
    expect(report.decoders.map((d) => d.model)).toEqual(['gpt2']);
    const rows = report.decoders[0].results;
    expect(rows.map((r) => r.label)).toEqual(['llmcc-wasm (graph as exported)', 'onnxruntime-web wasm', 'onnxruntime-node cpu']);
    for (const row of rows) {
      expect(row.error).toBeUndefined();
      expect(row.tokens).toHaveLength(6);
      expect(row.tokensPerS).toBeGreaterThan(0);
      expect(row.vsWeb).toBeCloseTo(row.tokensPerS / rows[1].tokensPerS, 6);
    }
    // fp32 graph: greedy ids agree across the three.
    expect(rows[0].tokens).toEqual(rows[2].tokens);
    expect(rows[1].tokens).toEqual(rows[2].tokens);
    expect(run.stdout).toMatch(/== gpt2/);
    // Every implementation warms up first (JIT tiers) at positions the measured run does not use.
    expect(run.stdout).toMatch(/after a 2-token warm-up generation at other positions/);
  }, 180_000);
});
