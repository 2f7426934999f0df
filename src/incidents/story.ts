/**
 * Gathers what the story of an incident needs from its owners — telemetry (example traces,
 * recovery), errors (groups of those traces), deploys (deploys, rollbacks, verdicts, the suspect)
 * and the gateway's audit chain (access, statements, actions in the incident's time range) —
 * and hands it to the pure timeline builder. Also gathers the facts for the loop metrics.
 */
import type { Deploy, Verification } from '../deploys/contract.js';
import type { AuditQuery, AuditRecord } from '../gateway/index.js';
import { incidentTimes, loopMetrics, type IncidentFacts, type IncidentTimes, type LoopMetrics } from './metrics.js';
import type { DeployLink, Incident, TimelineEntry, TimelineLinks } from './model.js';
import { envOf, type IncidentService, type IncidentTelemetry } from './service.js';
import { buildTimeline, deployLink, type AuditFact } from './timeline.js';

export interface StoryDeps {
  incidents: IncidentService;
  telemetry: IncidentTelemetry;
  audit?: { query(q: AuditQuery): Promise<AuditRecord[]> };
  errorsForTrace?: (traceId: string) => Promise<Array<{ groupId: string }>>;
  publicUrl: () => string;
}

export interface IncidentStory {
  incident: Incident;
  suspectDeploy: DeployLink | null;
  links: TimelineLinks;
  times: IncidentTimes;
  timeline: TimelineEntry[];
}

/** Audit kinds the story tells (prefixes end with a dot). */
const AUDIT_KINDS = ['request.created', 'request.approved', 'access.break_glass', 'statement', 'action.'];

/** Names an audit record gives for the service it concerns, if any. */
function servicesNamed(r: AuditRecord): string[] {
  const out: string[] = [];
  const d = r.data;
  const params = (typeof d.params === 'object' && d.params !== null ? d.params : {}) as Record<string, unknown>;
  for (const v of [d.service, params.service, params.SERVICE]) if (typeof v === 'string') out.push(v);
  return out;
}

const toMs = (t: string | null): number | null => (t === null ? null : Date.parse(t));

export function incidentFacts(i: Incident): IncidentFacts {
  return {
    id: i.id, service: i.service, environment: i.environment, firstBadAt: toMs(i.firstBadAt), detectedAt: Date.parse(i.detectedAt),
    acknowledgedAt: toMs(i.acknowledgedAt), recoveredAt: toMs(i.recoveredAt), resolvedAt: toMs(i.resolvedAt), suspectDeployId: i.suspectDeployId,
  };
}

