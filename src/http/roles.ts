/**
 * Who may call which route: the one place the HTTP role model is written down and enforced.
 *
 *   viewer  reads: telemetry, errors, alerts, rules, silences, incidents, deploys, actions and
 *           their runs (without run output), access requests (without reasons), resources, users.
 *           Manages only their own API tokens and gateway password.
 *   member  acts within limits: records and verifies deploys, starts rollouts and action runs,
 *           creates and changes alert rules and silences (never one that mutes everything),
 *           sets error-group status, acknowledges / assigns / resolves / notes incidents, asks for
 *           database access. Approving access needs an admin grant on the resource besides.
 *   admin   administers: users, other users' tokens, resources, projects (their DSNs), the audit
 *           trail, live gateway sessions, approving action runs and access.
 *
 * Every route's requirement is in ROUTE_ROLES below, keyed by method and URL pattern. The
 * `onRoute` hook refuses, at start, any route that is not listed (fail closed: a new route cannot
 * go out unguarded), and one `onRequest` hook enforces the requirement before any handler runs:
 * no or a bad token → 401, a role below the requirement → 403. `public` routes need no token;
 * `ingest` routes authenticate on their own terms (OTLP: a bearer token unless the server listens
 * on loopback; Sentry: the project's key). The OpenAPI document carries the requirement of each
 * operation as `x-required-role` (and `x-role-condition` where a handler checks more).
 */
import type { FastifyInstance, FastifyRequest, RouteOptions } from 'fastify';
import { apiError, unauthorized } from '../core/app-error.js';

export type RouteRole = 'public' | 'ingest' | 'viewer' | 'member' | 'admin';

const RANK: Record<string, number> = { viewer: 1, member: 2, admin: 3 };

/** Does a user with `role` meet the requirement `needed` (viewer, member or admin)? */
export function roleAtLeast(role: string, needed: 'viewer' | 'member' | 'admin'): boolean {
  return (RANK[role] ?? 0) >= RANK[needed];
}

interface RouteRule { role: RouteRole; condition?: string }

const r = (role: RouteRole, condition?: string): RouteRule => (condition === undefined ? { role } : { role, condition });
const APPROVER = 'an admin, or a member holding an admin grant on the resource';

