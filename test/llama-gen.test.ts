import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LlmccError } from '../ir/errors.js';
import { verifyModel } from '../ir/verify.js';
import { compareTensors } from '../src/compare.js';
import { loadModel } from '../src/onnx/load.js';
import { bindInputs, readTestDataSet } from '../src/testdata.js';
import { referenceBackend } from '../targets/ref/backend.js';
import { compileWasm } from '../targets/wasm/compile.js';
import { encodeWeight } from '../targets/wasm/weights.js';
import { parameterCount, resolveConfig, TINY, validateConfig } from '../examples/llama-gen/config.js';
import { defaultPrompt, generateDecoder, type GeneratedDecoder } from '../examples/llama-gen/decoder.js';
import { decoderIoFromGraph, greedyGenerate, type RunFn } from '../examples/llama-gen/greedy.js';
import { ortRunner } from '../examples/llama-gen/ort.js';
import { f32BitsToF16Bits, weightChunks } from '../examples/llama-gen/write.js';
import { numberToF16Bits } from '../ir/float.js';
import { seededRandom } from '../ir/random.js';
import { llmcc } from './helpers/cli.js';

let root: string;
beforeAll(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'llmcc-llama-gen-'));
});
afterAll(() => {
  fs.rmSync(root, { recursive: true, force: true });
});

const ATOL = 1e-4;
const GREEDY_TOKENS = 16;

async function refRunner(modelPath: string): Promise<RunFn> {
  const model = await loadModel(modelPath);
  const session = await referenceBackend.prepare(model);
  return (feeds) => session.run(feeds);
}

async function ortGreedy(modelPath: string, prompt: number[]): Promise<number[]> {
  const model = await loadModel(modelPath);
  const { run, release } = await ortRunner(modelPath);
  try {
    return await greedyGenerate(run, decoderIoFromGraph(model.graph), prompt, { maxNewTokens: GREEDY_TOKENS });
  } finally {
    await release();
  }
}

