#!/usr/bin/env node
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { benchDecodersCommand, benchGemvCommand, type BenchDecodersCliOptions, type BenchGemvOptions } from './commands/bench.js';
import { compileCommand, type CompileOptions } from './commands/compile.js';
import { conformanceCommand } from './commands/conformance.js';
import { neonGemvCommand, type NeonGemvCliOptions } from '../bench/neon-gemv.js';
import { diffCommand, type DiffCliOptions } from './diff.js';
import { generateCommand, type GenerateCliOptions } from './commands/generate.js';
import { DEFAULT_NOISE_SNRS, inspectCommand, type InspectOptions } from './commands/inspect.js';
import { runCommand, type RunOptions } from './commands/run.js';
import { benchTunedCommand, tuneCommand, type BenchTunedOptions, type TuneCliOptions } from './commands/tune.js';
import { EXIT_INVALID, reportError } from './errors.js';
import { addLoweringFlags, addQuantFlags } from './lowering-options.js';
import { lineProgressSink, setQuantProgressSink } from '../../passes/quant/progress.js';
import { DEFAULT_WARMUP_TOKENS, benchDecodeCommand, type BenchDecodeCliOptions } from '../bench/decode.js';

function parseNumber(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0) throw new InvalidArgumentError('expected a non-negative number');
  return n;
}

