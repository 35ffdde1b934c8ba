/**
 * The int8-activation dot path on wasm: QuantizeActQ8 and QuantMatMulQ8 kernels built from the
 * shared kernel form, run in Node, and compared bit for bit with passes/dot/q8-math.ts (the
 * reference ops' math) — quantized activations, scales and sums, then Y in f32 — for every
 * width, symmetric, asymmetric and half-integer zero points, partial groups and tiles, bias.
 */
import { describe, expect, it } from 'vitest';
import { seededRandom } from '../ir/random.js';
import type { Attribute, Node, TensorType } from '../ir/graph.js';
import type { DType } from '../ir/dtype.js';
import { dequantizeCodes } from '../ir/ops/llmcc/QuantMatMul.js';
import { dotLayout, dotScalesAndOffsets, packDotWeights, unpackDotWeights } from '../passes/dot/layout.js';
import { dotMatMulQ8, quantizeActivationsQ8 } from '../passes/dot/q8-math.js';
import type { KernelBuildContext } from '../targets/wasm/kernel-def.js';
import { buildQuantizeActQ8 } from '../targets/wasm/kernels/QuantizeActQ8.js';
import { buildQuantMatMulQ8 } from '../targets/wasm/kernels/QuantMatMulQ8.js';
import { KernelRunner } from '../src/bench/kernel-runner.js';

function node(name: string, op: string, inputs: string[], values: Record<string, number | string>): Node {
  const attributes = new Map(Object.entries(values).map(([k, v]) => [k, typeof v === 'number' ? { kind: 'int', value: v } : { kind: 'string', value: v }] as [string, Attribute]));
  return { name, domain: 'llmcc', op, inputs, outputs: ['y'], attributes };
}

function context(n: Node, inputs: (TensorType | undefined)[]): KernelBuildContext {
  return { node: n, inputs, outputs: [], constant: () => undefined, name: n.name };
}

const tt = (dtype: DType, shape: number[]): TensorType => ({ dtype, shape });

interface Case { bits: number; ternary?: boolean; M: number; N: number; K: number; groupSize: number; zero: 'default' | 'integer' | 'half'; bias: boolean }

async function runCase(c: Case, seed: number) {
  const r = seededRandom(seed);
  const { M, N, K, groupSize, bits } = c;
  const ternary = c.ternary ?? false;
  const groups = Math.ceil(K / groupSize);
  const maxCode = ternary ? 2 : 2 ** bits - 1;
  const a = new Float32Array(M * K).map(() => (r() - 0.5) * 6);
  a.fill(0, 0, Math.min(K, groupSize)); // an all-zero block: scale 0, codes 0
  const codes = new Uint8Array(N * K).map(() => Math.floor(r() * (maxCode + 1)));
  codes.fill(maxCode, 0, Math.min(K, groupSize)); // extreme codes against ±127 activations
  const scales = new Float32Array(N * groups).map(() => 0.01 + r() * 0.1);
  const zeroPoints = c.zero === 'default' ? undefined
    : new Float32Array(N * groups).map(() => (c.zero === 'half' ? Math.floor(r() * maxCode) + 0.5 : Math.round(r() * maxCode)));
  const bias = c.bias ? new Float32Array(N).map(() => r() - 0.5) : undefined;
  const l = dotLayout({ bits, ternary, groupSize, K, N });
  const packed = packDotWeights(codes, l);
  const tiled = dotScalesAndOffsets(scales, zeroPoints, l)!;
  const act = quantizeActivationsQ8(a, M, K, groupSize);
  const want = dotMatMulQ8(act, packed, tiled.halfScales, tiled.offsets, bias, l, M);

  const quantizer = buildQuantizeActQ8(context(node('quant', 'QuantizeActQ8', ['a'], { group_size: groupSize }), [tt('f32', [M, K])]));
  const mmNode = node('mm', 'QuantMatMulQ8', ['q', 'qs', 'qz', 'p', 's', 'o', ...(bias ? ['b'] : [])], { bits, ternary: ternary ? 1 : 0, group_size: groupSize, K, N });
  const matmul = buildQuantMatMulQ8(context(mmNode, [tt('i8', [M, groups * groupSize]), tt('f32', [M, groups]), tt('i32', [M, groups]),
    tt('u8', [l.tiles, groups, l.groupBytes]), tt('f32', [l.tiles, groups, 4]), tt('i32', [l.tiles, groups, 4]), bias ? tt('f32', [N]) : undefined]));
  const runner = await KernelRunner.create([quantizer, matmul]);
  const pa = runner.put(a);
  const pq = runner.alloc(M * groups * groupSize);
  const pqs = runner.alloc(M * groups * 4);
  const pqz = runner.alloc(M * groups * 4);
  runner.call('quant', pa, pq, pqs, pqz, M);
  const weights = [packed, tiled.halfScales, tiled.offsets, ...(bias ? [bias] : [])].map((x) => runner.put(x));
  const py = runner.alloc(M * N * 4);
  runner.call('mm', pq, pqs, pqz, ...weights, py, M);
  return {
    act, want, codes, l, packed, a, scales, zeroPoints, bias,
    q: Array.from(runner.i8(pq, M * groups * groupSize)),
    actScales: Array.from(runner.f32(pqs, M * groups)),
    actSums: Array.from(runner.i32(pqz, M * groups)),
    y: Array.from(runner.f32(py, M * N)),
  };
}