/** `METHOD /url-pattern` (as registered with Fastify) → requirement. HEAD follows GET. */
export const ROUTE_ROLES: Readonly<Record<string, RouteRule>> = {
  // public and ingest
  'GET /api/health': r('public'),
  // load balancer check: 200 on the active node, 503 on a standby (http/cluster.ts)
  'GET /api/health/active': r('public'),
  // the cluster: nodes, roles, leases, heartbeats
  'GET /api/cluster': r('viewer'),
  'GET /api/openapi.json': r('public'),
  'GET /': r('public'),
  'GET /*': r('public'),
  'POST /v1/traces': r('ingest'),
  'POST /v1/logs': r('ingest'),
  'POST /v1/metrics': r('ingest'),
  'POST /api/:projectId/envelope': r('ingest'),
  'POST /api/:projectId/envelope/': r('ingest'),
  'POST /api/:projectId/store': r('ingest'),
  'POST /api/:projectId/store/': r('ingest'),
  // CORS preflights of the ingest routes (src/http/cors.ts): no token, no body, no effect
  'OPTIONS /v1/traces': r('public'),
  'OPTIONS /v1/logs': r('public'),
  'OPTIONS /v1/metrics': r('public'),
  'OPTIONS /api/:projectId/envelope': r('public'),
  'OPTIONS /api/:projectId/envelope/': r('public'),
  'OPTIONS /api/:projectId/store': r('public'),
  'OPTIONS /api/:projectId/store/': r('public'),
  // telemetry
  'GET /api/services': r('viewer'),
  'GET /api/services/:service/red': r('viewer'),
  'GET /api/traces': r('viewer'),
  'GET /api/traces/:traceId': r('viewer'),
  'GET /api/logs': r('viewer'),
  'GET /api/logs/tail': r('viewer'),
  'GET /api/logs/volume': r('viewer'),
  'GET /api/metrics/query': r('viewer'),
  'GET /metrics': r('viewer'),
  // errors
  'GET /api/projects': r('viewer'),
  'POST /api/projects': r('admin'),
  'GET /api/projects/:projectId/release-health': r('viewer'),
  'GET /api/errors': r('viewer'),
  'GET /api/errors/:groupId': r('viewer'),
  'PATCH /api/errors/:groupId': r('member'),
  'GET /api/errors/:groupId/events': r('viewer'),
  // detect
  'GET /api/rules': r('viewer'),
  'GET /api/rules/:id': r('viewer'),
  'POST /api/rules': r('member'),
  'PUT /api/rules/:id': r('member'),
  'DELETE /api/rules/:id': r('member'),
  'GET /api/alerts': r('viewer'),
  'GET /api/alerts/:id': r('viewer'),
  'GET /api/silences': r('viewer'),
  'POST /api/silences': r('member'),
  'DELETE /api/silences/:id': r('member'),
  // incidents
  'GET /api/incidents': r('viewer'),
  'GET /api/incidents/:id': r('viewer'),
  'POST /api/incidents/:id/ack': r('member'),
  'POST /api/incidents/:id/assign': r('member'),
  'POST /api/incidents/:id/resolve': r('member'),
  'POST /api/incidents/:id/notes': r('member'),
  'GET /api/loop-metrics': r('viewer'),
  // deploys, rollouts, actions
  'POST /api/deploys': r('member'),
  'GET /api/deploys': r('viewer'),
  'GET /api/deploys/:id': r('viewer'),
  'POST /api/deploys/:id/verify': r('member'),
  'GET /api/deploys/:id/verification': r('viewer'),
  'POST /api/deploys/rollouts': r('member'),
  'GET /api/deploys/rollouts': r('viewer'),
  'GET /api/deploys/rollouts/:id': r('viewer'),
  'GET /api/local-services': r('viewer'),
  'GET /api/actions': r('viewer'),
  'GET /api/actions/:name': r('viewer'),
  'GET /api/actions/runs': r('viewer', 'run output only for members and admins'),
  'GET /api/actions/runs/:id': r('viewer', 'run output only for members and admins'),
  'POST /api/actions/:name/runs': r('member'),
  'POST /api/actions/runs/:id/approve': r('admin', 'not your own run'),
  'POST /api/actions/runs/:id/deny': r('admin'),
  // gateway
  'GET /api/resources': r('viewer'),
  'GET /api/resources/:name': r('viewer'),
  'POST /api/resources': r('admin'),
  'PUT /api/resources/:name/policy': r('admin'),
  'DELETE /api/resources/:name': r('admin'),
  'GET /api/access/grants': r('viewer'),
  'POST /api/access/grants': r('member', APPROVER),
  'DELETE /api/access/grants/:id': r('member', `your own grant, or ${APPROVER}`),
  'GET /api/access/requests': r('viewer', 'reasons and notes only for members and admins'),
  'GET /api/access/requests/:id': r('viewer', 'reasons and notes only for members and admins'),
  'POST /api/access/requests': r('member'),
  'POST /api/access/requests/:id/approve': r('member', `${APPROVER}; not your own request`),
  'POST /api/access/requests/:id/deny': r('member', `${APPROVER}, or your own request (cancel)`),
  'POST /api/access/revoke/:id': r('member', `your own grant, or ${APPROVER}`),
  'POST /api/gateway/credentials': r('viewer', 'enrols the calling token only'),
  'GET /api/gateway/sessions': r('admin'),
  'GET /api/audit': r('admin'),
  'GET /api/audit/verify': r('admin'),
  // users and tokens
  'GET /api/users': r('viewer'),
  'POST /api/users': r('admin'),
  'PATCH /api/users/:id': r('admin'),
  'DELETE /api/users/:id': r('admin'),
  'GET /api/me': r('viewer'),
  'GET /api/tokens': r('viewer', "your own tokens; another user's: admin"),
  'POST /api/tokens': r('viewer', 'for yourself; for another user: admin'),
  'DELETE /api/tokens/:id': r('viewer', "your own token; another user's: admin"),
};

