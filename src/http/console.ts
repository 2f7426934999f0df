import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, extname, join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { routesPlugin } from './plugin.js';

/**
 * Serves the web console (the Vite build in `web/dist`) at `/`. The build is small (a few
 * hundred KB), so it is read once at start and kept in memory with a gzip copy of each text
 * file: no disk read per request. Hashed assets (`/assets/*`) are cached for a year; the HTML
 * is revalidated every time (ETag), so a new build is picked up on the next load. Any other
 * GET without a file extension outside `/api/` and `/v1/` answers the SPA's index.html, so the
 * console's URLs (e.g. `/traces?service=checkout`) can be shared and reloaded.
 */

interface ConsoleFile {
  type: string;
  body: Buffer;
  gzip: Buffer | undefined;
  etag: string;
  immutable: boolean;
}

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.json': 'application/json',
  '.txt': 'text/plain; charset=utf-8',
  '.map': 'application/json',
  '.woff2': 'font/woff2',
};

/** The console only talks to its own origin; inline styles are allowed for chart layout. */
const CSP = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

/** `web/dist` of this checkout, found from this file whether it runs from src/ or dist/src/. */
export function defaultConsoleDir(): string | undefined {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    const candidate = join(dir, 'web', 'dist');
    if (existsSync(join(candidate, 'index.html'))) return candidate;
    dir = dirname(dir);
  }
  return undefined;
}

function walk(root: string, dir: string, out: Map<string, ConsoleFile>): void {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) { walk(root, path, out); continue; }
    const url = '/' + relative(root, path).split(sep).join('/');
    const ext = extname(name).toLowerCase();
    const type = TYPES[ext] ?? 'application/octet-stream';
    const body = readFileSync(path);
    const compressible = /^(text\/|application\/json|image\/svg)/.test(type) && body.length > 512;
    out.set(url, {
      type, body, gzip: compressible ? gzipSync(body, { level: 9 }) : undefined,
      etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"`,
      immutable: url.startsWith('/assets/'),
    });
  }
}

export function loadConsoleFiles(dir: string): Map<string, ConsoleFile> {
  const files = new Map<string, ConsoleFile>();
  walk(dir, dir, files);
  return files;
}

const NOT_BUILT = `<!doctype html><meta charset="utf-8"><title>tightloop</title>
<p>The console is not built. Run <code>npm run build:web</code> (or <code>npm install</code>) and restart.
The API is at <a href="/api/openapi.json">/api/openapi.json</a>.</p>`;

function send(req: FastifyRequest, reply: FastifyReply, file: ConsoleFile): FastifyReply {
  void reply.header('content-type', file.type).header('etag', file.etag).header('x-content-type-options', 'nosniff')
    .header('cache-control', file.immutable ? 'public, max-age=31536000, immutable' : 'no-cache');
  if (file.type.startsWith('text/html')) {
    void reply.header('content-security-policy', CSP).header('referrer-policy', 'no-referrer');
  }
  if (file.gzip !== undefined) void reply.header('vary', 'accept-encoding');
  if (req.headers['if-none-match'] === file.etag) return reply.code(304).send();
  if (file.gzip !== undefined && /\bgzip\b/.test(req.headers['accept-encoding'] ?? '')) {
    return reply.header('content-encoding', 'gzip').send(file.gzip);
  }
  return reply.send(file.body);
}

export interface ConsoleOptions {
  /** Folder of the built console; default: `web/dist` of this checkout. */
  dir?: string;
}

/** A Fastify plugin serving the console; register it at the root (outside the API's auth). */
export function consolePlugin(opts: ConsoleOptions = {}): (app: FastifyInstance) => Promise<void> {
  return routesPlugin((app) => {
    const dir = opts.dir ?? defaultConsoleDir();
    const files = dir === undefined || !existsSync(join(dir, 'index.html')) ? new Map<string, ConsoleFile>() : loadConsoleFiles(dir);
    const index = files.get('/index.html');

    const handler = async (req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> => {
      const path = decodeURIComponent(req.url.split('?')[0]);
      if (path.startsWith('/api/') || path === '/api' || path.startsWith('/v1/')) {
        return reply.code(404).send({ error: { code: 'not_found', message: `no route ${req.method} ${path}` } });
      }
      const file = files.get(path);
      if (file !== undefined) return send(req, reply, file);
      // Paths with an extension are files; a missing one is a 404, not the app.
      if (extname(path) !== '') return reply.code(404).send({ error: { code: 'not_found', message: `no file ${path}` } });
      if (index === undefined) return reply.type('text/html; charset=utf-8').header('cache-control', 'no-cache').send(NOT_BUILT);
      return send(req, reply, index);
    };
    app.get('/', handler);
    app.get('/*', handler);
  });
}
