/**
 * Loads binaryen.js (one 15 MB ES module) without module loader hooks in the way.
 *
 * Under tsx (`npx tsx src/cli/main.ts`, scripts, the fuzz harness) every imported ES module goes
 * through tsx's load hook, which lexes binaryen's 15 MB for dynamic imports, rewrites it and
 * appends an inline source map that Node then parses: the import takes 30–50 s instead of
 * ~2 s, and dominated every wasm compile. binaryen's module is one async factory call plus
 * `export { x as default }`, so we evaluate its text as an async function body (its only
 * module-level features are `import.meta.url` and one dynamic `import("node:module")`, both
 * passed in). If the text ever stops matching that shape, we fall back to a plain import.
 */
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import type Binaryen from 'binaryen';

type BinaryenApi = typeof Binaryen;

/** `export{name as default}` at the very end of binaryen's index.js. */
const DEFAULT_EXPORT = /export\s*\{\s*([\w$]+)\s+as\s+default\s*\}\s*;?\s*$/;

async function loadBinaryen(): Promise<BinaryenApi> {
  const fast = await evaluateDirectly().catch(() => undefined);
  if (fast) return fast;
  return (await import('binaryen')).default;
}

async function evaluateDirectly(): Promise<BinaryenApi | undefined> {
  if (process.env.LLMCC_BINARYEN_IMPORT === '1') return undefined;
  const path = createRequire(import.meta.url).resolve('binaryen');
  const source = await readFile(path, 'utf8');
  const exported = DEFAULT_EXPORT.exec(source);
  if (!exported) return undefined;
  const rest = source.slice(0, exported.index);
  // Anything else module-level (static imports/exports, other dynamic imports) → not our shape.
  const dynamicImports = rest.split('import(').length - 1;
  if (dynamicImports > 1 || /(^|[;\n])\s*(import|export)[\s{*]/.test(rest)) return undefined;
  const body = `"use strict";\n${rest.replaceAll('import.meta.url', '__llmcc_meta_url').replace('import(', '__llmcc_import(')}\nreturn ${exported[1]};`;
  const AsyncFunction = Object.getPrototypeOf(async () => undefined).constructor as new (...args: string[]) => (
    importModule: (specifier: string) => Promise<unknown>, metaUrl: string) => Promise<BinaryenApi>;
  const factory = new AsyncFunction('__llmcc_import', '__llmcc_meta_url', body);
  const api = await factory((specifier) => import(specifier), pathToFileURL(path).href);
  return typeof api?.Module === 'function' ? api : undefined;
}

const binaryen: BinaryenApi = await loadBinaryen();
export default binaryen;