for (const ops of ['primitive', 'contrib'] as const) {
  describe(`tiny LLaMA decoder, ${ops} ops`, () => {
    let generated: GeneratedDecoder;
    beforeAll(async () => {
      generated = await generateDecoder({
        config: TINY, out: path.join(root, ops), ops, dtype: 'f32', externalData: false, seed: 0, testData: true,
      });
    });

    it('writes the model, its config and two data sets', () => {
      expect(fs.existsSync(generated.modelPath)).toBe(true);
      expect(generated.dataPath).toBeUndefined();
      expect(generated.parameters).toBe(parameterCount(TINY));
      expect(generated.testDataSets.map((d) => path.basename(d))).toEqual(['test_data_set_0', 'test_data_set_1']);
    });

    it('loads in the importer and verifies, with the expected ops', async () => {
      const model = await loadModel(generated.modelPath);
      verifyModel(model);
      const ops = new Set(model.graph.nodes.map((n) => (n.domain ? `${n.domain}.${n.op}` : n.op)));
      const expected = generated.modelPath.includes('contrib')
        ? ['SimplifiedLayerNormalization', 'com.microsoft.SkipSimplifiedLayerNormalization', 'com.microsoft.RotaryEmbedding', 'com.microsoft.GroupQueryAttention', 'Sigmoid', 'MatMul', 'Gather']
        : ['Pow', 'ReduceMean', 'Sqrt', 'Div', 'Sigmoid', 'Range', 'Less', 'Where', 'Softmax', 'Concat', 'Slice', 'Gather', 'Transpose', 'Reshape', 'Expand'];
      for (const op of expected) expect(ops, op).toContain(op);
      expect(model.graph.inputs.map((i) => i.name).slice(0, 4)).toEqual(['input_ids', 'attention_mask', 'position_ids', 'past_key_values.0.key']);
    });

    for (const set of [0, 1]) {
      it(`reference interpreter matches onnxruntime-node on test_data_set_${set} (${set === 0 ? 'prefill' : 'decode'}) within ${ATOL}`, async () => {
        const model = await loadModel(generated.modelPath);
        const data = readTestDataSet(generated.testDataSets[set]);
        const session = await referenceBackend.prepare(model);
        const outputs = await session.run(bindInputs(model.graph, data));
        expect(data.outputs).toHaveLength(1 + 2 * TINY.numLayers);
        data.outputs.forEach(({ tensor: expected }, k) => {
          const name = model.graph.outputs[k].name;
          const actual = outputs.get(name);
          expect(actual, name).toBeDefined();
          const result = compareTensors(actual!, expected, { atol: ATOL, rtol: 0 });
          expect(result.ok, `${name}: ${result.reason ?? `max abs ${result.maxAbs}`}`).toBe(true);
        });
        // Decode sees the prefill's cache: one more position than the prompt.
        const presentLen = data.outputs[1].tensor.shape[2];
        expect(presentLen).toBe(generated.promptIds.length + set);
      });
    }

    it('keeps batch and sequence dims symbolic in the typed IR (compile --emit ir)', async () => {
      // The built command line, as a user runs it (npm test builds it first).
      const cli = llmcc('compile', generated.modelPath, '--emit', 'ir');
      expect(cli.code, cli.stderr).toBe(0);
      const text = cli.stdout;
      expect(text).toContain('input %input_ids : i64[batch_size, sequence_length]');
      expect(text).toContain('input %past_key_values.0.key : f32[batch_size, 2, past_sequence_length, 16]');
      expect(text).toContain(`output %logits : f32[batch_size, sequence_length, ${TINY.vocabSize}]`);
      const present = /output %present\.0\.key : f32\[batch_size, 2, ([^,\]]+), 16\]/.exec(text);
      expect(present, 'present.0.key declaration').not.toBeNull();
      expect(present![1]).toMatch(/sequence_length/);
      // Nothing in the graph collapsed to an unknown rank or an invented dim.
      expect(text).not.toMatch(/\[\*\]|unk_\d/);
    });

    it(`greedy ${GREEDY_TOKENS}-token generation gives the same ids on the reference interpreter and onnxruntime-node`, async () => {
      const model = await loadModel(generated.modelPath);
      const io = decoderIoFromGraph(model.graph);
      const prompt = generated.promptIds;
      const streamed: number[] = [];
      const ref = await greedyGenerate(await refRunner(generated.modelPath), io, prompt, {
        maxNewTokens: GREEDY_TOKENS, onToken: (id) => streamed.push(id),
      });
      const expected = await ortGreedy(generated.modelPath, prompt);
      expect(ref).toEqual(expected);
      expect(streamed).toEqual(ref);
      expect(ref).toHaveLength(GREEDY_TOKENS);
      // Random weights, but not a degenerate model that repeats one token.
      expect(new Set(ref).size).toBeGreaterThan(3);
    });
  });
}

