/**
 * Error groups in the state database. applyBatch() folds one group commit's events into their
 * groups in ONE transaction: one read of the touched groups, one write per touched group and
 * per touched release × environment — so the cost follows the number of distinct groups in a
 * batch, not the number of events (2,000 events/s of one bug is one row update per commit).
 */
import { sql, type Transaction } from 'kysely';
import type { Database } from '../state/index.js';
import { apiError } from '../core/app-error.js';
import { toTimestamp } from '../state/index.js';
import type { ErrorEvent, GroupStatus, GroupingResult } from './model.js';
import type { GroupEventCount } from './events.js';
import type { ErrorsDb, ErrorsGroupCountsTable, ErrorsGroupServicesTable, ErrorsGroupsTable, ErrorsTables } from './tables.js';

export interface GroupedEvent {
  event: ErrorEvent;
  grouping: GroupingResult;
}

export interface ErrorGroup {
  id: string;
  projectId: number;
  service: string;
  title: string;
  culprit: string;
  level: string;
  groupingVersion: number;
  components: string[];
  firstSeen: string;
  lastSeen: string;
  count: number;
  firstRelease: string;
  lastRelease: string;
  status: GroupStatus;
  resolvedInRelease: string | null;
  statusChangedAt: string | null;
  latestEventId: string;
  latestTraceId: string;
}

export interface BatchOutcome {
  newGroups: ErrorGroup[];
  regressed: ErrorGroup[];
  /** The batch's events counted per group × release × environment (for `error.events`). */
  counts?: GroupEventCount[];
}

export interface GroupQuery {
  projectId?: number;
  service?: string;
  release?: string;
  environment?: string;
  status?: GroupStatus;
  /** Only groups whose first release is this one ("new in release X"). */
  newInRelease?: string;
  /** Substring of title or culprit. */
  q?: string;
  from?: string;
  to?: string;
  limit: number;
}

function toGroup(r: ErrorsGroupsTable): ErrorGroup {
  return {
    id: r.id, projectId: Number(r.project_id), service: r.service, title: r.title, culprit: r.culprit, level: r.level,
    groupingVersion: Number(r.grouping_version), components: JSON.parse(r.components) as string[],
    firstSeen: r.first_seen, lastSeen: r.last_seen, count: Number(r.count), firstRelease: r.first_release,
    lastRelease: r.last_release, status: r.status as GroupStatus, resolvedInRelease: r.resolved_in_release,
    statusChangedAt: r.status_changed_at, latestEventId: r.latest_event_id, latestTraceId: r.latest_trace_id,
  };
}

interface Fold {
  first: GroupedEvent;
  latest: GroupedEvent;
  latestTraced: GroupedEvent | undefined;
  count: number;
  counts: Map<string, { release: string; environment: string; count: number; first: number; last: number }>;
  services: Map<string, number>;
}

/** Whether an event arriving now reopens a group in `status`. */
function regresses(g: ErrorsGroupsTable, release: string): boolean {
  if (g.status === 'resolved') return true;
  // Resolved in the next release: events of the release current at resolution are expected.
  return g.status === 'resolved-in-next-release' && release !== (g.resolved_in_release ?? '');
}

export class GroupStore {
  constructor(private readonly db: ErrorsDb) {}

