import type { FastifyInstance } from 'fastify';
import { apiError } from '../core/app-error.js';
import type { Gateway } from '../gateway/index.js';
import type { LogTailHub } from './log-tail.js';
import { hexId, type Query, severity, str } from './params.js';

/**
 * Read-only endpoints the console needs beyond the pillars' own APIs (inside the bearer scope):
 *
 * - `GET /api/logs/tail`: server-sent events, one `logs` event per committed group of matching
 *   lines (`data` is an array of LogRow), `dropped` when a slow reader lost lines. Filters:
 *   `q`, `service`, `severity`, `traceId` (as `GET /api/logs`). Browsers read it with `fetch`
 *   (EventSource cannot send the Authorization header). At most MAX_TAILS_PER_USER open per user
 *   and MAX_TAILS in all (429 `too_many_tails` past them).
 * - `GET /api/gateway/sessions`: live PostgreSQL gateway sessions (admins only).
 */

export interface GatewaySessionView {
  id: string;
  user: string | null;
  resource: string | null;
  mode: string | null;
  grantId: string | null;
  grantExpiresAt: string | null;
}

export interface ConsoleApiDeps {
  tail: LogTailHub;
  gateway?: Pick<Gateway, 'registry'>;
}

/** Live tails one user may hold open at once, and all users together (each holds a socket and a filter pass per committed batch). */
export const MAX_TAILS_PER_USER = 4;
export const MAX_TAILS = 64;

/** Keeps a quiet stream alive through proxies and lets the server notice a gone client. */
const HEARTBEAT_MS = 15_000;

export function registerConsoleApi(api: FastifyInstance, deps: ConsoleApiDeps): void {
  const open = new Set<() => void>();
  const tailsByUser = new Map<string, number>();
  // Streams never finish on their own: end them first, or closing the server would wait forever.
  api.addHook('preClose', (done) => {
    for (const end of [...open]) end();
    done();
  });

  api.get('/api/logs/tail', async (req, reply) => {
    const q = req.query as Query;
    const traceId = str(q, 'traceId');
    const filter = {
      q: str(q, 'q') || undefined,
      service: str(q, 'service') || undefined,
      minSeverity: severity(q, 'severity'),
      traceId: traceId === undefined || traceId === '' ? undefined : hexId(traceId, 'traceId', 32),
    };
    const user = req.principal?.userId ?? '';
    const mine = tailsByUser.get(user) ?? 0;
    if (mine >= MAX_TAILS_PER_USER) throw apiError('too_many_tails', `at most ${MAX_TAILS_PER_USER} live tails per user are open at once; close one first`, { retryAfterS: 5 });
    if (deps.tail.size >= MAX_TAILS) throw apiError('too_many_tails', `at most ${MAX_TAILS} live tails are open at once`, { retryAfterS: 5 });
    tailsByUser.set(user, mine + 1);
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      'x-accel-buffering': 'no',
    });
    res.write('retry: 2000\n: tail open\n\n');
    const unsubscribe = deps.tail.subscribe({
      filter,
      send: (rows) => {
        if (res.writableNeedDrain) return false;
        res.write(`event: logs\ndata: ${JSON.stringify(rows)}\n\n`);
        return true;
      },
      dropped: (count) => {
        if (!res.writableNeedDrain) res.write(`event: dropped\ndata: {"count":${count}}\n\n`);
      },
    });
    const ping = setInterval(() => res.write(': ping\n\n'), HEARTBEAT_MS);
    ping.unref();
    const end = (): void => {
      if (!open.delete(end)) return;
      const left = (tailsByUser.get(user) ?? 1) - 1;
      if (left > 0) tailsByUser.set(user, left);
      else tailsByUser.delete(user);
      clearInterval(ping);
      unsubscribe();
      res.end();
    };
    open.add(end);
    req.raw.once('close', end);
  });

  api.get('/api/gateway/sessions', (req) => {
    if (req.principal?.role !== 'admin') throw apiError('forbidden', 'this needs the admin role');
    const sessions: GatewaySessionView[] = (deps.gateway?.registry.sessions() ?? []).map((s) => ({
      id: s.id,
      user: s.userName ?? null,
      resource: s.resource?.name ?? null,
      mode: s.grant?.mode ?? null,
      grantId: s.grant?.id ?? null,
      grantExpiresAt: s.grant?.expiresAt ?? null,
    }));
    return { sessions };
  });
}

const errorBody = {
  description: 'Error',
  content: { 'application/json': { schema: { type: 'object', properties: { error: { type: 'object', properties: { code: { type: 'string' }, message: { type: 'string' } } } } } } },
};
const q = (name: string, description: string) => ({ name, in: 'query', schema: { type: 'string' }, description });

/** OpenAPI 3.1 path entries for these routes (merged into http/openapi.ts). */
export const consoleOpenApiPaths = {
  '/api/logs/tail': {
    get: {
      summary: 'Live tail of logs (server-sent events): `logs` events carry arrays of log rows as they are committed; `dropped` tells a slow reader how many lines it lost',
      parameters: [q('q', 'Case-insensitive substring of the body'), q('service', 'service.name'), q('severity', 'Minimum severity (number or name: debug, info, warn, error, fatal)'), q('traceId', '32 hex characters')],
      responses: { 200: { description: 'Event stream', content: { 'text/event-stream': { schema: { type: 'string' } } } }, 400: errorBody, 401: errorBody },
    },
  },
  '/api/gateway/sessions': {
    get: {
      summary: 'Live PostgreSQL gateway sessions: user, resource, access mode and when their grant ends (admin)',
      responses: { 200: { description: 'Sessions', content: { 'application/json': { schema: { type: 'object' } } } }, 401: errorBody, 403: errorBody },
    },
  },
};
