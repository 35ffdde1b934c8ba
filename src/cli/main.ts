#!/usr/bin/env node
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { benchGemvCommand, type BenchGemvOptions } from './commands/bench.js';
import { compileCommand, type CompileOptions } from './commands/compile.js';
import { conformanceCommand } from './commands/conformance.js';
import { generateCommand, type GenerateCliOptions } from './commands/generate.js';
import { inspectCommand, type InspectOptions } from './commands/inspect.js';
import { runCommand, type RunOptions } from './commands/run.js';
import { EXIT_INVALID, reportError } from './errors.js';
import { addLoweringFlags, addQuantFlags } from './lowering-options.js';

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
    .option('--data <dir>', 'with --quant: calibrate the output SQNR on this test data set'))
    .action(async (model: string, opts: InspectOptions) => exit(await inspectCommand(model, opts)));

  addLoweringFlags(program.command('run')
    .description('run a model on a backend-test data set and compare with its outputs (exit 0 ok, 1 mismatch, 2 invalid input)')
    .argument('<model>', 'model.onnx, or a compiled bundle (model.llmcc)')
    .requiredOption('--data <dir>', 'test_data_set directory with input_K.pb (and output_K.pb)')
    .option('--target <name>', 'target to run on', 'ref')
    .option('--atol <a>', 'absolute tolerance (default by dtype: f32 1e-4, f16/bf16 1e-2, integers exact)', parseNumber)
    .option('--rtol <r>', 'relative tolerance (default 0, f64 1e-5)', parseNumber)
    .option('--out <dir>', 'also write the outputs as <dir>/output_K.pb')
    .option('--lower', 'run after low-bit lowering (pre-quantized import, --bits quantization, LUT lowering, fusion)')
    .option('--stats', 'print what each pass did'))
    .action(async (model: string, opts: RunOptions) => exit(await runCommand(model, opts)));

  program.command('conformance')
    .description('run every ONNX backend-test directory under <dir>')
    .argument('<dir>', 'folder of backend-test directories')
    .option('--target <name>', 'target to run on', 'ref')
    .option('--filter <regex>', 'only tests whose name matches')
    .option('--json <file>', 'write the results as JSON')
    .action(async (dir: string, opts: { target: string; filter?: string; json?: string }) =>
      exit(await conformanceCommand(dir, opts)));

  addLoweringFlags(program.command('compile')
    .description('compile a model: --target wasm -o model.llmcc writes a bundle; --emit ir prints the verified, typed IR')
    .argument('<model>', 'model.onnx')
    .addOption(new Option('--emit <what>', 'what to produce').choices(['ir']))
    .addOption(new Option('--target <name>', 'compile for a target and write a bundle with -o').choices(['wasm']))
    .option('-o, --output <file>', 'write to a file instead of stdout (the bundle, with --target)')
    .option('--lower', 'apply low-bit lowering first (pre-quantized import, --bits quantization, LUT lowering, fusion)')
    .option('--stats', 'print what each pass did (to stderr)'))
    .action(async (model: string, opts: CompileOptions) => exit(await compileCommand(model, opts)));

  program.command('generate')
    .description('generate tokens with a decoder (KV cache): prefill, then one token per step; prints ids, tokens/s, time to first token')
    .argument('<model>', 'model.onnx, or a compiled bundle (model.llmcc)')
    .requiredOption('--prompt-ids <ids>', 'prompt token ids, comma-separated')
    .option('--target <name>', 'target to run on', 'ref')
    .option('--max-tokens <n>', 'most new tokens', parseNumber, 32)
    .option('--temperature <t>', 'sampling temperature (0 = greedy)', parseNumber)
    .option('--top-k <k>', 'sample among the k most likely tokens', parseNumber)
    .option('--top-p <p>', 'sample among the most likely tokens covering probability p', parseNumber)
    .option('--seed <s>', 'sampling seed', parseNumber)
    .option('--stop <ids>', 'stop after any of these token ids (comma-separated)')
    .option('--json', 'last line: {"tokens": [...], "tokens_per_s": ..., "ttft_ms": ...}')
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
    .action(async (opts: BenchGemvOptions) => exit(await benchGemvCommand(opts, true)));

  return program;
}

async function main(argv: string[]): Promise<void> {
  const verbose = argv.includes('--verbose');
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
