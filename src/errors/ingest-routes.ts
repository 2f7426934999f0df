/**
 * Sentry-compatible ingest: POST /api/<project>/envelope/ and the older /api/<project>/store/.
 *
 * Registered in its own Fastify plugin, outside the bearer-token API plugin: Sentry SDKs
 * authenticate with the project's public key (`sentry_key` query parameter, `X-Sentry-Auth`
 * header, or the envelope header's `dsn`). Unknown key → 401; a key of another project → 403.
 * Bodies are read raw (gzip/deflate handled here) because envelopes are not JSON.
 */
import { gunzip, gunzipSync, inflate, inflateSync } from 'node:zlib';
import { promisify } from 'node:util';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { apiError, AppError } from '../core/app-error.js';
import { registerCors, SENTRY_CORS } from '../http/cors.js';
import type { SpanBatch, TelemetryBatches } from '../telemetry/index.js';
import { keyFromAuthHeader, keyFromDsn, parseEnvelope, type EnvelopeItem } from './envelope.js';
import type { IncomingEvent } from './model.js';
import type { ErrorPipeline } from './pipeline.js';
import type { Project, ProjectRegistry } from './projects.js';
import { healthDeltas, type HealthDelta, type ReleaseHealthStore } from './release-health.js';
import { fromSentryEvent, newEventId } from './sentry-event.js';
import { appendSpanItem } from './sentry-span.js';
import { appendTransaction, newSpanBatch } from './sentry-transaction.js';

export interface SentryIngestDeps {
  projects: ProjectRegistry;
  pipeline: ErrorPipeline;
  health: ReleaseHealthStore;
  /** The telemetry writer's submit (transactions become spans). */
  submitSpans: (batches: TelemetryBatches) => Promise<void>;
  /** Largest body, compressed and decompressed. */
  maxBodyBytes: number;
  /** Largest single envelope item (Sentry's own limit for an event is 1 MB). */
  maxItemBytes: number;
  /** Items accepted but not stored (client reports, attachments, profiles, ...), counted by type. */
  unstored: UnstoredItems;
}

/** Counts envelope items tightloop accepts but does not store, and says so once per type. */
export class UnstoredItems {
  private readonly counts = new Map<string, number>();
  constructor(private readonly log: { warn(obj: object, msg: string): void }) {}

  add(projectId: number, type: string, n = 1): void {
    const key = `${projectId}\u0000${type}`;
    const before = this.counts.get(key);
    if (before === undefined) {
      if (this.counts.size >= 1000) return; // types are the sender's choice: bound the map
      this.log.warn({ projectId, itemType: type }, 'Sentry envelope items of this type are accepted but not stored (counted in GET /api/projects; logged once)');
    }
    this.counts.set(key, (before ?? 0) + n);
  }

  /** Per type, for one project. */
  forProject(projectId: number): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [key, n] of this.counts) {
      const [p, type] = key.split('\u0000');
      if (p === String(projectId)) out[type] = n;
    }
    return out;
  }
}

const gunzipAsync = promisify(gunzip);
const inflateAsync = promisify(inflate);

async function decompress(body: Buffer, encoding: string | undefined, max: number): Promise<Buffer> {
  const enc = (encoding ?? 'identity').trim().toLowerCase();
  if (enc === 'identity' || enc === '') return body;
  if (enc !== 'gzip' && enc !== 'x-gzip' && enc !== 'deflate') {
    throw apiError('unsupported_encoding', `unsupported Content-Encoding '${enc}' (use gzip, deflate or identity)`);
  }
  try {
    // Small bodies inflate in well under a millisecond; the thread-pool round trip costs more.
    // Output in one chunk sized from the gzip trailer's ISIZE (capped: it is the sender's claim)
    // instead of 16 KiB chunks concatenated afterwards: ~40% less time for a 50 KB event.
    if (body.length < 64 * 1024) {
      const isize = enc !== 'deflate' && body.length >= 18 ? body.readUInt32LE(body.length - 4) : 64 * 1024;
      const chunkSize = Math.min(Math.max(16 * 1024, isize + 64), 1024 * 1024);
      return enc === 'deflate' ? inflateSync(body, { maxOutputLength: max, chunkSize }) : gunzipSync(body, { maxOutputLength: max, chunkSize });
    }
    return enc === 'deflate' ? await inflateAsync(body, { maxOutputLength: max }) : await gunzipAsync(body, { maxOutputLength: max });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE' || err instanceof RangeError) {
      throw apiError('payload_too_large', `decompressed body exceeds the limit of ${max} bytes`);
    }
    throw apiError('invalid_encoding', `invalid ${enc} body: ${(err as Error).message}`);
  }
}

