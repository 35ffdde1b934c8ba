import * as fs from 'node:fs';
import { Option, type Command } from 'commander';
import { LlmccError } from '../../ir/errors.js';
import type { WeightBits } from '../../ir/quant.js';
import type { LoweringOptions } from '../../passes/pipeline.js';
import { parseBitsMap, type QuantSchemeOptions } from '../../passes/quant/layers.js';
import { parseQuantMethod } from '../../passes/quant/gptq-layers.js';
import { bindInputs, readTestDataSet } from '../testdata.js';
import { SUPPORTED_PATTERNS, parsePattern } from '../../passes/sparsity/pattern.js';
import { WASM_LUT_LAYOUT } from '../../targets/wasm/kernels/lut/common.js';
import { DOT_WIDTHS, type DotWidth } from '../../passes/dot-lower.js';
import { neonDotWidths } from '../../targets/neon/matmul-choice.js';

/** The low-bit flags shared by `run`, `compile` and `inspect --quant`. */
export interface LoweringFlags {
  bits?: string;
  group: string;
  asym?: boolean;
  keep?: string[];
  bitsMap?: string;
  /** `--quant-method rtn|gptq`. */
  quantMethod?: string;
  /** `--calib-data <dir...>`: test-data-set folders calibrating GPTQ (default: data-free random tokens). */
  calibData?: string[];
  table: 'i8' | 'f32';
  g: string;
  fuse: boolean;
  /** `--no-fusion` makes this false: no graph fusions (passes/fusions). */
  fusion?: boolean;
  /** `--sparsity N:M` (2:4, 1:4, 2:8). */
  sparsity?: string;
  /** `--matmul lut|dot|auto`: the low-bit matmul kernel family (auto: the target's default). */
  matmul?: 'lut' | 'dot' | 'auto';
  /** The command's `--target`, which picks the `--matmul auto` default (neon compiles with wasm's layouts). */
  target?: string;
  /** neon `run --cpu`: cortex-a53 (no dotprod) changes the `--matmul auto` widths. */
  cpu?: string;
}

export function addQuantFlags(command: Command): Command {
  return command
    .addOption(new Option('--bits <b>', 'quantize float MatMul/Gemm weights: 1, 2, 3, 4, 8 or ternary').choices(['1', '2', '3', '4', '8', 'ternary']))
    .option('--group <n>', 'weights per scale along K', '32')
    .option('--asym', 'asymmetric quantization (zero points); default symmetric')
    .option('--keep <pattern...>', 'layers left in float: glob on node/weight name (e.g. "*lm_head*") or /regex/')
    .option('--bits-map <file.json>', 'per-layer bits: {"pattern": 2 | 4 | "ternary" | "keep", …}; first match wins')
    .option('--quant-method <method>', 'how codes are chosen: rtn (round to nearest) or gptq (calibrated error feedback)')
    .option('--calib-data <dir...>', 'test-data-set folders whose inputs calibrate gptq (default: seeded random tokens through the model)');
}

export function addLoweringFlags(command: Command): Command {
  return addQuantFlags(command)
    .addOption(new Option('--table <kind>', 'LUT entry type: i8 (quantized tables) or f32 (exact)').choices(['i8', 'f32']).default('i8'))
    .option('--g <n>', 'activations per LUT group (table has 2^(g-1) stored entries)', '4')
    .option('--no-fuse', 'keep the table precompute as its own op')
    .option('--no-fusion', 'skip the graph fusions (norms, activations, attention, QKV merge, MatMul epilogues) done by default for --lower and --target wasm')
    .addOption(new Option('--matmul <kind>', 'low-bit matmul kernels: lut (T-MAC tables), dot (int8 activations, vdotq_s32 on neon) or auto (per target: neon takes dot where it executes fewer instructions, wasm lut)').choices(['lut', 'dot', 'auto']).default('auto'))
    .addOption(new Option('--sparsity <n:m>', 'N:M-prune MatMul weights by magnitude (or keep a pattern they already have) and pack them; needs --bits').choices([...SUPPORTED_PATTERNS]));
}

function positiveInt(value: string, flag: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new LlmccError(`${flag} must be a positive integer, got '${value}'`);
  return n;
}

export function quantSchemeFromFlags(flags: LoweringFlags): QuantSchemeOptions | undefined {
  if (flags.bits === undefined) {
    if (flags.bitsMap || flags.keep?.length || flags.quantMethod || flags.calibData?.length) {
      throw new LlmccError('--keep, --bits-map, --quant-method and --calib-data need --bits');
    }
    return undefined;
  }
  const ternary = flags.bits === 'ternary';
  const options: QuantSchemeOptions = {
    bits: (ternary ? 2 : Number(flags.bits)) as WeightBits,
    groupSize: positiveInt(flags.group, '--group'),
    symmetric: !flags.asym,
    ternary,
    keep: flags.keep ?? [],
  };
  if (flags.quantMethod !== undefined) options.method = parseQuantMethod(flags.quantMethod);
  if (flags.calibData?.length) {
    if (options.method !== 'gptq') throw new LlmccError('--calib-data calibrates --quant-method gptq');
    const dirs = flags.calibData;
    options.gptq = { calibration: { bindFeeds: (graph) => dirs.map((dir) => bindInputs(graph, readTestDataSet(dir))) } };
  }
  if (flags.bitsMap) {
    let json: unknown;
    try {
      json = JSON.parse(fs.readFileSync(flags.bitsMap, 'utf8'));
    } catch (error) {
      throw new LlmccError(`cannot read bits map: ${error instanceof Error ? error.message : String(error)}`, flags.bitsMap);
    }
    options.bitsMap = parseBitsMap(json, flags.bitsMap);
  }
  return options;
}

/** Widths lowered to the dot path: all for `--matmul dot`, none for lut, the target's choice for auto. */
export function dotWidthsFor(matmul: LoweringFlags['matmul'], target: string | undefined, cpu?: string): readonly DotWidth[] {
  if (matmul === 'dot') return DOT_WIDTHS;
  if (matmul === 'lut') return [];
  // wasm (and the reference interpreter) keep the LUT kernels under auto.
  return target === 'neon' ? neonDotWidths(cpu) : [];
}

/** The lowering options of the flags; `target` picks the plane layout its LUT kernel wants. */
export function loweringFromFlags(flags: LoweringFlags, target?: string): LoweringOptions {
  const quantize = quantSchemeFromFlags(flags);
  // wasm's fast LutMatMul reads 16 interleaved rows (and their scales) per v128 load.
  const tiles = target === 'wasm'
    ? {
      rowsPerTile: WASM_LUT_LAYOUT.rowsPerTile, rowsPerTileFallback: true, tiledScales: WASM_LUT_LAYOUT.tiledScales,
      indicesPerByte: WASM_LUT_LAYOUT.indicesPerByte, packAbovePlaneBytes: WASM_LUT_LAYOUT.packAbovePlaneBytes,
    }
    : {};
  return {
    ...(quantize ? { quantize } : {}),
    ...(flags.sparsity ? { sparsity: parsePattern(flags.sparsity) } : {}),
    lut: { g: positiveInt(flags.g, '--g'), table: flags.table, ...tiles },
    dot: { widths: dotWidthsFor(flags.matmul, flags.target ?? target, flags.cpu) },
    fuse: flags.fuse,
    fusion: flags.fusion ?? true,
  };
}
