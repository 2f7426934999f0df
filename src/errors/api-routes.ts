/**
 * The errors REST API (bearer-token authenticated: registered inside the API plugin):
 * projects (with their DSN), release health, error groups and their events.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { apiError, badRequest, notFound } from '../core/app-error.js';
import type { ErrorEventStore } from './event-store.js';
import type { GroupQuery, GroupStore } from './groups.js';
import { GROUP_STATUSES, type GroupStatus } from './model.js';
import { dsnFor, type Project, type ProjectRegistry } from './projects.js';
import type { ReleaseHealthStore } from './release-health.js';

export interface ErrorsApiDeps {
  projects: ProjectRegistry;
  groups: GroupStore;
  events: ErrorEventStore;
  health: ReleaseHealthStore;
  /** The server's own URL, for DSNs (known only after listen). */
  publicUrl: () => string;
  /** Envelope items accepted but not stored since start, by type (ingest-routes.ts). */
  unstored?: (projectId: number) => Record<string, number>;
}

type Query = Record<string, unknown>;

function param(q: Query, name: string): string | undefined {
  const v = q[name];
  if (v === undefined || v === '') return undefined;
  if (typeof v !== 'string') throw badRequest(`parameter '${name}' given more than once`);
  return v;
}

/** A time as ISO text (the state store's timestamp format) from epoch ms or ISO 8601. */
function time(q: Query, name: string): string | undefined {
  const v = param(q, name);
  if (v === undefined) return undefined;
  const ms = /^\d+$/.test(v) ? Number(v) : Date.parse(v);
  if (!Number.isFinite(ms)) throw badRequest(`parameter '${name}': expected epoch milliseconds or ISO 8601 (got '${v}')`);
  return new Date(ms).toISOString();
}

function limit(q: Query, def: number, max: number): number {
  const v = param(q, 'limit');
  if (v === undefined) return def;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1 || n > max) throw badRequest(`parameter 'limit' must be an integer from 1 to ${max}`);
  return n;
}

function status(v: unknown, name: string): GroupStatus | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || !(GROUP_STATUSES as readonly string[]).includes(v)) {
    throw badRequest(`'${name}' must be one of ${GROUP_STATUSES.join(', ')}`);
  }
  return v as GroupStatus;
}

const GROUP_ID = /^[0-9a-f]{32}$/;

export function registerErrorsApi(app: FastifyInstance, deps: ErrorsApiDeps): void {
  const view = (p: Project) => ({ id: p.id, name: p.name, dsn: dsnFor(deps.publicUrl(), p), groupingVersion: p.groupingVersion, createdAt: p.createdAt,
    unstoredItems: deps.unstored?.(p.id) ?? {} });

  app.get('/api/projects', () => ({ projects: deps.projects.list().map(view) }));

  app.post('/api/projects', async (req, reply) => {
    const body = req.body as { name?: unknown } | undefined;
    if (typeof body?.name !== 'string') throw badRequest(`body must be {"name": "<project name>"}`);
    const p = await deps.projects.create(body.name);
    return reply.code(201).send(view(p));
  });

  app.get('/api/projects/:projectId/release-health', async (req: FastifyRequest<{ Params: { projectId: string } }>) => {
    const p = deps.projects.get(Number(req.params.projectId));
    if (p === undefined) throw notFound(`project ${req.params.projectId} not found`);
    return { project: p.id, releases: await deps.health.list(p.id) };
  });

  app.get('/api/errors', async (req) => {
    const q = req.query as Query;
    const project = param(q, 'project');
    const query: GroupQuery = {
      projectId: project === undefined ? undefined : Number(project),
      service: param(q, 'service'), release: param(q, 'release'), environment: param(q, 'environment'),
      status: status(param(q, 'status'), 'status'), newInRelease: param(q, 'newInRelease'), q: param(q, 'q'),
      from: time(q, 'from'), to: time(q, 'to'), limit: limit(q, 100, 1000),
    };
    if (query.projectId !== undefined && !Number.isInteger(query.projectId)) throw badRequest(`parameter 'project' must be a project id`);
    return { groups: await deps.groups.list(query) };
  });

  const groupOf = async (id: string) => {
    if (!GROUP_ID.test(id)) throw badRequest('groupId must be 32 lowercase hex characters');
    const g = await deps.groups.get(id);
    if (g === undefined) throw notFound(`error group ${id} not found`);
    return g;
  };

  app.get('/api/errors/:groupId', async (req: FastifyRequest<{ Params: { groupId: string } }>) => {
    const group = await groupOf(req.params.groupId);
    const [counts, latestEvent, traceIds] = await Promise.all([
      deps.groups.counts(group.id), deps.events.latest(group.id), deps.events.traceIds(group.id, 20),
    ]);
    return { group, releases: counts.releases, environments: counts.environments, services: counts.services, latestEvent: latestEvent ?? null, traceIds };
  });

  app.patch('/api/errors/:groupId', async (req: FastifyRequest<{ Params: { groupId: string } }>) => {
    await groupOf(req.params.groupId);
    const body = req.body as { status?: unknown } | undefined;
    const s = status(body?.status, 'status');
    if (s === undefined) throw badRequest(`body must be {"status": "${GROUP_STATUSES.join('|')}"}`);
    if (s === 'regressed') throw apiError('bad_request', `'regressed' is set by ingest, not by users`);
    return { group: await deps.groups.setStatus(req.params.groupId, s) };
  });

  app.get('/api/errors/:groupId/events', async (req: FastifyRequest<{ Params: { groupId: string } }>) => {
    const group = await groupOf(req.params.groupId);
    const q = req.query as Query;
    const before = time(q, 'before');
    const events = await deps.events.byGroup(group.id, limit(q, 50, 500), before === undefined ? undefined : Date.parse(before) * 1000);
    return { groupId: group.id, events };
  });
}