  /** `inTx` runs inside the same transaction (the events of the batch are inserted there). */
  async applyBatch(items: GroupedEvent[], inTx?: (tx: Transaction<Database & ErrorsTables>) => Promise<void>): Promise<BatchOutcome> {
    const folds = new Map<string, Fold>();
    for (const it of items) {
      const id = it.grouping.groupId;
      let f = folds.get(id);
      if (f === undefined) folds.set(id, f = { first: it, latest: it, latestTraced: undefined, count: 0, counts: new Map(), services: new Map() });
      f.count++;
      f.services.set(it.event.service, (f.services.get(it.event.service) ?? 0) + 1);
      if (it.event.timeUs < f.first.event.timeUs) f.first = it;
      if (it.event.timeUs >= f.latest.event.timeUs) f.latest = it;
      if (it.event.traceId !== '' && (f.latestTraced === undefined || it.event.timeUs >= f.latestTraced.event.timeUs)) f.latestTraced = it;
      const key = `${it.event.release}\n${it.event.environment}`;
      const c = f.counts.get(key);
      if (c === undefined) f.counts.set(key, { release: it.event.release, environment: it.event.environment, count: 1, first: it.event.timeUs, last: it.event.timeUs });
      else { c.count++; c.first = Math.min(c.first, it.event.timeUs); c.last = Math.max(c.last, it.event.timeUs); }
    }
    const out: BatchOutcome = { newGroups: [], regressed: [] };
    const now = toTimestamp(Date.now());
    await this.db.transaction().execute(async (tx) => {
      if (inTx !== undefined) await inTx(tx);
      const ids = [...folds.keys()];
      const existing = new Map<string, ErrorsGroupsTable>();
      for (let i = 0; i < ids.length; i += 500) {
        const rows = await tx.selectFrom('errors_groups').selectAll().where('id', 'in', ids.slice(i, i + 500)).execute();
        for (const r of rows) existing.set(r.id, r);
      }
      const groupRows: ErrorsGroupsTable[] = [];
      const countRows: ErrorsGroupCountsTable[] = [];
      const serviceRows: ErrorsGroupServicesTable[] = [];
      for (const [id, f] of folds) {
        const ev = f.latest.event;
        const lastSeen = toTimestamp(ev.timeUs / 1000);
        const g = existing.get(id);
        // Rows carry this batch's count only; the upsert adds it to the stored count.
        if (g === undefined) {
          const row: ErrorsGroupsTable = {
            id, project_id: ev.projectId, service: ev.service, title: f.latest.grouping.title, culprit: f.latest.grouping.culprit,
            level: ev.level, grouping_version: f.latest.grouping.version, components: JSON.stringify(f.latest.grouping.components),
            first_seen: toTimestamp(f.first.event.timeUs / 1000), last_seen: lastSeen, count: f.count,
            first_release: f.first.event.release, last_release: ev.release, status: 'unresolved', resolved_in_release: null,
            status_changed_at: null, latest_event_id: ev.eventId, latest_trace_id: f.latestTraced?.event.traceId ?? '',
          };
          groupRows.push(row);
          out.newGroups.push(toGroup(row));
        } else {
          const reopen = regresses(g, ev.release);
          const row: ErrorsGroupsTable = {
            ...g, count: f.count, last_seen: lastSeen > g.last_seen ? lastSeen : g.last_seen,
            last_release: ev.release, title: f.latest.grouping.title, culprit: f.latest.grouping.culprit,
            latest_event_id: ev.eventId, latest_trace_id: f.latestTraced?.event.traceId ?? g.latest_trace_id,
            ...(reopen ? { status: 'regressed', status_changed_at: now, resolved_in_release: null } : {}),
          };
          groupRows.push(row);
          if (reopen) out.regressed.push(toGroup({ ...row, count: Number(g.count) + f.count }));
        }
        for (const [service, count] of f.services) serviceRows.push({ group_id: id, service, count });
        for (const c of f.counts.values()) {
          countRows.push({
            group_id: id, release: c.release, environment: c.environment, count: c.count,
            first_seen: toTimestamp(c.first / 1000), last_seen: toTimestamp(c.last / 1000),
          });
        }
      }
      // One multi-row upsert per table (chunked under SQLite's bound-parameter limit): the
      // per-statement overhead, not the rows, is what costs on this path.
      const ex = (c: string) => sql.ref(`excluded.${c}`);
      for (let i = 0; i < groupRows.length; i += 400) {
        await tx.insertInto('errors_groups').values(groupRows.slice(i, i + 400))
          .onConflict((oc) => oc.column('id').doUpdateSet({
            count: sql<number>`${sql.ref('errors_groups.count')} + ${ex('count')}`,
            last_seen: sql<string>`${ex('last_seen')}`, last_release: sql<string>`${ex('last_release')}`,
            title: sql<string>`${ex('title')}`, culprit: sql<string>`${ex('culprit')}`,
            latest_event_id: sql<string>`${ex('latest_event_id')}`, latest_trace_id: sql<string>`${ex('latest_trace_id')}`,
            status: sql<string>`${ex('status')}`, status_changed_at: sql<string | null>`${ex('status_changed_at')}`,
            resolved_in_release: sql<string | null>`${ex('resolved_in_release')}`,
          })).execute();
      }
      for (let i = 0; i < countRows.length; i += 1000) {
        await tx.insertInto('errors_group_counts').values(countRows.slice(i, i + 1000))
          .onConflict((oc) => oc.columns(['group_id', 'release', 'environment']).doUpdateSet({
            count: sql<number>`${sql.ref('errors_group_counts.count')} + ${ex('count')}`,
            last_seen: sql<string>`${ex('last_seen')}`,
          })).execute();
      }
      for (let i = 0; i < serviceRows.length; i += 1000) {
        await tx.insertInto('errors_group_services').values(serviceRows.slice(i, i + 1000))
          .onConflict((oc) => oc.columns(['group_id', 'service']).doUpdateSet({
            count: sql<number>`${sql.ref('errors_group_services.count')} + ${ex('count')}`,
          })).execute();
      }
    });
    out.counts = [];
    for (const [id, f] of folds) {
      for (const c of f.counts.values()) {
        out.counts.push({ groupId: id, projectId: f.latest.event.projectId, service: f.latest.event.service, release: c.release,
          environment: c.environment, title: f.latest.grouping.title, count: c.count, lastUs: c.last });
      }
    }
    return out;
  }

