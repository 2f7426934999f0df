import { Readable } from 'node:stream';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { badRequest } from '../core/app-error.js';
import type { Principal } from './access.js';
import type { AuditChain, AuditQuery } from './audit.js';

/**
 * GET /api/audit (filters, JSON or NDJSON export) and GET /api/audit/verify. Admins only: the
 * trail names who touched which data.
 */

type Query = Record<string, string | undefined>;

function time(q: Query, name: string): string | undefined {
  const v = q[name];
  if (v === undefined || v === '') return undefined;
  const ms = /^\d+$/.test(v) ? Number(v) : Date.parse(v);
  if (!Number.isFinite(ms)) throw badRequest(`parameter '${name}': epoch ms or ISO 8601 expected`);
  return new Date(ms).toISOString();
}

function int(q: Query, name: string, min: number, max: number): number | undefined {
  const v = q[name];
  if (v === undefined || v === '') return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min || n > max) throw badRequest(`parameter '${name}' must be an integer from ${min} to ${max}`);
  return n;
}

function filters(q: Query): Omit<AuditQuery, 'limit'> {
  return {
    kind: q.kind, actor: q.actor, resource: q.resource, session: q.session,
    from: time(q, 'from'), to: time(q, 'to'), afterSeq: int(q, 'after', 0, Number.MAX_SAFE_INTEGER),
  };
}

export function registerAuditRoutes(app: FastifyInstance, audit: AuditChain, requireAdmin: (req: FastifyRequest) => Principal): void {
  app.get('/api/audit', async (req, reply) => {
    requireAdmin(req);
    const q = req.query as Query;
    const f = filters(q);
    if (q.format === 'ndjson') {
      // Streams the whole matching trail page by page, so an export never sits in memory.
      const limit = int(q, 'limit', 1, Number.MAX_SAFE_INTEGER) ?? Number.MAX_SAFE_INTEGER;
      async function* lines(): AsyncGenerator<string> {
        let after = f.afterSeq;
        let sent = 0;
        while (sent < limit) {
          const page = await audit.query({ ...f, afterSeq: after, limit: Math.min(1000, limit - sent) });
          for (const r of page) yield JSON.stringify(r) + '\n';
          sent += page.length;
          if (page.length < 1000) return;
          after = page[page.length - 1].seq;
        }
      }
      return reply.type('application/x-ndjson').send(Readable.from(lines()));
    }
    const records = await audit.query({ ...f, limit: int(q, 'limit', 1, 5000) ?? 100 });
    return { records, next: records.length > 0 ? records[records.length - 1].seq : null };
  });

  app.get('/api/audit/verify', async (req) => {
    requireAdmin(req);
    const q = req.query as Query;
    const seq = int(q, 'headSeq', 1, Number.MAX_SAFE_INTEGER);
    const hash = q.headHash;
    if ((seq === undefined) !== (hash === undefined)) throw badRequest('give headSeq and headHash together');
    return audit.verify(seq === undefined || hash === undefined ? undefined : { seq, hash });
  });
}