export async function tellStory(deps: StoryDeps, id: string): Promise<IncidentStory> {
  const svc = deps.incidents;
  await svc.idle();
  const row = await svc.row(id);
  const incident = await svc.view(row);
  // MTTD / MTTA / MTTR from the stored facts, by the one function /api/loop-metrics and
  // `tightloop report` use (the live recovery below is for the timeline only).
  const times = incidentTimes(incidentFacts(incident));
  const nowMs = Date.now();
  const startMs = Date.parse(incident.firstBadAt ?? incident.detectedAt);
  const endMs = incident.resolvedAt === null ? nowMs : Date.parse(incident.resolvedAt);
  // While open: where the signal has come back so far (stored for good on resolution).
  if (incident.recoveredAt === null && incident.status !== 'resolved' && incident.alerts.length > 0 && incident.alerts.every((a) => a.state === 'resolved')) {
    const r = await svc.recovery(row, nowMs).catch(() => null); // the story tells what it can read: no recovery yet
    if (r !== null) incident.recoveredAt = new Date(r).toISOString();
  }

  const base = deps.publicUrl();
  const windowEnd = Math.min(endMs, startMs + 5 * 60_000);
  const traces = await deps.telemetry.searchTraces({ service: incident.service, status: 'error', fromUs: startMs * 1000, toUs: Math.max(windowEnd, startMs + 1000) * 1000, limit: 5 });
  const traceIds = traces.map((t) => t.traceId);
  const groups = new Set<string>();
  if (deps.errorsForTrace !== undefined) {
    for (const t of traceIds) for (const e of await deps.errorsForTrace(t).catch(() => [])) groups.add(e.groupId); // unreadable: no linked groups
  }
  const events = await svc.events(id);
  for (const e of events) if (e.kind === 'error_group' && e.ref !== null) groups.add(e.ref);
  const range = { from: String(startMs), to: String(Math.max(endMs, startMs + 1000)) };
  const links: TimelineLinks = {
    traceIds,
    traces: `${base}/api/traces?${new URLSearchParams({ service: incident.service, status: 'error', ...range }).toString()}`,
    logs: `${base}/api/logs?${new URLSearchParams({ service: incident.service, severity: 'warn', ...range }).toString()}`,
    errorGroups: [...groups],
  };

  const deployFacts: Array<{ deploy: Deploy; verification: Verification | null }> = [];
  let suspect: DeployLink | null = null;
  const api = svc.deployApi;
  if (api !== undefined) {
    const seen = new Set<string>();
    if (incident.suspectDeployId !== null) {
      const d = await api.get(incident.suspectDeployId).catch(() => null); // gone or unreadable: no suspect shown
      // A verification that cannot be read shows as none.
      if (d !== null) { suspect = deployLink(d); deployFacts.push({ deploy: d, verification: await api.verification(d.id).catch(() => null) }); seen.add(d.id); }
    }
    const during = await api.list({ service: incident.service, environment: envOf(incident.environment), from: new Date(startMs).toISOString(), to: new Date(endMs).toISOString(), limit: 200 });
    for (const d of during) {
      const t = Date.parse(d.startedAt);
      if (seen.has(d.id) || t < startMs || t > endMs) continue;
      seen.add(d.id);
      deployFacts.push({ deploy: d, verification: await api.verification(d.id).catch(() => null) }); // unreadable shows as none
    }
  }

  const audit: AuditFact[] = [];
  if (deps.audit !== undefined) {
    const from = new Date(startMs).toISOString(), to = new Date(endMs + 1).toISOString();
    for (const kind of AUDIT_KINDS) {
      for (const r of await deps.audit.query({ kind, from, to, limit: 200 })) {
        const named = servicesNamed(r);
        if (named.length > 0 && !named.includes(incident.service)) continue;
        audit.push({ seq: r.seq, at: r.at, kind: r.kind, actor: r.actor, resource: r.resource, data: r.data });
      }
    }
  }

  const timeline = buildTimeline({ incident, events, audit, deploys: deployFacts, suspect, signalLinks: links, baseline: row.baseline_level, bad: row.bad_level });
  return { incident, suspectDeploy: suspect, links, times, timeline };
}

/** Loop metrics over [fromMs, toMs): incidents from the state store, deploys from the deploys pillar. */
export async function gatherLoopMetrics(deps: StoryDeps, fromMs: number, toMs: number, service?: string): Promise<LoopMetrics & { deploysAvailable: boolean }> {
  const svc = deps.incidents;
  await svc.idle();
  // The first bad signal precedes detection by at most the lookback; read a margin either side.
  let q = svc.db.selectFrom('incidents').selectAll()
    .where('detected_at', '>=', new Date(fromMs - svc.lookbackMs).toISOString())
    .where('detected_at', '<', new Date(toMs + svc.lookbackMs).toISOString());
  if (service !== undefined) q = q.where('service', '=', service);
  const incidents = await svc.views(await q.execute());
  const api = svc.deployApi;
  const deploys = api === undefined ? [] : await api.list({ service, from: new Date(fromMs).toISOString(), limit: 100_000 });
  return { ...loopMetrics({ fromMs, toMs, service, incidents: incidents.map(incidentFacts), deploys }), deploysAvailable: api !== undefined };
}
