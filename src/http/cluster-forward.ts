import { Agent, request as httpRequest, type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { apiError, type AppError } from '../core/app-error.js';

/**
 * HTTP on a node that does not hold the `active` lease (docs/cluster.md): every request it does
 * not answer itself is forwarded, as it came, to the node that holds the lease, and that node's
 * answer is streamed back. The holder runs the pillars whose state lives in its memory (rule
 * windows, open alerts, running verifications and rollouts, the log tail) and, with the
 * embedded DuckDB store, the only telemetry store a cluster has, so the API, the console and
 * OTLP/Sentry ingest are *answered* by every node while their work happens once.
 *
 * Bodies are piped, not parsed (the holder applies its own limits, authentication and CORS:
 * the Host header and the bearer token travel unchanged). A request that was forwarded once is
 * never forwarded again (`x-tightloop-forwarded-by`): two nodes that each believe the other
 * holds the lease answer 503 instead of bouncing it. When no node holds the lease, the holder
 * cannot be reached, or this node cannot reach PostgreSQL, the answer is this node's 503
 * (`node_standby` or `state_unavailable`) with Retry-After, and clients retry.
 */

export const FORWARDED_BY = 'x-tightloop-forwarded-by';
/**
 * Set by a forwarding node bound beyond loopback: the holder, perhaps bound to loopback where
 * ingest needs no token, must ask this request for one (its client came from the network).
 */
export const FORWARDED_PUBLIC = 'x-tightloop-forwarded-public';

/** A bind address that names no one interface: other nodes cannot reach a node at it. */
export function isUnspecifiedHost(host: string): boolean {
  const h = host.trim().replace(/^\[|\]$/g, '');
  return h === '' || h === '0.0.0.0' || /^[0:]+$/.test(h) || h === '::ffff:0.0.0.0';
}

/**
 * The URL a node registers for the others to forward to: `advertiseUrl` when given (an
 * http:// URL with a host that is not unspecified), else its bind address. A node on
 * PostgreSQL bound to 0.0.0.0 or :: must be given one: its bind address would send every other
 * node's forwarded requests to themselves. Throws `advertise_url_required` / `advertise_url_invalid`.
 */
export function checkAdvertiseUrl(dialect: 'sqlite' | 'postgres', host: string, advertiseUrl: string | undefined): string | undefined {
  if (advertiseUrl === undefined) {
    if (dialect === 'postgres' && isUnspecifiedHost(host)) {
      throw apiError('advertise_url_required', `--host ${host} binds every interface, so it cannot be the URL other nodes forward to: set --advertise-url / TIGHTLOOP_ADVERTISE_URL (cluster.advertiseUrl) to this node's reachable http:// URL, e.g. http://10.0.0.5:4318, or bind --host to that address (docs/cluster.md)`);
    }
    return undefined;
  }
  let u: URL;
  try {
    u = new URL(advertiseUrl);
  } catch {
    throw apiError('advertise_url_invalid', `cluster.advertiseUrl ${JSON.stringify(advertiseUrl)} is not a URL (expected http://host:port)`);
  }
  if (u.protocol !== 'http:' || u.hostname === '' || isUnspecifiedHost(u.hostname) || (u.pathname !== '/' && u.pathname !== '') || u.search !== '' || u.hash !== '' || u.username !== '' || u.password !== '') {
    throw apiError('advertise_url_invalid', `cluster.advertiseUrl ${JSON.stringify(advertiseUrl)}: expected http://host:port with a host other nodes can reach (no path, query or credentials; not 0.0.0.0 or ::)`);
  }
  return `${u.protocol}//${u.host}`;
}

/** Connection-scoped headers (RFC 9110 §7.6.1): never copied from one hop to the next. */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-authenticate', 'proxy-authorization', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade']);

function endToEnd(headers: IncomingHttpHeaders): OutgoingHttpHeaders {
  const named = new Set((typeof headers.connection === 'string' ? headers.connection : '').split(',').map((h) => h.trim().toLowerCase()));
  const out: OutgoingHttpHeaders = {};
  for (const [k, v] of Object.entries(headers)) if (v !== undefined && !HOP_BY_HOP.has(k) && !named.has(k)) out[k] = v;
  return out;
}

