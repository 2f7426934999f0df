/**
 * Release health from Sentry `session` (one session update) and `sessions` (pre-aggregated
 * buckets) items: sessions started and crashed per project × release × environment, from which
 * the API derives the crash-free rate. A session is counted when it starts (`init: true`) and
 * again in `crashed`/`errored`/`abnormal` when it ends that way, so updates are not double counted.
 */
import { sql } from 'kysely';
import type { ErrorsDb } from './tables.js';

type Json = Record<string, unknown>;
const obj = (v: unknown): Json => (typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Json) : {});
const num = (v: unknown): number => (typeof v === 'number' && Number.isFinite(v) && v > 0 ? Math.floor(v) : 0);

export interface HealthDelta {
  release: string;
  environment: string;
  started: number;
  crashed: number;
  errored: number;
  abnormal: number;
}

/** Counts in one `session` or `sessions` payload (empty when it names no release). */
export function healthDeltas(type: 'session' | 'sessions', body: Json): HealthDelta[] {
  const attrs = obj(body.attrs);
  const release = typeof attrs.release === 'string' ? attrs.release : typeof body.release === 'string' ? body.release : '';
  if (release === '') return [];
  const environment = typeof attrs.environment === 'string' ? attrs.environment : 'production';
  if (type === 'session') {
    const status = body.status;
    return [{
      release, environment, started: body.init === true ? 1 : 0,
      crashed: status === 'crashed' ? 1 : 0, errored: status === 'errored' ? 1 : 0, abnormal: status === 'abnormal' ? 1 : 0,
    }];
  }
  const d: HealthDelta = { release, environment, started: 0, crashed: 0, errored: 0, abnormal: 0 };
  for (const a of Array.isArray(body.aggregates) ? body.aggregates : []) {
    const b = obj(a);
    // Each bucket counts sessions by final status; `exited` are the healthy ones.
    d.started += num(b.exited) + num(b.errored) + num(b.crashed) + num(b.abnormal);
    d.crashed += num(b.crashed);
    d.errored += num(b.errored);
    d.abnormal += num(b.abnormal);
  }
  return [d];
}

export interface ReleaseHealth {
  release: string;
  environment: string;
  sessions: number;
  crashed: number;
  errored: number;
  abnormal: number;
  /** 1 − crashed / sessions; null before the first session. */
  crashFreeRate: number | null;
}

export class ReleaseHealthStore {
  constructor(private readonly db: ErrorsDb) {}

  async add(projectId: number, deltas: HealthDelta[]): Promise<void> {
    if (deltas.length === 0) return;
    await this.db.transaction().execute(async (tx) => {
      for (const d of deltas) {
        const ref = (c: string) => sql.ref(`errors_release_health.${c}`);
        await tx.insertInto('errors_release_health').values({ project_id: projectId, ...d })
          .onConflict((oc) => oc.columns(['project_id', 'release', 'environment']).doUpdateSet({
            started: sql<number>`${ref('started')} + ${d.started}`,
            crashed: sql<number>`${ref('crashed')} + ${d.crashed}`,
            errored: sql<number>`${ref('errored')} + ${d.errored}`,
            abnormal: sql<number>`${ref('abnormal')} + ${d.abnormal}`,
          })).execute();
      }
    });
  }

  async list(projectId: number): Promise<ReleaseHealth[]> {
    const rows = await this.db.selectFrom('errors_release_health').selectAll().where('project_id', '=', projectId)
      .orderBy('release').orderBy('environment').execute();
    return rows.map((r) => {
      const sessions = Number(r.started);
      const crashed = Number(r.crashed);
      return {
        release: r.release, environment: r.environment, sessions, crashed, errored: Number(r.errored), abnormal: Number(r.abnormal),
        crashFreeRate: sessions === 0 ? null : Math.max(0, 1 - crashed / sessions),
      };
    });
  }
}
