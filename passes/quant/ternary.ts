import { LlmccError } from '../../ir/errors.js';
import { checkGrouping, roundScale, type QuantizedWeight, type ScaleDtype } from './rtn.js';

/**
 * Ternary absmean quantization (BitNet b1.58), per group instead of per tensor:
 * γ = mean|w| over the group, q = clamp(round(w / γ), −1, 1). Stored as 2-bit codes
 * q + 1 ∈ {0, 1, 2} with the ternary default zero point 1 and scale γ. An all-zero group
 * gets γ = 0 and codes 1 (dequantizes to 0).
 */
export function quantizeTernary(
  w: ArrayLike<number>, n: number, k: number, options: { groupSize: number; scaleDtype?: ScaleDtype },
): QuantizedWeight {
  const { groupSize } = options;
  const scaleDtype = options.scaleDtype ?? 'f32';
  checkGrouping(k, groupSize);
  if (w.length !== n * k) throw new LlmccError(`weight has ${w.length} elements, expected ${n}x${k}`);
  const groupsPerRow = k / groupSize;
  const codes = new Uint8Array(n * k);
  const scales = new Float32Array(n * groupsPerRow);
  for (let g = 0; g < n * groupsPerRow; g++) {
    const start = Math.floor(g / groupsPerRow) * k + (g % groupsPerRow) * groupSize;
    const end = start + groupSize;
    let sumAbs = 0;
    for (let i = start; i < end; i++) sumAbs += Math.abs(w[i]);
    const gamma = roundScale(sumAbs / groupSize, scaleDtype);
    scales[g] = gamma;
    for (let i = start; i < end; i++) {
      const q = gamma === 0 ? 0 : Math.max(-1, Math.min(1, Math.round(w[i] / gamma)));
      codes[i] = q + 1;
    }
  }
  return {
    info: { bits: 2, ternary: true, groupSize, symmetric: true, scaleDtype, layout: { kind: 'codes-nk' } },
    n, k, codes, scales,
  };
}
