import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';

/**
 * A tiny static file server for the browser tests: URL prefixes mapped to folders, served on
 * 127.0.0.1 at a free port. MIME types matter: browsers refuse module scripts served as
 * anything but JavaScript, and `WebAssembly.*Streaming` needs `application/wasm`.
 */

const MIME: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.json': 'application/json',
  '.map': 'application/json',
  '.wasm': 'application/wasm',
  '.llmcc': 'application/octet-stream',
};

export interface StaticServer {
  /** `http://127.0.0.1:<port>` (a secure context, like localhost: WebCrypto works there). */
  origin: string;
  /** Paths requested so far (in order), so tests can tell what the page fetched. */
  requests: string[];
  /** The requested paths that were answered 404. */
  notFound: string[];
  close(): Promise<void>;
}

/** Serves each `prefix` (e.g. `/dist/`) from its folder; anything outside the folders is 404. */
export async function serveStatic(routes: Record<string, string>): Promise<StaticServer> {
  const requests: string[] = [];
  const notFound: string[] = [];
  const prefixes = Object.keys(routes).sort((a, b) => b.length - a.length);
  const server = http.createServer((request, response) => {
    const pathname = decodeURIComponent(new URL(request.url ?? '/', 'http://localhost').pathname);
    requests.push(pathname);
    const prefix = prefixes.find((p) => pathname.startsWith(p));
    const root = prefix === undefined ? undefined : path.resolve(routes[prefix]!);
    const file = root === undefined ? undefined : path.resolve(root, pathname.slice(prefix!.length));
    // Refuse anything that resolves outside its folder (`..`).
    if (!root || !file || !file.startsWith(root + path.sep) || !fs.statSync(file, { throwIfNoEntry: false })?.isFile()) {
      notFound.push(pathname);
      response.writeHead(404, { 'content-type': 'text/plain' }).end(`not found: ${pathname}`);
      return;
    }
    const type = MIME[path.extname(file)] ?? 'application/octet-stream';
    response.writeHead(200, { 'content-type': type, 'cache-control': 'no-store' });
    fs.createReadStream(file).pipe(response);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address() as AddressInfo;
  return {
    origin: `http://127.0.0.1:${port}`,
    requests,
    notFound,
    close: () => new Promise<void>((resolve, reject) => {
      server.closeAllConnections();
      server.close((error) => (error ? reject(error) : resolve()));
    }),
  };
}