const WIDTHS: { bits: number; ternary?: boolean }[] = [{ bits: 1 }, { bits: 2 }, { bits: 2, ternary: true }, { bits: 3 }, { bits: 4 }, { bits: 8 }];

describe('dot path kernels on wasm (bit-exact with the reference math)', () => {
  for (const w of WIDTHS) {
    const label = w.ternary ? 'ternary' : `${w.bits}-bit`;
    const cases: Case[] = [
      { ...w, M: 2, N: 8, K: 128, groupSize: 32, zero: 'default', bias: false },
      // Partial last group (K = 80) and a partial last tile (N = 10), with bias.
      { ...w, M: 3, N: 10, K: 80, groupSize: 32, zero: w.ternary ? 'default' : 'integer', bias: true },
      { ...w, M: 1, N: 7, K: 256, groupSize: 64, zero: w.ternary || w.bits === 1 ? 'default' : 'half', bias: true },
    ];
    cases.forEach((c, i) => {
      it(`${label}: M=${c.M} N=${c.N} K=${c.K} group ${c.groupSize}, ${c.zero} zero points${c.bias ? ', bias' : ''}`, async () => {
        const got = await runCase(c, 100 + i * 7 + w.bits);
        expect(Array.from(unpackDotWeights(got.packed, got.l))).toEqual(Array.from(got.codes));
        expect(got.q).toEqual(Array.from(got.act.q));
        expect(got.actScales).toEqual(Array.from(got.act.scales));
        expect(got.actSums).toEqual(Array.from(got.act.sums));
        expect(got.y).toEqual(Array.from(got.want));
        // And it is a matmul: close to the float dequantized product (int8 activation error).
        const wf = dequantizeCodes(got.codes, got.scales, got.zeroPoints, { bits: c.bits, ternary: c.ternary ?? false, groupSize: c.groupSize, k: c.K, n: c.N });
        let worst = 0, scale = 0;
        for (let m = 0; m < c.M; m++) {
          for (let n = 0; n < c.N; n++) {
            let exact = got.bias ? got.bias[n] : 0;
            for (let k = 0; k < c.K; k++) exact += got.a[m * c.K + k] * wf[n * c.K + k];
            worst = Math.max(worst, Math.abs(exact - got.y[m * c.N + n]));
            scale = Math.max(scale, Math.abs(exact));
          }
        }
        expect(worst / scale).toBeLessThan(0.03);
      });
    });
  }
});
