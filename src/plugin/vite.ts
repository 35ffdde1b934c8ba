/**
 * `llmcc/vite`: a Vite (and Rollup-compatible) plugin that compiles ONNX models at build time.
 *
 *   import modelUrl from './model.onnx?llmcc';          // or ?llmcc&bits=4&group=64
 *   const session = await load(new URL(modelUrl, location.href));
 *
 * `vite build` emits the bundle as a content-hashed asset and the import is its URL; the dev
 * server compiles on first import, caches (memory and Vite's cacheDir) and serves it.
 * See README.md in this folder.
 */
import * as path from 'node:path';
import type { Plugin, ResolvedConfig } from 'vite';
import { LlmccError } from '../../ir/errors.js';
import { cacheKey, compileModelFile } from './compile-model.js';
import { confineModelPath } from './confine.js';
import { DevBundleCache } from './dev-cache.js';
import { type LlmccPluginOptions, resolveSettings, settingsFromQuery } from './options.js';

export type { LlmccPluginOptions, ModelCompileSettings } from './options.js';

/** Resolved ids carry this prefix so no other plugin (assets, JSON, …) touches them. */
const VIRTUAL_PREFIX = '\0llmcc:';
const DEV_ROUTE = '@llmcc/';

interface ModelImport {
  file: string;
  params: URLSearchParams;
}

function splitQuery(id: string): { bare: string; params: URLSearchParams } {
  const q = id.indexOf('?');
  return q < 0 ? { bare: id, params: new URLSearchParams() } : { bare: id.slice(0, q), params: new URLSearchParams(id.slice(q + 1)) };
}

function parseVirtualId(id: string): ModelImport {
  const { bare, params } = splitQuery(id.slice(VIRTUAL_PREFIX.length));
  return { file: bare, params };
}

function assetName(file: string): string {
  return `${path.basename(file).replace(/\.onnx$/i, '')}.llmcc`;
}

export default function llmcc(options: LlmccPluginOptions = {}): Plugin {
  const marker = options.query ?? 'llmcc';
  const { query: _query, allowOutsideRoot: _allow, ...defaults } = options;
  let config: ResolvedConfig | undefined;
  let devCache: DevBundleCache | undefined;
  /** One compile per model and settings within a build. */
  const buildCache = new Map<string, ReturnType<typeof compileModelFile>>();

  const isModelImport = (id: string): boolean => splitQuery(id).params.has(marker);

  return {
    name: 'llmcc',
    // Before Vite's own resolver and asset handling, which would treat the .onnx as a file.
    enforce: 'pre',

    configResolved(resolved) {
      config = resolved;
      devCache = resolved.command === 'serve' ? new DevBundleCache(path.join(resolved.cacheDir, 'llmcc')) : undefined;
    },

    async resolveId(source, importer) {
      if (source.startsWith(VIRTUAL_PREFIX)) return source;
      if (!isModelImport(source)) return null;
      const { bare, params } = splitQuery(source);
      const root = config?.root ?? process.cwd();
      // Relative paths are joined here, not by Vite's resolver, which would already follow
      // symlinks and hide that one leaves the root; aliases and '/x.onnx' need the resolver.
      const relative = bare.startsWith('./') || bare.startsWith('../');
      const resolved = relative ? null : await this.resolve(bare, importer, { skipSelf: true });
      const candidate = resolved && !resolved.external ? splitQuery(resolved.id).bare
        : path.resolve(importer ? path.dirname(importer) : root, bare);
      const file = confineModelPath(candidate, root, options.allowOutsideRoot ?? false, importer);
      // Validate the query now so a typo fails at the import that has it.
      resolveSettings(defaults, settingsFromQuery(params, marker, file), file);
      params.delete(marker);
      const rest = params.toString();
      return `${VIRTUAL_PREFIX}${file}?${marker}${rest ? `&${rest}` : ''}`;
    },

    async load(id) {
      if (!id.startsWith(VIRTUAL_PREFIX)) return null;
      const { file, params } = parseVirtualId(id);
      const settings = resolveSettings(defaults, settingsFromQuery(params, marker, file), file);
      const key = await cacheKey(file, settings);
      if (devCache) {
        const entry = await devCache.get(key, () => compileModelFile(file, settings));
        for (const source of entry.sources) this.addWatchFile(source);
        const url = `${config?.base ?? '/'}${DEV_ROUTE}${key}/${assetName(file)}`;
        return `export default ${JSON.stringify(url)};`;
      }
      let job = buildCache.get(key);
      if (!job) {
        job = compileModelFile(file, settings);
        buildCache.set(key, job);
      }
      const asset = await job;
      for (const source of asset.sources) this.addWatchFile(source);
      const ref = this.emitFile({ type: 'asset', name: assetName(file), source: asset.bytes });
      return `export default import.meta.ROLLUP_FILE_URL_${ref};`;
    },

    buildEnd() {
      buildCache.clear();
    },

    configureServer(server) {
      server.middlewares.use((req, res, next) => {
        const pathname = (req.url ?? '').split('?')[0];
        const at = pathname.indexOf(`/${DEV_ROUTE}`);
        const match = at < 0 ? null : /^([0-9a-f]{16})\/[^/]+\.llmcc$/.exec(pathname.slice(at + 1 + DEV_ROUTE.length));
        if (!match || !devCache) return next();
        // Served only once its import was loaded (and compiled); a stale entry is a 404 until the module reloads.
        const entry = devCache.fresh(match[1]);
        if (!entry) {
          res.statusCode = 404;
          res.end('llmcc: bundle not compiled yet or its model changed; reload the page');
          return;
        }
        res.setHeader('Content-Type', 'application/octet-stream');
        res.setHeader('Cache-Control', 'no-cache');
        res.setHeader('Content-Length', String(entry.bytes.byteLength));
        res.end(Buffer.from(entry.bytes.buffer, entry.bytes.byteOffset, entry.bytes.byteLength));
      });
    },
  };
}

export { llmcc };

/** Thrown for a model a build may not read; re-exported so configs can recognise it. */
export { LlmccError };
