/**
 * CORS for the two ingest surfaces that browsers send to. Nothing else gets CORS headers: the
 * `/api/*` routes (bearer tokens, the console is same-origin) never answer a foreign origin.
 *
 * - Sentry ingest (`/api/<project>/envelope|store/`) is open to every origin, as Sentry's own
 *   ingest is: the project key travels with each request and only ever allows writing events.
 * - OTLP ingest (`/v1/*`) allows the origins of `--cors-origins`. Default: pages served from this
 *   machine (`localhost`, `127.0.0.1`, `[::1]`, any port). On loopback ingest needs no token, so
 *   allowing every origin would let any web page a developer opens write telemetry here.
 *   A cross-origin OTLP request whose origin is not allowed is refused with 403 before its body
 *   is read: a browser that skips the preflight (a "simple" request) cannot write either.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';

export interface CorsPolicy {
  /** True when `origin` (the request's Origin header) may read answers and send requests. */
  allows(origin: string): boolean;
  /** Answer `*` instead of echoing the origin. */
  anyOrigin: boolean;
  allowHeaders: string;
  exposeHeaders: string;
  methods: string;
  maxAgeS: number;
}

// The headers Sentry's ingest allows and exposes to browser SDKs (they read the rate limits).
export const SENTRY_CORS: CorsPolicy = {
  allows: () => true,
  anyOrigin: true,
  allowHeaders: 'x-sentry-auth, x-requested-with, x-forwarded-for, origin, referer, accept, content-type, authentication, authorization, content-encoding, transfer-encoding, baggage, sentry-trace',
  exposeHeaders: 'x-sentry-error, x-sentry-rate-limits, retry-after',
  methods: 'GET, POST, OPTIONS',
  maxAgeS: 3600,
};

const LOOPBACK_ORIGIN = /^https?:\/\/(localhost|127(?:\.\d{1,3}){3}|\[::1\])(?::\d{1,5})?$/i;

/** What `--cors-origins` accepts: `*`, `loopback`, `none`, or origins `scheme://host[:port]`. */
export function parseCorsOrigins(value: string): string[] {
  const list = value.split(',').map((s) => s.trim()).filter((s) => s !== '');
  for (const o of list) {
    if (o === '*' || o === 'loopback' || o === 'none') continue;
    let u: URL;
    try { u = new URL(o); } catch { throw new Error(`'${o}' is not an origin (scheme://host[:port]), '*', 'loopback' or 'none'`); }
    if ((u.protocol !== 'http:' && u.protocol !== 'https:') || u.origin !== o.replace(/\/$/, '').toLowerCase()) {
      throw new Error(`'${o}' is not an origin (scheme://host[:port] without path), '*', 'loopback' or 'none'`);
    }
  }
  return list.map((o) => (o === '*' || o === 'loopback' || o === 'none' ? o : new URL(o).origin));
}

export const DEFAULT_OTLP_CORS_ORIGINS = ['loopback'];

export function otlpCorsPolicy(origins: readonly string[]): CorsPolicy {
  const any = origins.includes('*');
  const loopback = origins.includes('loopback');
  const exact = new Set(origins.filter((o) => o !== 'loopback' && o !== '*' && o !== 'none'));
  return {
    allows: (origin) => any || exact.has(origin) || (loopback && LOOPBACK_ORIGIN.test(origin)),
    anyOrigin: any,
    allowHeaders: 'content-type, content-encoding, authorization, accept',
    exposeHeaders: 'retry-after',
    methods: 'POST, OPTIONS',
    maxAgeS: 3600,
  };
}

function originOf(req: FastifyRequest): string | undefined {
  const o = req.headers.origin;
  return typeof o === 'string' && o !== '' ? o : undefined;
}

/** The request comes from a page of this very server (browsers send Origin on same-origin POSTs too). */
function sameOrigin(req: FastifyRequest, origin: string): boolean {
  try {
    return new URL(origin).host === req.headers.host;
  } catch { // an Origin that is not a URL is not this server
    return false;
  }
}

function allowOrigin(reply: FastifyReply, policy: CorsPolicy, origin: string): void {
  if (policy.anyOrigin) {
    void reply.header('access-control-allow-origin', '*');
  } else {
    void reply.header('access-control-allow-origin', origin);
    void reply.header('vary', 'Origin');
  }
}

/**
 * Adds CORS to the routes of `app` (an encapsulated plugin), and answers preflights
 * (`OPTIONS <path>`) for `paths`. `refuseOthers`: a request with a foreign Origin that the
 * policy does not allow is answered 403 before its body is read.
 */
export function registerCors(app: FastifyInstance, policy: CorsPolicy, paths: readonly string[], refuseOthers: boolean,
  refuse: (reply: FastifyReply, origin: string) => FastifyReply): void {
  app.addHook('onRequest', async (req, reply) => {
    const origin = originOf(req);
    if (origin === undefined) return;
    if (policy.allows(origin)) {
      allowOrigin(reply, policy, origin);
      if (req.method !== 'OPTIONS') void reply.header('access-control-expose-headers', policy.exposeHeaders);
      return;
    }
    if (refuseOthers && !sameOrigin(req, origin)) return refuse(reply, origin);
  });
  const preflight = async (req: FastifyRequest, reply: FastifyReply) => {
    const origin = originOf(req);
    if (origin === undefined || !policy.allows(origin)) {
      // Only a refused origin gets here with refuseOthers; without an Origin this is no preflight.
      return reply.code(origin === undefined ? 204 : 403).header('allow', policy.methods).send();
    }
    return reply.code(204)
      .header('access-control-allow-methods', policy.methods)
      .header('access-control-allow-headers', policy.allowHeaders)
      .header('access-control-max-age', String(policy.maxAgeS))
      .send();
  };
  for (const p of paths) app.options(p, preflight);
}