/** The rule for one method and URL pattern, or undefined when the route is not listed. */
export function ruleFor(method: string, url: string): RouteRule | undefined {
  return ROUTE_ROLES[`${method === 'HEAD' ? 'GET' : method} ${url}`];
}

export class UnlistedRouteError extends Error {
  constructor(method: string, url: string) {
    super(`route ${method} ${url} has no required role in src/http/roles.ts (ROUTE_ROLES); refusing to start`);
    this.name = 'UnlistedRouteError';
  }
}

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Set from ROUTE_ROLES by the onRoute hook; never by the route itself. */
    requiredRole?: RouteRole;
  }
}

function bearer(req: FastifyRequest): string | null {
  const m = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '');
  return m === null ? null : m[1];
}

const registered = new WeakMap<FastifyInstance, RegisteredRoute[]>();

/** Every route registered on `app` (built by buildApp) with its requirement. */
export function registeredRoutes(app: FastifyInstance): readonly RegisteredRoute[] {
  return registered.get(app) ?? [];
}

/** A route as the role walk sees it: method, URL pattern and requirement. */
export interface RegisteredRoute { method: string; url: string; role: RouteRole; condition?: string }

/**
 * Installs the role model on the root instance, before any route is registered. `authenticate`
 * resolves a bearer token to its user (null when unknown, expired or revoked); the principal is
 * left on `req.principal` for the handlers. Returns the routes registered so far (and later).
 */
export function installRoleModel(
  app: FastifyInstance,
  authenticate: (token: string) => Promise<{ userId: string; userName: string; role: string } | null>,
): RegisteredRoute[] {
  const routes: RegisteredRoute[] = [];
  registered.set(app, routes);
  app.addHook('onRoute', (opts: RouteOptions) => {
    for (const method of Array.isArray(opts.method) ? opts.method : [opts.method]) {
      const rule = ruleFor(method, opts.url);
      if (rule === undefined) throw new UnlistedRouteError(method, opts.url);
      opts.config = { ...(opts.config ?? {}), requiredRole: rule.role };
      routes.push({ method, url: opts.url, ...rule });
    }
  });
  app.addHook('onRequest', async (req) => {
    const needed = req.routeOptions.config.requiredRole;
    if (needed === undefined) {
      // Unmatched URLs (404) have no route and reach the not-found handler only; a matched route
      // without a role cannot be registered (onRoute above), and is refused if it ever is.
      if (req.routeOptions.url === undefined) return;
      throw apiError('forbidden', `${req.method} ${req.routeOptions.url} declares no required role`);
    }
    if (needed === 'public' || needed === 'ingest') return;
    const token = bearer(req);
    if (token === null) throw unauthorized('missing bearer token (Authorization: Bearer <token>)');
    const principal = await authenticate(token);
    if (principal === null) throw unauthorized('invalid, expired or revoked token');
    req.principal = principal;
    if (!roleAtLeast(principal.role, needed)) {
      throw apiError('forbidden', `${req.method} ${req.routeOptions.url ?? ''} needs the ${needed} role (you are ${principal.role})`);
    }
  });
  return routes;
}

/** The OpenAPI paths with `x-required-role` (and `x-role-condition`) on every operation listed here. */
export function withRequiredRoles<T extends Record<string, unknown>>(paths: T): T {
  const out: Record<string, Record<string, unknown>> = {};
  for (const [path, ops] of Object.entries(paths)) {
    const url = path.replace(/\{([^}]+)\}/g, ':$1');
    const decorated: Record<string, unknown> = {};
    for (const [method, op] of Object.entries(ops as Record<string, Record<string, unknown>>)) {
      const rule = ruleFor(method.toUpperCase(), url);
      decorated[method] = rule === undefined ? op
        : { ...op, 'x-required-role': rule.role, ...(rule.condition === undefined ? {} : { 'x-role-condition': rule.condition }) };
    }
    out[path] = decorated;
  }
  return out as T;
}