describe('llama-gen options', () => {
  it('primitive and contrib flavours compute the same function (same seeded weights)', async () => {
    const logits = [];
    for (const ops of ['primitive', 'contrib'] as const) {
      const out = path.join(root, `same-${ops}`);
      const g = await generateDecoder({ config: TINY, out, ops, dtype: 'f32', externalData: false, seed: 7, testData: true });
      logits.push(readTestDataSet(g.testDataSets[1]).outputs[0].tensor);
    }
    const result = compareTensors(logits[0], logits[1], { atol: 1e-5, rtol: 0 });
    expect(result.ok, result.reason ?? `max abs ${result.maxAbs}`).toBe(true);
  });

  it('external f16 data: the wasm compiler copies stored bytes, identical to decoding and re-encoding', async () => {
    const out = path.join(root, 'external-f16');
    const g = await generateDecoder({ config: TINY, out, ops: 'contrib', dtype: 'f16', externalData: true, seed: 3, testData: false });
    const model = await loadModel(g.modelPath);
    const reference = await loadModel(g.modelPath);
    const compiled = await compileWasm(model, { releaseWeights: true });
    let copied = 0;
    for (const entry of compiled.program.weights) {
      const weight = reference.graph.initializers.get(entry.name);
      if (!weight?.raw || entry.encoding !== entry.dtype) continue;
      copied++;
      const bytes = compiled.weights.subarray(entry.offset, entry.offset + entry.byteLength);
      expect(Buffer.from(bytes).equals(Buffer.from(encodeWeight(weight.load(), entry.encoding))), entry.name).toBe(true);
    }
    expect(copied).toBeGreaterThan(3);
    // Released: the compiled model's initializers keep their types but no longer load.
    expect(() => model.graph.initializers.get('lm_head.weight')!.load()).toThrow(/released after compiling/);
  });

  it('external data: weights stream to model.onnx.data and the model runs the same', async () => {
    const out = path.join(root, 'external');
    const g = await generateDecoder({ config: TINY, out, ops: 'contrib', dtype: 'f32', externalData: true, seed: 0, testData: true });
    expect(g.dataPath).toBe(path.join(out, 'model.onnx.data'));
    // Every parameter plus the two rotary tables, 4 bytes each; the model file holds no weights.
    const rotary = 2 * TINY.maxPositions * (TINY.hiddenSize / TINY.numHeads / 2);
    expect(fs.statSync(g.dataPath!).size).toBe(4 * (parameterCount(TINY) + rotary));
    expect(g.modelBytes).toBeLessThan(64 * 1024);
    const model = await loadModel(g.modelPath);
    const weight = model.graph.initializers.get('lm_head.weight');
    expect(weight?.location.kind).toBe('external');
    const session = await referenceBackend.prepare(model);
    for (const set of g.testDataSets) {
      const data = readTestDataSet(set);
      const outputs = await session.run(bindInputs(model.graph, data));
      const result = compareTensors(outputs.get('logits')!, data.outputs[0].tensor, { atol: ATOL, rtol: 0 });
      expect(result.ok, result.reason ?? `max abs ${result.maxAbs}`).toBe(true);
    }
    // Same seed, same weights as the inline contrib model.
    const inline = readTestDataSet(path.join(root, 'contrib', 'test_data_set_0')).outputs[0].tensor;
    expect(compareTensors(readTestDataSet(g.testDataSets[0]).outputs[0].tensor, inline, { atol: 0, rtol: 0 }).ok).toBe(true);
  });

  for (const ops of ['primitive', 'contrib'] as const) {
    it(`f16 ${ops}: the reference interpreter matches onnxruntime-node within f16 tolerance`, async () => {
      const g = await generateDecoder({ config: TINY, out: path.join(root, `f16-${ops}`), ops, dtype: 'f16', externalData: false, seed: 0, testData: true });
      const model = await loadModel(g.modelPath);
      expect(model.graph.initializers.get('lm_head.weight')?.dtype).toBe('f16');
      const session = await referenceBackend.prepare(model);
      for (const set of g.testDataSets) {
        const data = readTestDataSet(set);
        const outputs = await session.run(bindInputs(model.graph, data));
        data.outputs.forEach(({ tensor: expected }, k) => {
          const name = model.graph.outputs[k].name;
          const result = compareTensors(outputs.get(name)!, expected, { atol: 2e-3, rtol: 0 });
          expect(result.ok, `${name}: ${result.reason ?? `max abs ${result.maxAbs}`}`).toBe(true);
        });
      }
    });
  }

  it('seeded weights are reproducible and have the intended scale', () => {
    const spec = { name: 'w', dims: [256, 256], parameter: true, init: { kind: 'normal' as const, std: 0.02, seed: 3 } };
    const a = [...weightChunks(spec, 1000)];
    const b = [...weightChunks(spec, 1 << 20)];
    const flat = (chunks: Float32Array[]): number[] => chunks.flatMap((c) => Array.from(c));
    expect(flat(a)).toEqual(flat(b));
    const values = flat(a);
    const mean = values.reduce((s, v) => s + v, 0) / values.length;
    const std = Math.sqrt(values.reduce((s, v) => s + (v - mean) ** 2, 0) / values.length);
    expect(Math.abs(mean)).toBeLessThan(1e-3);
    expect(std).toBeGreaterThan(0.019);
    expect(std).toBeLessThan(0.021);
  });

  it('the fast f32 → f16 weight encoder rounds exactly like ir/float', () => {
    const words = new Uint32Array(1);
    const f = new Float32Array(words.buffer);
    const check = (bits: number): void => {
      words[0] = bits;
      if (Number.isNaN(f[0])) return;
      expect(f32BitsToF16Bits(bits), `${f[0]} (0x${bits.toString(16)})`).toBe(numberToF16Bits(f[0]));
    };
    // Every f16 boundary region: exponents around the subnormal, normal and overflow edges.
    for (let exp = 90; exp <= 160; exp++) {
      for (const mant of [0, 1, 0xfff, 0x1000, 0x1001, 0x2000, 0x3000, 0x7fe000, 0x7ff000, 0x7fffff, 0x400000, 0x401000]) {
        check((exp << 23) | mant);
        check((0x80000000 | (exp << 23) | mant) >>> 0);
      }
    }
    const u = seededRandom(11);
    for (let i = 0; i < 20000; i++) check(Math.floor(u() * 2 ** 32) >>> 0);
  });

  it('--matmulnbits 4: projections and lm_head become MatMulNBits; the reference interpreter matches ORT on it', async () => {
    const out = path.join(root, 'nbits4');
    const made = await generateDecoder({ config: TINY, out, ops: 'primitive', dtype: 'f32', externalData: true, seed: 0, testData: true, matmulNBits: { bits: 4, blockSize: 32 } });
    expect(made.parameters).toBe(parameterCount(TINY));
    const model = await loadModel(made.modelPath);
    verifyModel(model);
    const ops = model.graph.nodes.map((n) => n.op);
    // 7 projections per layer and lm_head; the attention score MatMuls stay float.
    expect(ops.filter((op) => op === 'MatMulNBits').length).toBe(TINY.numLayers * 7 + 1);
    expect(ops.filter((op) => op === 'MatMul').length).toBe(TINY.numLayers * 2);
    // The ORT outputs written as test data agree with llmcc's reference interpreter on the nbits graph.
    const session = await referenceBackend.prepare(model);
    for (const set of made.testDataSets) {
      const data = readTestDataSet(set);
      const outputs = await session.run(bindInputs(model.graph, data));
      data.outputs.forEach(({ tensor: expected }, k) => {
        const name = model.graph.outputs[k].name;
        const result = compareTensors(outputs.get(name)!, expected, { atol: ATOL, rtol: 0 });
        expect(result.ok, `${set} ${name}: ${result.reason ?? `max abs ${result.maxAbs}`}`).toBe(true);
      });
    }
    await expect(generateDecoder({ config: TINY, out: path.join(root, 'nbits2'), ops: 'primitive', dtype: 'f32', externalData: false, seed: 0, testData: false, matmulNBits: { bits: 2, blockSize: 32 } }))
      .rejects.toThrow(/--matmulnbits takes 4/);
  });

  it('the 1b preset has about 1.1 B parameters', () => {
    const config = resolveConfig('1b');
    expect(parameterCount(config)).toBeGreaterThan(1.05e9);
    expect(parameterCount(config)).toBeLessThan(1.15e9);
  });

  it('reads a Hugging Face style config file and rejects bad shapes with LlmccError', () => {
    const file = path.join(root, 'config.json');
    fs.writeFileSync(file, JSON.stringify({ hidden_size: 96, num_attention_heads: 6, num_key_value_heads: 2, num_hidden_layers: 1 }));
    const config = resolveConfig(file);
    expect(config).toMatchObject({ hiddenSize: 96, numHeads: 6, numKvHeads: 2, numLayers: 1, vocabSize: TINY.vocabSize });
    expect(() => validateConfig({ ...TINY, numKvHeads: 3 })).toThrow(LlmccError);
    expect(() => validateConfig({ ...TINY, numHeads: 5 })).toThrow(LlmccError);
    expect(() => resolveConfig(path.join(root, 'missing.json'))).toThrow(LlmccError);
    expect(defaultPrompt(TINY, 0).every((id) => id >= 0 && id < TINY.vocabSize)).toBe(true);
  });
});
