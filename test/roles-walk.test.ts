import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serverConfigSchema } from '../src/http/config.js';
import { ROUTE_ROLES, type RegisteredRoute } from '../src/http/roles.js';
import { stateUrlFor } from './helpers/server.js';
import { startServer, type RunningServer } from '../src/http/server.js';

/**
 * The role model (src/http/roles.ts) walked on a real server: every route the running Fastify
 * app registered × admin, member, viewer, no token, an unknown token and a garbage token, each
 * answer's class checked against the route's declared role. The route list comes from the app
 * itself, so a route added later is walked too (and one without a declared role stops the start).
 */

let dataDir: string;
let server: RunningServer;
const tokens: Record<string, string | null> = {};

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'tightloop-roles-'));
  server = await startServer(serverConfigSchema.parse({ dataDir, stateUrl: await stateUrlFor(dataDir), port: 0, logLevel: 'silent' }), pino({ level: 'silent' }));
  tokens.admin = server.adminToken ?? '';
  tokens.member = (await server.createUser('mia', 'member')).token;
  tokens.viewer = (await server.createUser('vic', 'viewer')).token;
  tokens.none = null;
  tokens.unknown = `tl_${'A'.repeat(43)}`;
  tokens.garbage = 'not-a-token';
});

afterAll(async () => {
  await server.close();
  rmSync(dataDir, { recursive: true, force: true });
});

const HEX32 = '0123456789abcdef0123456789abcdef';
function concrete(url: string): string {
  return url
    .replace(/:traceId|:groupId/g, HEX32)
    .replace(/:projectId/g, '999999')
    .replace(/:[A-Za-z]+/g, 'nonexistent')
    .replace(/\/\*$/, '/no-such-page');
}

async function call(method: string, path: string, token: string | null): Promise<number> {
  const ac = new AbortController();
  const headers: Record<string, string> = token === null ? {} : { authorization: `Bearer ${token}` };
  const withBody = method === 'POST' || method === 'PUT' || method === 'PATCH';
  if (withBody) headers['content-type'] = 'application/json';
  const res = await fetch(server.url + path, { method, headers, body: withBody ? '{}' : undefined, signal: ac.signal });
  // Streams (the live log tail) never end: the status is all this walk needs.
  ac.abort();
  return res.status;
}

const RANK: Record<string, number> = { viewer: 1, member: 2, admin: 3 };

describe('role model', () => {
  it('every registered route × every identity answers as its declared role says', async () => {
    const routes = server.routes().filter((r) => r.method !== 'HEAD');
    expect(routes.length).toBeGreaterThan(70);
    const wrong: string[] = [];
    let walked = 0;
    for (const route of routes) {
      const path = concrete(route.url);
      const got: Record<string, number> = {};
      for (const [who, token] of Object.entries(tokens)) {
        got[who] = await call(route.method, path, token);
        walked++;
      }
      const bad = (who: string, why: string): void => { wrong.push(`${route.method} ${route.url} as ${who}: ${got[who]} (${why})`); };
      if (route.role === 'public') {
        for (const who of Object.keys(tokens)) if (got[who] === 401 || got[who] === 403) bad(who, 'public route');
      } else if (route.role === 'ingest') {
        // Ingest authenticates on its own terms: the caller's API role changes nothing.
        for (const who of Object.keys(tokens)) if (got[who] !== got.none) bad(who, `ingest answered ${got.none} without a token`);
      } else {
        for (const who of ['none', 'unknown', 'garbage']) if (got[who] !== 401) bad(who, 'expected 401');
        for (const who of ['admin', 'member', 'viewer']) {
          const allowed = RANK[who] >= RANK[route.role];
          if (!allowed && got[who] !== 403) bad(who, `expected 403: needs ${route.role}`);
          if (allowed && got[who] === 401) bad(who, 'expected not 401');
          // A route with a condition (an admin grant, your own token) may still refuse a non-admin.
          if (allowed && got[who] === 403 && (route.condition === undefined || who === 'admin')) bad(who, `expected not 403: ${route.role} suffices`);
          if (got[who] >= 500) bad(who, 'server error');
        }
      }
    }
    console.log(`role walk: ${routes.length} routes × ${Object.keys(tokens).length} identities = ${walked} calls, ${wrong.length} wrong`);
    expect(wrong).toEqual([]);
  }, 120_000);

  it('only self-service routes let a viewer change anything; no declared route is left unregistered', () => {
    const registered = new Set(server.routes().map((r: RegisteredRoute) => `${r.method} ${r.url}`));
    for (const key of Object.keys(ROUTE_ROLES)) expect(registered, key).toContain(key);
    const viewerWrites = Object.entries(ROUTE_ROLES)
      .filter(([key, rule]) => !key.startsWith('GET ') && rule.role === 'viewer')
      .map(([key]) => key).sort();
    // Your own API tokens and your own gateway password: nothing else.
    expect(viewerWrites).toEqual(['DELETE /api/tokens/:id', 'POST /api/gateway/credentials', 'POST /api/tokens']);
  });

  it('the OpenAPI document states the required role of every operation', async () => {
    const doc = (await (await fetch(`${server.url}/api/openapi.json`)).json()) as { paths: Record<string, Record<string, Record<string, unknown>>> };
    const missing: string[] = [];
    for (const r of server.routes()) {
      // CORS preflights (OPTIONS, public) are browser plumbing, not API operations.
      if (r.method === 'HEAD' || r.method === 'OPTIONS' || r.url === '/' || r.url === '/*') continue;
      const path = r.url.replace(/:([A-Za-z]+)/g, '{$1}');
      // The Sentry routes answer with and without the trailing slash; the document lists one.
      const op = (doc.paths[path] ?? doc.paths[`${path}/`])?.[r.method.toLowerCase()];
      if (op?.['x-required-role'] !== r.role) missing.push(`${r.method} ${r.url}: ${String(op?.['x-required-role'])}`);
    }
    expect(missing).toEqual([]);
  });
});