function sameOrigin(a: string, b: string | undefined): boolean {
  if (b === undefined || b === '') return false;
  try {
    return new URL(a).host === new URL(b).host;
  } catch { // a header that is not a URL is no origin of ours
    return false;
  }
}

export interface ForwardOptions {
  /** This node's id (sent in `x-tightloop-forwarded-by`; the holder's own id is never a target). */
  self: string;
  /** The lease holder now, or undefined (no holder, or it has no URL yet). */
  holder: () => Promise<{ id: string; url: string } | undefined>;
  /** Whether this node reaches the state database (else it answers its 503 itself, forwarding nothing). */
  reachable: () => boolean;
  /** Whether this node listens beyond loopback (its clients need a token for ingest; FORWARDED_PUBLIC). */
  publicBind: boolean;
  /** This node's own registered URL: a holder registered at it is never a target (a loop to itself). */
  selfUrl?: () => string;
  /** The 503 this node answers when it cannot forward. */
  notServing: () => AppError;
  log: Logger;
}

/** Registers the catch-all forwarding route; call after the node's own routes. Returns a closer for its connections. */
export function registerForwarding(app: FastifyInstance, o: ForwardOptions): () => void {
  const agent = new Agent({ keepAlive: true, maxSockets: 256 });
  let cached: { at: number; target: { id: string; url: string } | undefined } | undefined;
  const target = async (): Promise<{ id: string; url: string } | undefined> => {
    // A holder is kept for a second; "no holder yet" only briefly (a node that starts beside the
    // holder, or a takeover, must not answer 503 for a whole second after the holder is known).
    if (cached !== undefined && performance.now() - cached.at < (cached.target === undefined ? 100 : 1_000)) return cached.target;
    const t = await o.holder();
    cached = { at: performance.now(), target: t };
    return t;
  };
  let failing = false;

  // The body is piped to the holder untouched: no parser reads it here.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', (_req, _payload, done) => done(null, undefined));

  app.all('/*', async (req, reply) => {
    if (req.headers[FORWARDED_BY] !== undefined || !o.reachable()) throw o.notServing();
    const t = await target();
    if (t === undefined || t.id === o.self || t.url === '' || sameOrigin(t.url, o.selfUrl?.())) throw o.notServing();
    reply.hijack();
    const res = reply.raw;
    await new Promise<void>((resolve) => {
      const headers = endToEnd(req.headers);
      headers[FORWARDED_BY] = o.self;
      if (o.publicBind) headers[FORWARDED_PUBLIC] = '1';
      const xff = req.headers['x-forwarded-for'];
      headers['x-forwarded-for'] = `${typeof xff === 'string' && xff !== '' ? `${xff}, ` : ''}${req.ip}`;
      const u = new URL(t.url);
      const up = httpRequest({ host: u.hostname.replace(/^\[|\]$/g, ''), port: u.port, method: req.method, path: req.raw.url ?? '/', headers, agent }, (answer) => {
        if (failing) o.log.info({ holder: t.id }, 'cluster: forwarding to the active node works again');
        failing = false;
        res.writeHead(answer.statusCode ?? 502, endToEnd(answer.headers));
        answer.pipe(res);
        answer.on('error', () => res.destroy());
        answer.on('end', () => resolve());
      });
      up.on('error', (err) => {
        cached = undefined;
        if (!failing) o.log.warn({ err, holder: t.id, url: t.url }, 'cluster: the active node cannot be reached; answering 503 until it can (or this node takes over)');
        failing = true;
        if (!res.headersSent) {
          const e = o.notServing();
          res.writeHead(e.status, { 'content-type': 'application/json; charset=utf-8', 'retry-after': String(e.retryAfterS ?? 2) });
          res.end(JSON.stringify({ error: { code: e.code, message: e.message } }));
        } else res.destroy();
        resolve();
      });
      // The client went away: so does the forwarded request.
      res.on('close', () => {
        if (!res.writableFinished) up.destroy();
        resolve();
      });
      req.raw.pipe(up);
    });
  });
  return () => agent.destroy();
}
