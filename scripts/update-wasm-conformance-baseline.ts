/**
 * Records which conformance tests pass on the wasm target, so test/wasm-conformance.test.ts can
 * assert none is lost. Run after kernels land: npx tsx scripts/update-wasm-conformance-baseline.ts
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { runConformance } from '../src/conformance.js';
import { wasmBackend } from '../targets/wasm/backend.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const suite = path.resolve(root, '..', 'shared', 'conformance', 'onnx-node');
const summary = await runConformance(suite, wasmBackend);
const passed = summary.results.filter((r) => r.status === 'PASS').map((r) => r.test);
const out = path.join(root, 'test', 'baselines', 'conformance-wasm.json');
fs.writeFileSync(out, `${JSON.stringify({ target: 'wasm', passed }, null, 1)}\n`);
console.log(`${summary.passed} passed, ${summary.failed} failed, ${summary.skipped} unsupported -> ${path.relative(root, out)}`);
for (const r of summary.results.filter((x) => x.status === 'FAIL')) console.log(`${r.status} ${r.test}: ${r.detail}`);