  async get(id: string): Promise<ErrorGroup | undefined> {
    const r = await this.db.selectFrom('errors_groups').selectAll().where('id', '=', id).executeTakeFirst();
    return r === undefined ? undefined : toGroup(r);
  }

  async list(q: GroupQuery): Promise<ErrorGroup[]> {
    let s = this.db.selectFrom('errors_groups').selectAll();
    if (q.projectId !== undefined) s = s.where('project_id', '=', q.projectId);
    // Every service that raised the group, not only the first (errors_group_services).
    if (q.service !== undefined) {
      const service = q.service;
      s = s.where('id', 'in', (eb) => eb.selectFrom('errors_group_services').select('group_id').where('service', '=', service));
    }
    if (q.status !== undefined) s = s.where('status', '=', q.status);
    if (q.newInRelease !== undefined) s = s.where('first_release', '=', q.newInRelease);
    if (q.from !== undefined) s = s.where('last_seen', '>=', q.from);
    if (q.to !== undefined) s = s.where('first_seen', '<=', q.to);
    if (q.q !== undefined && q.q !== '') {
      const like = `%${q.q.replace(/[\\%_]/g, (m) => '\\' + m)}%`;
      s = s.where((eb) => eb.or([eb('title', 'like', sql<string>`${like} escape '\\'`), eb('culprit', 'like', sql<string>`${like} escape '\\'`)]));
    }
    if (q.release !== undefined || q.environment !== undefined) {
      s = s.where('id', 'in', (eb) => {
        let sub = eb.selectFrom('errors_group_counts').select('group_id');
        if (q.release !== undefined) sub = sub.where('release', '=', q.release);
        if (q.environment !== undefined) sub = sub.where('environment', '=', q.environment);
        return sub;
      });
    }
    const rows = await s.orderBy('last_seen', 'desc').limit(q.limit).execute();
    return rows.map(toGroup);
  }

  /** Counts per release, per environment and per service of one group. */
  async counts(id: string): Promise<{ releases: Record<string, number>; environments: Record<string, number>; services: Record<string, number> }> {
    const [rows, serviceRows] = await Promise.all([
      this.db.selectFrom('errors_group_counts').selectAll().where('group_id', '=', id).execute(),
      this.db.selectFrom('errors_group_services').selectAll().where('group_id', '=', id).execute(),
    ]);
    const services: Record<string, number> = {};
    for (const r of serviceRows) services[r.service] = Number(r.count);
    const releases: Record<string, number> = {};
    const environments: Record<string, number> = {};
    for (const r of rows) {
      releases[r.release] = (releases[r.release] ?? 0) + Number(r.count);
      environments[r.environment] = (environments[r.environment] ?? 0) + Number(r.count);
    }
    return { releases, environments, services };
  }

  async setStatus(id: string, status: GroupStatus): Promise<ErrorGroup> {
    return this.db.transaction().execute(async (tx) => {
      const g = await tx.selectFrom('errors_groups').selectAll().where('id', '=', id).executeTakeFirst();
      if (g === undefined) throw apiError('not_found', `error group ${id} not found`);
      const resolvedIn = status === 'resolved-in-next-release' ? g.last_release : null;
      const changed = toTimestamp(Date.now());
      await tx.updateTable('errors_groups').set({ status, resolved_in_release: resolvedIn, status_changed_at: changed }).where('id', '=', id).execute();
      return toGroup({ ...g, status, resolved_in_release: resolvedIn, status_changed_at: changed });
    });
  }
}
