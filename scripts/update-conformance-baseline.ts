/**
 * Records which conformance tests pass on the reference interpreter, so the test suite can
 * assert none is lost. Run after making more tests pass: npx tsx scripts/update-conformance-baseline.ts
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { runConformance } from '../src/conformance.js';
import { referenceBackend } from '../targets/ref/backend.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const suite = path.resolve(root, '..', 'shared', 'conformance', 'onnx-node');
const summary = await runConformance(suite, referenceBackend);
const passed = summary.results.filter((r) => r.status === 'PASS').map((r) => r.test);
const out = path.join(root, 'test', 'baselines', 'conformance-ref.json');
fs.writeFileSync(out, `${JSON.stringify({ target: 'ref', passed }, null, 1)}\n`);
console.log(`${summary.passed} passed, ${summary.failed} failed, ${summary.skipped} skipped -> ${path.relative(root, out)}`);
for (const r of summary.results.filter((x) => x.status !== 'PASS')) console.log(`${r.status} ${r.test}: ${r.detail}`);
