/**
 * Where an incident's story starts and ends: the first bad signal before its alert (a deploy's
 * own first bad request, else a change point in the service's rollups, else the alert's start),
 * the suspect deploy, and where the signal came back to its baseline. Reads telemetry and the
 * deploys pillar; writes only the incident's first-bad columns and suspect. The search over
 * buckets itself is pure (signal.ts).
 */
import type { Deploy, DeployApi } from '../deploys/contract.js';
import type { RedBucket, RedQuery, TraceQuery, TraceSummary } from '../telemetry/index.js';
import { backToBaseline, firstBadOfVersion, firstBadSignal, signalOf, type SignalName } from './signal.js';
import type { IncidentsTable } from './storage.js';
import { iso, type IncidentStore } from './store.js';

/** What incidents read from telemetry (DuckDbTelemetryStore provides it). */
export interface IncidentTelemetry {
  red(q: RedQuery): Promise<RedBucket[]>;
  searchTraces(q: TraceQuery): Promise<TraceSummary[]>;
}

/** An incident without an environment (its alerts had none) spans them all. */
export const envOf = (e: string): string | undefined => (e === '' ? undefined : e);
const ms = (t: string | null): number | null => (t === null ? null : Date.parse(t));

/** Bucket width for a range: one-second rollups up to 3 h, coarser beyond (at most 10,800 buckets). */
export function stepFor(rangeMs: number): number {
  return Math.max(1, Math.ceil(rangeMs / 1000 / 10_800));
}

/** Better evidence wins (a deploy's own first bad request, then a change point, then the alert's start). */
const rank = (x: string | null): number => (x === 'deploy' ? 2 : x === 'signal' ? 1 : 0);

export class FirstBadLocator {
  constructor(
    private readonly store: IncidentStore,
    private readonly telemetry: IncidentTelemetry,
    private readonly deploys: () => DeployApi | undefined,
    readonly lookbackMs: number,
  ) {}

  /**
   * The first bad signal before `alertMs` (detection), keeping the earliest over the incident's
   * alerts. For a deploy — the one whose verdict failed (`deploy`), else a deploy of the service
   * started within the lookback — the earliest bad evidence of its version: the first second of
   * its own traffic holding a failed (or, for latency, a slow) request. Otherwise the change
   * point over the service's one-second rollups; without one, the alert's start.
   */
  async locate(id: string, signal: SignalName, alertMs: number, deploy?: Deploy): Promise<void> {
    const r = await this.store.row(id);
    const fromMs = alertMs - this.lookbackMs;
    const env = envOf(r.environment);
    let found: { atUs: number; baseline: number; bad: number } | null = null;
    let source: 'deploy' | 'signal' | 'alert' = 'alert';
    let suspect: Deploy | undefined;
    for (const d of deploy !== undefined ? [deploy] : await this.recentDeploys(r, fromMs, alertMs)) {
      const startMs = Date.parse(d.startedAt);
      // A version may serve a little before CI records it: look from a minute earlier.
      const from = Math.max(fromMs, startMs - 60_000);
      const [mine, before] = await Promise.all([
        this.telemetry.red({ service: r.service, version: d.version, environment: env, fromUs: from * 1000, toUs: (alertMs + 1000) * 1000, stepS: 1 }),
        this.telemetry.red({ service: r.service, environment: env, fromUs: fromMs * 1000, toUs: Math.max(fromMs + 1000, startMs) * 1000, stepS: 1 }),
      ]);
      const f = firstBadOfVersion(mine, before.filter((b) => b.timeUs < from * 1000), signal);
      if (f !== null && f.atUs / 1000 <= alertMs) { found = f; source = 'deploy'; suspect = d; break; }
    }
    if (found === null) {
      const buckets = await this.telemetry.red({
        service: r.service, environment: env, fromUs: fromMs * 1000, toUs: (alertMs + 1000) * 1000, stepS: stepFor(this.lookbackMs),
      });
      found = firstBadSignal(buckets, signal);
      if (found !== null) source = 'signal';
    }
    const atMs = found === null ? alertMs : found.atUs / 1000;
    const known = ms(r.first_bad_at);
    // Between equal evidence, the earliest.
    if (known !== null && (rank(r.first_bad_source) > rank(source) || (rank(r.first_bad_source) === rank(source) && known <= atMs))) return;
    await this.store.transaction((tx) => this.store.update(tx, id, {
      first_bad_at: iso(atMs), first_bad_source: source, signal,
      baseline_level: found?.baseline ?? null, bad_level: found?.bad ?? null,
      ...(suspect === undefined ? {} : { suspect_deploy_id: suspect.id }),
    }));
    if (suspect === undefined) await this.findSuspect(id);
  }

  /** Deploys of the incident's service (not rollbacks) started in [fromMs, toMs], latest first. */
  private async recentDeploys(r: IncidentsTable, fromMs: number, toMs: number): Promise<Deploy[]> {
    const api = this.deploys();
    if (api === undefined) return [];
    const list = await api.list({ service: r.service, environment: envOf(r.environment), from: iso(fromMs), to: iso(toMs), limit: 20 });
    return list.filter((d) => d.rollbackOf === null && d.source !== 'rollback').slice(0, 3);
  }

  /** The most recent deploy of the service before the first bad signal (within its bucket). */
  private async findSuspect(id: string): Promise<void> {
    const r = await this.store.row(id);
    const fb = ms(r.first_bad_at);
    const api = this.deploys();
    if (api === undefined || fb === null) return;
    const list = await api.list({ service: r.service, environment: envOf(r.environment), from: iso(fb - 30 * 86_400_000), to: iso(fb + 999), limit: 50 });
    const before = list.filter((d) => Date.parse(d.startedAt) < fb + 1000).sort((a, b) => Date.parse(b.startedAt) - Date.parse(a.startedAt));
    if (before.length > 0 && before[0].id !== r.suspect_deploy_id) {
      await this.store.transaction((tx) => this.store.update(tx, id, { suspect_deploy_id: before[0].id }));
    }
  }

  /** Where the signal came back to its baseline, between the first bad signal and `untilMs`. */
  async recovery(r: IncidentsTable, untilMs: number): Promise<number | null> {
    const fb = ms(r.first_bad_at);
    if (fb === null || r.baseline_level === null || r.bad_level === null || untilMs <= fb) return null;
    const buckets = await this.telemetry.red({
      service: r.service, environment: envOf(r.environment),
      fromUs: fb * 1000, toUs: untilMs * 1000, stepS: stepFor(untilMs - fb),
    });
    const at = backToBaseline(buckets, signalOf(r.signal), r.baseline_level, r.bad_level);
    return at === null ? null : at / 1000;
  }
}
