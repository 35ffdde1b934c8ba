import * as fs from 'node:fs';
import * as path from 'node:path';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';
import type { DType } from '../../ir/dtype.js';
import { Tensor } from '../../ir/tensor.js';
import type { DecoderHints } from '../../src/runtime/generate.js';
import { REPO_ROOT } from './paths.js';
import { type StaticServer, serveStatic } from './browser-server.js';

/**
 * Drives the runtime in headless Chromium: serves the page (test/fixtures/browser), the built
 * runtime (dist/) and a folder of bundles, and calls the page's `window.harness` functions.
 * puppeteer-core never downloads a browser: the system one is used (Debian's
 * chromium-headless-shell, or chromium).
 */

const CHROMIUM_CANDIDATES = ['/usr/bin/chromium-headless-shell', '/usr/bin/chromium', '/usr/bin/chromium-browser'];
const PAGE_DIR = path.join(REPO_ROOT, 'test', 'fixtures', 'browser');
const DIST_DIR = path.join(REPO_ROOT, 'dist');

/** The system Chromium (or `LLMCC_CHROMIUM`), or an error saying how to install it. */
export function chromiumExecutable(): string {
  const chosen = process.env.LLMCC_CHROMIUM;
  if (chosen) {
    if (!fs.existsSync(chosen)) throw new Error(`LLMCC_CHROMIUM names ${chosen}, which does not exist`);
    return chosen;
  }
  const found = CHROMIUM_CANDIDATES.find((file) => fs.existsSync(file));
  if (!found) {
    throw new Error(`no Chromium found (looked at ${CHROMIUM_CANDIDATES.join(', ')}): apt-get install -y chromium-headless-shell, or set LLMCC_CHROMIUM`);
  }
  return found;
}

/** A tensor as it crosses into and out of the page: its raw element bytes in base64. */
export interface EncodedTensor {
  name: string;
  dtype: DType;
  shape: number[];
  base64: string;
}