const text = (v: unknown): string => (typeof v === 'string' ? v : '');

function parseJsonObject(buf: Buffer | string, what: string): Record<string, unknown> {
  let v: unknown;
  try { v = JSON.parse(typeof buf === 'string' ? buf : buf.toString('utf8')); } catch { throw apiError('invalid_envelope', `malformed envelope: ${what} is not JSON`); }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw apiError('invalid_envelope', `malformed envelope: ${what} is not a JSON object`);
  return v as Record<string, unknown>;
}

function sendError(reply: FastifyReply, err: AppError): FastifyReply {
  if (err.retryAfterS !== undefined) {
    void reply.header('retry-after', String(err.retryAfterS));
    // Sentry SDKs back off per category from this header: `<seconds>:<categories>:<scope>`, empty categories = all.
    if (err.status === 429) void reply.header('x-sentry-rate-limits', `${err.retryAfterS}::organization`);
  }
  // Sentry SDKs log this header's text when a request is refused.
  void reply.header('x-sentry-error', err.message.replace(/[^\x20-\x7e]/g, '?').slice(0, 200));
  return reply.code(err.status).send({ error: { code: err.code, message: err.message } });
}

export function registerSentryIngest(app: FastifyInstance, deps: SentryIngestDeps): void {
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: deps.maxBodyBytes }, (_req, body, done) => { done(null, body); });

  const authorize = (req: FastifyRequest<{ Params: { projectId: string } }>, dsnKey: string | undefined): Project => {
    const q = req.query as Record<string, unknown>;
    const key = (typeof q.sentry_key === 'string' ? q.sentry_key : undefined) ?? keyFromAuthHeader(req.headers['x-sentry-auth']) ?? dsnKey;
    if (key === undefined) throw apiError('unauthorized', 'missing Sentry key (sentry_key, X-Sentry-Auth or envelope dsn)');
    const project = deps.projects.forKey(key);
    if (project === undefined) throw apiError('unauthorized', 'unknown Sentry key');
    if (String(project.id) !== req.params.projectId) {
      throw apiError('forbidden', `this key belongs to project ${project.id}, not ${req.params.projectId}`);
    }
    return project;
  };

  /**
   * `gzipped`: the request body when it is a gzip envelope, whose bytes can be stored as the event's payload.
   * `parsedEvent`: the event of a /store/ request, already parsed there.
   */
  const ingest = async (project: Project, items: EnvelopeItem[], gzipped?: Buffer, parsedEvent?: Record<string, unknown>): Promise<string | undefined> => {
    const nowUs = Date.now() * 1000;
    const events: IncomingEvent[] = [];
    let spans: SpanBatch | undefined; // most envelopes carry no transaction: allocate on demand
    const health: HealthDelta[] = [];
    for (const item of items) {
      if (item.type === 'event') {
        // Not parsed here: the committer parses the item (in its worker thread with SQLite) and
        // reports an item that is not a JSON object, which fails this request with 400.
        events.push(parsedEvent !== undefined
          ? fromSentryEvent(parsedEvent, item.payload.toString('utf8'), project.id, project.name, nowUs)
          : { raw: item.payload, projectId: project.id, service: project.name, nowUs });
      } else if (item.type === 'transaction') {
        appendTransaction(parseJsonObject(item.payload, 'transaction item'), spans ??= newSpanBatch(), { service: project.name, nowUs });
      } else if (item.type === 'span') {
        const r = appendSpanItem(parseJsonObject(item.payload, 'span item'), text(item.header.content_type), spans ??= newSpanBatch(), { service: project.name, nowUs });
        if (r.skipped > 0) deps.unstored.add(project.id, 'span (invalid ids)', r.skipped);
      } else if (item.type === 'session' || item.type === 'sessions') {
        health.push(...healthDeltas(item.type, parseJsonObject(item.payload, `${item.type} item`)));
      } else {
        // client_report (the SDK's own drop counts), attachments, profiles, logs, ...: accepted, counted.
        deps.unstored.add(project.id, item.type.slice(0, 64));
      }
    }
    // SDKs gzip large envelopes; one holding a single event is kept as received — no second compression.
    if (gzipped !== undefined && events.length === 1 && gzipped.length <= deps.maxItemBytes) {
      events[0].compressed = { encoding: 'gzip-envelope', bytes: gzipped };
    }
    const others = (): Promise<unknown> => Promise.all([
      spans !== undefined && spans.length > 0 ? deps.submitSpans({ spans }) : undefined,
      deps.health.add(project.id, health),
    ]);
    if (events.length === 0) { await others(); return undefined; }
    // With transactions or sessions alongside, those wait for the events: an event item that
    // does not parse fails the request before anything of it is stored, as before.
    const ids = spans === undefined && health.length === 0
      ? (await Promise.all([deps.pipeline.submit(events), others()]))[0]
      : await deps.pipeline.submit(events).then(async (r) => { await others(); return r; });
    return ids[0];
  };

  const envelope = async (req: FastifyRequest<{ Params: { projectId: string } }>, reply: FastifyReply) => {
    try {
      // A key in the query or header is checked before any decompression or parsing work.
      const q = req.query as Record<string, unknown>;
      const early = q.sentry_key !== undefined || req.headers['x-sentry-auth'] !== undefined ? authorize(req, undefined) : undefined;
      const raw = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
      const body = await decompress(raw, req.headers['content-encoding'], deps.maxBodyBytes);
      const env = parseEnvelope(body, deps.maxItemBytes);
      const project = early ?? authorize(req, keyFromDsn(env.header.dsn));
      const enc = (req.headers['content-encoding'] ?? '').trim().toLowerCase();
      const first = await ingest(project, env.items, enc === 'gzip' || enc === 'x-gzip' ? raw : undefined);
      const id = typeof env.header.event_id === 'string' ? env.header.event_id : first ?? newEventId();
      return reply.code(200).send({ id });
    } catch (err) {
      if (err instanceof AppError) return sendError(reply, err);
      throw err;
    }
  };

  const store = async (req: FastifyRequest<{ Params: { projectId: string } }>, reply: FastifyReply) => {
    try {
      const project = authorize(req, undefined);
      const raw = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
      const body = await decompress(raw, req.headers['content-encoding'], deps.maxBodyBytes);
      if (body.length > deps.maxItemBytes) throw apiError('item_too_large', `event is ${body.length} bytes; the limit is ${deps.maxItemBytes}`);
      const ev = parseJsonObject(body, 'event');
      const type = ev.type === 'transaction' ? 'transaction' : 'event';
      const id = await ingest(project, [{ type, header: { type }, payload: body }], undefined, ev);
      return reply.code(200).send({ id: id ?? (typeof ev.event_id === 'string' ? ev.event_id : newEventId()) });
    } catch (err) {
      if (err instanceof AppError) return sendError(reply, err);
      throw err;
    }
  };

  // Browser SDKs send from the app's origin: open to all, as Sentry's ingest is (http/cors.ts).
  registerCors(app, SENTRY_CORS, ['/api/:projectId/envelope', '/api/:projectId/envelope/', '/api/:projectId/store', '/api/:projectId/store/'], false,
    (reply) => reply);
  for (const suffix of ['', '/']) {
    app.post(`/api/:projectId/envelope${suffix}`, envelope);
    app.post(`/api/:projectId/store${suffix}`, store);
  }

  // Fastify refuses over-limit bodies before the handler; answer with the same error shape.
  app.setErrorHandler((err: { statusCode?: number; code?: string; message: string }, req, reply) => {
    const status = err.statusCode ?? 500;
    if (err.code === 'FST_ERR_CTP_BODY_TOO_LARGE' || status === 413) {
      return sendError(reply, apiError('payload_too_large', `body exceeds the limit of ${deps.maxBodyBytes} bytes`));
    }
    if (status >= 400 && status < 500) return sendError(reply, apiError('bad_request', err.message));
    req.log.error({ err }, 'sentry ingest failed');
    return reply.code(503).header('retry-after', '1').send({ error: { code: 'unavailable', message: 'ingest temporarily unavailable' } });
  });
}