function buildProgram(exit: (code: number) => void): Command {
  const program = new Command('llmcc')
    .description('Compiler for low-bit LLM inference: ONNX in, target kernels out.')
    .option('--verbose', 'print stack traces with errors')
    .showHelpAfterError()
    .exitOverride()
    .configureOutput({
      writeErr: (s) => process.stderr.write(s.startsWith('error:') ? `llmcc: ${s}` : s),
    });

  addQuantFlags(program.command('inspect')
    .description('opsets, op histogram, parameters by dtype, inputs/outputs, and op × target support')
    .argument('<model>', 'model.onnx')
    .option('--json', 'machine-readable report')
    .option('--quant', 'per-layer SQNR (weight and layer output) of quantizing with --bits')
    .option('--data <dir...>', 'with --quant: test data sets; the first calibrates the output SQNR, on each the quantized model\'s first output is compared with the expected one (cosine)')
    .option('--noise [snrs]', `with --quant --data: also the cosine under i.i.d. weight noise at these SNRs in dB (q = the quantizer's mean weight SQNR; default ${DEFAULT_NOISE_SNRS})`)
    .option('--noise-seeds <n>', 'noise draws per SNR', '16')
    .option('--cosine-bar <c>', 'count the draws whose cosine reaches this', '0.99'))
    .action(async (model: string, opts: InspectOptions) => exit(await inspectCommand(model, opts)));

  addLoweringFlags(program.command('run')
    .description('run a model on a backend-test data set and compare with its outputs (exit 0 ok, 1 mismatch, 2 invalid input)')
    .argument('<model>', 'model.onnx, or a compiled bundle (model.llmcc)')
    .requiredOption('--data <dir>', 'test_data_set directory with input_K.pb (and output_K.pb)')
    .option('--target <name>', 'target to run on', 'ref')
    .option('--atol <a>', 'absolute tolerance (default by dtype: f32 1e-4, f16/bf16 1e-2, integers exact)', parseNumber)
    .option('--rtol <r>', 'relative tolerance (default 0, f64 1e-5)', parseNumber)
    .option('--out <dir>', 'also write the outputs as <dir>/output_K.pb')
    .option('--host', 'neon: build for the host through SIMDe instead of aarch64 under qemu')
    .option('--cpu <name>', 'neon: qemu CPU, max (+dotprod build, default) or cortex-a53 (no dotprod)')
    .option('--sanitize', 'neon: host build with AddressSanitizer and UBSan')
    .option('--lower', 'run after low-bit lowering (pre-quantized import, --bits quantization, LUT lowering, fusion)')
    .option('--stats', 'print what each pass did')
    .option('--threads <n>', 'wasm: threads for the LUT matmuls (Node worker threads; same result as 1)', parseNumber))
    .action(async (model: string, opts: RunOptions) => exit(await runCommand(model, opts)));

  program.command('conformance')
    .description('run every ONNX backend-test directory under <dir>')
    .argument('<dir>', 'folder of backend-test directories')
    .option('--target <name>', 'target to run on', 'ref')
    .option('--filter <regex>', 'only tests whose name matches')
    .option('--json <file>', 'write the results as JSON')
    .option('--host', 'neon: build for the host through SIMDe instead of aarch64 under qemu')
    .option('--cpu <name>', 'neon: qemu CPU, max (+dotprod build, default) or cortex-a53 (no dotprod)')
    .option('--sanitize', 'neon: host build with AddressSanitizer and UBSan')
    .action(async (dir: string, opts: { target: string; filter?: string; json?: string; host?: boolean; cpu?: string; sanitize?: boolean }) =>
      exit(await conformanceCommand(dir, opts)));

  addLoweringFlags(program.command('compile')
    .description('compile a model: --target wasm -o model.llmcc writes a bundle, --target neon -o DIR a C project; --emit ir prints the verified, typed IR')
    .argument('<model>', 'model.onnx')
    .addOption(new Option('--emit <what>', 'what to produce').choices(['ir']))
    .addOption(new Option('--target <name>', 'compile for a target: wasm writes a bundle, neon a C project folder, with -o').choices(['wasm', 'neon']))
    .option('-o, --output <file>', 'write to a file instead of stdout (the bundle, with --target)')
    .option('--data <dir>', 'neon: specialise on the input shapes of this test data set (and copy its inputs into the project)')
    .option('--shape <spec...>', 'neon: input shapes as name=d0,d1,…')
    .option('--embed-weights', 'neon: weights as arrays in model.c instead of model/weights.bin')
    .option('--lower', 'apply low-bit lowering first (pre-quantized import, --bits quantization, LUT lowering, fusion)')
    .option('--stats', 'print what each pass did (to stderr)')
    .option('--tuning-db <file>', 'tuning database (default $LLMCC_TUNING_DB, else ~/.cache/llmcc/tuning.json)')
    .option('--tune [mode]', 'search the tunable kernels the database lacks first (default or exhaustive)')
    .option('--no-tuning', 'ignore the tuning database (default knobs)'))
    .action(async (model: string, opts: CompileOptions) => exit(await compileCommand(model, opts)));

  addLoweringFlags(program.command('tune')
    .description('search tile/unroll knobs of the tunable kernels (cost model, then measurement) into the tuning database')
    .argument('<model>', 'model.onnx')
    .addOption(new Option('--target <name>', 'target to tune for').choices(['wasm']).makeOptionMandatory())
    .option('--lower', 'apply low-bit lowering first, as compile --lower does (tune what compile will build)')
    .option('--tuning-db <file>', 'tuning database (default $LLMCC_TUNING_DB, else ~/.cache/llmcc/tuning.json)')
    .addOption(new Option('--tune <mode>', 'search effort: default (≤ 10 s per decoder) or exhaustive').choices(['default', 'exhaustive']).default('default'))
    .option('--force', 'search again ops the database already has')
    .option('--stats', 'print what each pass did (to stderr)'))
    .action(async (model: string, opts: TuneCliOptions) => exit(await tuneCommand(model, opts)));

  addLoweringFlags(program.command('diff')
    .description('run a graph on every target and the reference with all intermediates exposed; the largest disagreement per op (exit 0 within tolerance, 1 beyond)')
    .argument('<model>', 'model.onnx, a model folder, or a folder of model folders (the conformance suite, shared models)')
    .option('--data <dir>', 'test_data_set directory (default: the model folder\'s first test_data_set_N)')
    .option('--targets <list>', 'comma-separated targets (default: every in-process target; name neon to include it)')
    .option('--atol <a>', 'absolute tolerance (default by dtype: f32 1e-4, f16/bf16 1e-2, integers exact)', parseNumber)
    .option('--rtol <r>', 'relative tolerance (default by dtype: f32 1e-3, f16 1e-2, bf16 2e-2)', parseNumber)
    .option('--isolate', 'run each node alone, fed the reference values of its inputs: each op\'s own error, not accumulated')
    .option('--lower', 'diff after low-bit lowering (each target with its own LUT layout)')
    .option('--filter <regex>', 'folder of models: only those whose path matches')
    .option('--limit <n>', 'folder of models: at most n models', parseNumber)
    .option('--json <file>', 'write every value\'s disagreement as JSON'))
    .action(async (model: string, opts: DiffCliOptions) => exit(await diffCommand(model, opts)));

  program.command('generate')
    .description('generate tokens with a decoder (KV cache): prefill, then one token per step; prints ids, tokens/s, time to first token')
    .argument('<model>', 'model.onnx, a compiled bundle (model.llmcc), or a model folder / genai_config.json (a pipeline of graphs too)')
    .requiredOption('--prompt-ids <ids>', 'prompt token ids, comma-separated')
    .option('--target <name>', 'target to run on', 'ref')
    .option('--max-tokens <n>', 'most new tokens', parseNumber, 32)
    .option('--temperature <t>', 'sampling temperature (0 = greedy)', parseNumber)
    .option('--top-k <k>', 'sample among the k most likely tokens', parseNumber)
    .option('--top-p <p>', 'sample among the most likely tokens covering probability p', parseNumber)
    .option('--seed <s>', 'sampling seed', parseNumber)
    .option('--stop <ids>', 'stop after any of these token ids (comma-separated)')
    .option('--json', 'last line: {"tokens": [...], "tokens_per_s": ..., "ttft_ms": ...}')
    .option('--host', 'neon: build for the host through SIMDe instead of aarch64 under qemu')
    .option('--cpu <name>', 'neon: qemu CPU, max (+dotprod build, default) or cortex-a53 (no dotprod)')
    .option('--threads <n>', 'wasm: threads for the LUT matmuls (Node worker threads; same tokens as 1)', parseNumber)
    .action(async (model: string, opts: GenerateCliOptions) => exit(await generateCommand(model, opts)));

  const bench = program.command('bench')
    .description('benchmarks; bare `bench` runs the default GEMV/GEMM suite (llmcc-wasm vs ONNX Runtime)')
    .option('--json <file>', 'write the results as JSON')
    .option('--no-cold', 'skip the cold (rotating layers) regime')
    .option('--no-ort', 'skip the ONNX Runtime rows')
    .action(async (opts: BenchGemvOptions) => exit(await benchGemvCommand(opts, false)));
  bench.command('gemv')
    .description('one GEMV (M=1) or small GEMM layer: llmcc-wasm LUT kernel vs ONNX Runtime, hot and cold')
    .option('--k <k>', 'input features', parseNumber)
    .option('--n <n>', 'output features (default K)', parseNumber)
    .option('--bits <b>', 'weight bits: 1, 2, 3, 4 or ternary (comma-separated list)', '2')
    .option('--m <m>', 'activation rows (1 = GEMV)', parseNumber)
    .option('--group-size <g>', 'quantization group size', parseNumber)
    .option('--budget <ms>', 'timed milliseconds per measurement', parseNumber)
    .option('--json <file>', 'write the results as JSON')
    .option('--no-cold', 'skip the cold regime')
    .option('--no-hot', 'skip the hot regime')
    .option('--no-ort', 'skip the ONNX Runtime rows')
    .option('--dot', 'also the int8-activation dot-product kernels (--matmul dot) beside the LUT rows')
    .option('--sparsity <n:m>', 'instead: N:M sparse vs dense kernels (LUT and dequant) at the same bits, hot, one run')
    // `bench` defines --json/--no-cold/--no-ort too and takes them when given after `gemv`.
    .action(async (opts: BenchGemvOptions, cmd: Command) => {
      const parent = (cmd.parent?.opts() ?? {}) as BenchGemvOptions;
      const off = (key: 'cold' | 'ort'): boolean => opts[key] === false || parent[key] === false;
      const merged: BenchGemvOptions = { ...opts, cold: !off('cold'), ort: !off('ort') };
      const json = opts.json ?? parent.json;
      if (json !== undefined) merged.json = json;
      exit(await benchGemvCommand(merged, true));
    });
  bench.command('decode')
    .description('token generation of a decoder (the generated 1B LLaMA): llmcc-wasm at --bits vs onnxruntime-web and -node on its MatMulNBits 4-bit graph; TTFT, tokens/s, peak RSS, each in a child process')
    .option('--model <file>', 'float decoder (llama-gen --dtype f16): llmcc quantizes it to each of --bits')
    .option('--nbits-model <file>', 'the same decoder with MatMulNBits 4-bit weights (llama-gen --matmulnbits 4), run by ORT')
    .option('--bits <b>', 'llmcc weight bits, comma-separated', '2,4')
    .option('--llmcc-nbits', 'also run llmcc on the MatMulNBits graph (pre-quantized import)')
    .option('--prompt-length <n>', 'prompt tokens', parseNumber, 8)
    .option('--max-tokens <n>', 'new tokens', parseNumber, 16)
    .option('--ort-threads <n>', 'ORT intra-op threads (llmcc-wasm runs on one)', parseNumber, 1)
    .option('--warmup <n>', 'new tokens of a warm-up generation at other positions, before the measured one (0: none)', parseNumber, DEFAULT_WARMUP_TOKENS)
    .option('--bundle-dir <dir>', 'where compiled bundles are kept (default: next to the model; reused while newer than the model)')
    .option('--rebuild', 'compile the llmcc bundles even when up to date')
    .option('--impls <list>', 'rows: llmcc, ort-web, ort-node', 'llmcc,ort-web,ort-node')
    .option('--json <file>', 'write the results as JSON')
    .option('--child <spec>', 'internal: run one implementation and print its JSON result')
    // `bench` defines --json too and takes it when given after `decode`.
    .action(async (opts: BenchDecodeCliOptions, cmd: Command) => {
      const json = opts.json ?? (cmd.parent?.opts() as { json?: string } | undefined)?.json;
      exit(await benchDecodeCommand(json === undefined ? opts : { ...opts, json }));
    });
  bench.command('decoders')
    .description('decode tokens/s and TTFT of every decoder graph in a folder (default ../shared/models) on llmcc-wasm vs onnxruntime-web and -node, same graph, each in a child process')
    .option('--models <dir>', 'folder of model folders (model.onnx + genai_config.json)')
    .option('--prompt-length <n>', 'prompt tokens', parseNumber)
    .option('--max-tokens <n>', 'new tokens (static caches stop at their capacity)', parseNumber)
    .option('--warmup <n>', `new tokens of a warm-up generation at other positions, before the measured one (0: none; default ${DEFAULT_WARMUP_TOKENS})`, parseNumber)
    .option('--rebuild', 'compile the llmcc bundles even when up to date')
    .option('--bundle-dir <dir>', 'where compiled bundles are kept (default: <tmp>/llmcc-bench-decoders)')
    .option('--json <file>', 'write the results as JSON')
    .action(async (opts: BenchDecodersCliOptions, cmd: Command) => {
      const json = opts.json ?? (cmd.parent?.opts() as { json?: string } | undefined)?.json;
      exit(await benchDecodersCommand(json === undefined ? opts : { ...opts, json }));
    });
  bench.command('neon-gemv')
    .description('dynamic aarch64 instructions per weight of the neon GEMV under qemu: LUT and int8 dot-product (vdotq) kernels side by side, with and without dotprod')
    .option('--k <k>', 'input features (default 4096)', parseNumber)
    .option('--n <n>', 'output features (default K)', parseNumber)
    .option('--bits <b>', 'comma-separated: 1, 2, 3, 4, 8, ternary', '1,2,3,4,8,ternary')
    .option('--group-size <g>', 'quantization group size (default 128)', parseNumber)
    .option('--json <file>', 'write the results as JSON')
    // `bench` has its own --json, which takes the flag when given after the subcommand too.
    .action(async (opts: NeonGemvCliOptions, cmd: Command) =>
      exit(await neonGemvCommand({ ...opts, json: opts.json ?? (cmd.parent?.opts() as { json?: string } | undefined)?.json })));
  addLoweringFlags(bench.command('tuned')
    .description("tuned vs default kernels for a model's tuned ops (from the tuning database), in one run")
    .argument('<model>', 'model.onnx')
    .option('--lower', 'apply low-bit lowering first, as compile --lower does')
    .option('--tuning-db <file>', 'tuning database (default $LLMCC_TUNING_DB, else ~/.cache/llmcc/tuning.json)')
    .option('--budget <ms>', 'timed milliseconds per op and regime', parseNumber)
    .option('--json <file>', 'write the results as JSON'))
    .action(async (model: string, opts: BenchTunedOptions) => exit(await benchTunedCommand(model, opts)));

  return program;
}

async function main(argv: string[]): Promise<void> {
  const verbose = argv.includes('--verbose');
  // Quantizing a large model takes minutes: say how far it is (small models print nothing).
  setQuantProgressSink(lineProgressSink((line) => process.stderr.write(`${line}\n`)));
  let code = 0;
  const program = buildProgram((c) => { code = c; });
  try {
    await program.parseAsync(argv);
  } catch (error) {
    if (error instanceof CommanderError) {
      // Help and version exit 0; usage errors are invalid input.
      code = error.exitCode === 0 ? 0 : EXIT_INVALID;
    } else {
      code = reportError(error, verbose);
    }
  }
  process.exitCode = code;
}

await main(process.argv);