function rawBytes(t: Tensor): Uint8Array {
  const data = t.numbers();
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

export function encodeTensor(name: string, t: Tensor): EncodedTensor {
  return { name, dtype: t.dtype, shape: [...t.shape], base64: Buffer.from(rawBytes(t)).toString('base64') };
}

export function decodeTensor(encoded: EncodedTensor): Tensor {
  const t = Tensor.zeros(encoded.dtype, encoded.shape);
  rawBytes(t).set(Buffer.from(encoded.base64, 'base64'));
  return t;
}

/** What each page call returns besides its result: the fetch/WebAssembly calls the runtime made. */
export interface Traced { calls: string[] }

export interface PageGenerateOptions {
  promptIds: number[];
  maxTokens: number;
  hints?: DecoderHints;
}

/** An error thrown in the page, as seen there. */
export interface PageError {
  name: string;
  message: string;
  isLlmccError: boolean;
}

/** generate() in the page: what it returned. */
export interface PageGenerateResult {
  tokens: number[];
  stopReason: string;
  cacheResident: boolean;
}

/** The functions test/fixtures/browser/harness.js exposes (the page's side of this contract). */
interface Harness {
  userAgent: string;
  run(url: string, feeds: EncodedTensor[]): Promise<Traced & { outputs: EncodedTensor[] }>;
  generate(url: string, options: PageGenerateOptions): Promise<Traced & PageGenerateResult & { steps: EncodedTensor[][] }>;
  loadError(url: string): Promise<Traced & { error?: PageError }>;
}

declare global {
  interface Window { harness: Promise<Harness> }
}

export interface BrowserRuntime {
  /** Where `bundleDir` is served: `${bundleBase}/<file>`. */
  bundleBase: string;
  server: StaticServer;
  userAgent: string;
  run(bundleFile: string, feeds: ReadonlyMap<string, Tensor>): Promise<{ outputs: Map<string, Tensor>; calls: string[] }>;
  /** generate() in the page; `steps`: each resident step's outputs (the logits: the cache stays in wasm memory). */
  generate(bundleFile: string, options: PageGenerateOptions): Promise<Traced & PageGenerateResult & { steps: Map<string, Tensor>[] }>;
  /** load() expected to fail: the error it threw (undefined if it did not). */
  loadError(bundleFile: string): Promise<Traced & { error?: PageError }>;
  close(): Promise<void>;
}

/** Launches one headless Chromium on the test page, with `bundleDir` served under /bundles/. */
export async function startBrowserRuntime(bundleDir: string): Promise<BrowserRuntime> {
  if (!fs.existsSync(path.join(DIST_DIR, 'src', 'runtime', 'index.js'))) {
    throw new Error('dist/ is not built: run npx tsc -p . (npm test does) before the browser tests');
  }
  const executablePath = chromiumExecutable();
  const server = await serveStatic({ '/': PAGE_DIR, '/dist/': DIST_DIR, '/bundles/': bundleDir });
  let browser: Browser | undefined;
  try {
    // --no-sandbox: CI runs as root, where Chromium's sandbox refuses to start.
    browser = await puppeteer.launch({ executablePath, headless: true, args: ['--no-sandbox'] });
    const page = await browser.newPage();
    const pageErrors = watchErrors(page);
    await page.goto(`${server.origin}/index.html`);
    const userAgent = await page.evaluate(async () => (await window.harness).userAgent).catch((error: unknown) => {
      throw new Error(`the test page did not start: ${String(error)}${pageErrors.length ? `; page errors: ${pageErrors.join('; ')}` : ''}`);
    });
    const bundleBase = `${server.origin}/bundles`;
    const opened = browser;
    return {
      bundleBase,
      server,
      userAgent,
      async run(bundleFile, feeds) {
        const encoded = [...feeds].map(([name, t]) => encodeTensor(name, t));
        const result = await page.evaluate(async (url, f) => (await window.harness).run(url, f), `${bundleBase}/${bundleFile}`, encoded);
        return { outputs: new Map(result.outputs.map((o) => [o.name, decodeTensor(o)])), calls: result.calls };
      },
      async generate(bundleFile, options) {
        const result = await page.evaluate(async (url, o) => (await window.harness).generate(url, o), `${bundleBase}/${bundleFile}`, options);
        return { ...result, steps: result.steps.map((step) => new Map(step.map((o) => [o.name, decodeTensor(o)]))) };
      },
      loadError: (bundleFile) =>
        page.evaluate(async (url) => (await window.harness).loadError(url), `${bundleBase}/${bundleFile}`),
      async close() {
        await opened.close();
        await server.close();
      },
    };
  } catch (error) {
    await browser?.close();
    await server.close();
    throw error;
  }
}

/**
 * The served dist/ modules older than their TypeScript source: the page would run stale code
 * (npm test builds first; a lone `vitest run` does not).
 */
export function staleModules(requests: readonly string[]): string[] {
  return requests.filter((r) => r.startsWith('/dist/') && r.endsWith('.js')).flatMap((r) => {
    const built = path.join(DIST_DIR, r.slice('/dist/'.length));
    const source = path.join(REPO_ROOT, r.slice('/dist/'.length).replace(/\.js$/, '.ts'));
    return fs.existsSync(source) && fs.statSync(source).mtimeMs > fs.statSync(built).mtimeMs ? [path.relative(REPO_ROOT, source)] : [];
  });
}

/** Collects the page's uncaught errors and failed requests, for failure messages. */
function watchErrors(page: Page): string[] {
  const errors: string[] = [];
  page.on('pageerror', (error) => errors.push(String(error)));
  page.on('console', (message) => { if (message.type() === 'error') errors.push(message.text()); });
  page.on('requestfailed', (request) => errors.push(`${request.url()}: ${request.failure()?.errorText ?? 'failed'}`));
  return errors;
}
