/**
 * Records which conformance tests pass on the neon target (qemu-aarch64 -cpu max, and the same
 * list must pass with -cpu cortex-a53), so test/neon-conformance.test.ts can assert none is lost.
 * Run after kernels land: npx tsx scripts/update-neon-conformance-baseline.ts
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { runNeonConformanceModes } from '../targets/neon/conformance.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const suite = path.resolve(root, '..', 'shared', 'conformance', 'onnx-node');
const [max, a53] = await runNeonConformanceModes(suite, ['qemu-max', 'qemu-a53']);
const passedA53 = new Set(a53.results.filter((r) => r.status === 'PASS').map((r) => r.test));
// Only tests passing in both modes: the baseline is asserted in both.
const passed = max.results.filter((r) => r.status === 'PASS' && passedA53.has(r.test)).map((r) => r.test);
const out = path.join(root, 'test', 'baselines', 'conformance-neon.json');
fs.writeFileSync(out, `${JSON.stringify({ target: 'neon', modes: ['qemu-max', 'qemu-a53'], passed }, null, 1)}\n`);
console.log(`-cpu max: ${max.passed} passed, ${max.failed} failed, ${max.skipped} unsupported; -cpu cortex-a53: ${a53.passed} passed, ${a53.failed} failed -> ${path.relative(root, out)}`);
for (const r of [...max.results, ...a53.results].filter((x) => x.status === 'FAIL')) console.log(`${r.status} ${r.test}: ${r.detail}`);
