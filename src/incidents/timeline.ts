/**
 * The story of an incident, assembled from facts its owners hold: the incident's own record
 * (alert edges, notifications, acknowledgements, error groups), the rollups' change points, the
 * deploys pillar (deploys, rollbacks, verdicts) and the gateway's audit chain (access, statements,
 * actions). Pure: the service gathers the facts, this orders and labels them.
 */
import type { Deploy, Verification } from '../deploys/contract.js';
import { textOf } from '../core/text.js';
import { TIMELINE_KINDS, type DeployLink, type Incident, type TimelineEntry, type TimelineKind, type TimelineLinks } from './model.js';

export interface StoredEvent {
  at: string;
  kind: string;
  actor: string | null;
  ref: string | null;
  data: Record<string, unknown>;
}

/** The fields of an audit record the story reads (AuditRecord from the gateway has them). */
export interface AuditFact {
  seq: number;
  at: string;
  kind: string;
  actor: string | null;
  resource: string | null;
  data: Record<string, unknown>;
}

export interface StoryFacts {
  incident: Incident;
  events: StoredEvent[];
  audit: AuditFact[];
  deploys: Array<{ deploy: Deploy; verification: Verification | null }>;
  suspect: DeployLink | null;
  /** Links for the first bad signal: example traces, the log query, error groups. */
  signalLinks: TimelineLinks;
  baseline: number | null;
  bad: number | null;
}

const RANK = new Map<string, number>(TIMELINE_KINDS.map((k, i) => [k, i]));

export function deployLink(d: Deploy): DeployLink {
  return { id: d.id, service: d.service, version: d.version, environment: d.environment, commit: d.commit, commitTime: d.commitTime, url: d.url, status: d.status };
}

const fmt = (signal: string, v: number | null): string =>
  v === null ? '?' : signal === 'error_rate' ? `${(v * 100).toFixed(1)} %` : `${v.toFixed(1)} ms`;

function auditEntry(r: AuditFact): TimelineEntry | null {
  const base = { at: r.at, actor: r.actor, service: null, links: { auditSeq: r.seq }, data: { ...r.data, auditKind: r.kind, resource: r.resource } };
  const what = typeof r.data.kind === 'string' ? r.data.kind : 'access';
  if (r.kind === 'request.created') {
    return { ...base, kind: 'access.requested', title: `${r.actor ?? 'someone'} requested ${what === 'statement' ? 'a statement review' : `${textOf(r.data.mode)} access`} on ${r.resource ?? '?'}` };
  }
  if (r.kind === 'request.approved') return { ...base, kind: 'access.approved', title: `${r.actor ?? 'someone'} approved ${what} request on ${r.resource ?? '?'}` };
  if (r.kind === 'access.break_glass') return { ...base, kind: 'access.approved', title: `${r.actor ?? 'someone'} broke glass on ${r.resource ?? '?'}` };
  if (r.kind === 'statement') {
    const sql = typeof r.data.sql === 'string' ? r.data.sql : '';
    const n = typeof r.data.executions === 'number' && r.data.executions > 1 ? ` (×${r.data.executions})` : '';
    return { ...base, kind: 'statement', title: `${textOf(r.data.decision, 'ran')}: ${sql.length > 120 ? `${sql.slice(0, 120)}…` : sql}${n}` };
  }
  if (r.kind.startsWith('action.')) {
    const name = r.resource?.startsWith('action:') === true ? r.resource.slice('action:'.length) : typeof r.data.action === 'string' ? r.data.action : 'action';
    const what = r.kind === 'action.run' && typeof r.data.status === 'string' ? r.data.status : r.kind.slice('action.'.length);
    return { ...base, kind: 'action', title: `action ${name}: ${what}` };
  }
  return null;
}

function eventEntry(e: StoredEvent, inc: Incident): TimelineEntry | null {
  const base = { at: e.at, actor: e.actor, service: inc.service, links: {} as TimelineLinks, data: e.data };
  switch (e.kind) {
    case 'alert.fired':
    case 'alert.resolved': {
      const links = (e.data.links ?? {}) as { console?: string; traces?: string };
      return { ...base, kind: e.kind, title: `${textOf(e.data.rule, 'alert')} ${e.kind === 'alert.fired' ? 'fired' : 'resolved'}`, links: { alert: e.ref ?? undefined, traces: links.traces } };
    }
    case 'notified':
      return { ...base, kind: 'notified', title: `${textOf(e.data.receiver, 'receiver')} notified (${textOf(e.data.status)}${e.data.ok === false ? ', delivery failed' : ''})`, links: { alert: e.ref ?? undefined } };
    case 'acknowledged':
      return { ...base, kind: 'acknowledged', title: `acknowledged by ${e.actor ?? 'someone'}` };
    case 'assigned':
      return { ...base, kind: 'assigned', title: `assigned to ${textOf(e.data.assignee, '?')}` };
    case 'error_group':
      return { ...base, kind: 'error_group', title: `error group ${textOf(e.data.kind, 'new')}: ${textOf(e.data.title)}`, links: { errorGroups: e.ref === null ? [] : [e.ref] } };
    case 'fix.unverified':
      return {
        ...base, kind: 'fix_unverified',
        title: `recovered but unverified: the verification of ${e.data.rollback === true ? 'the rollback to ' : ''}${inc.service} ${textOf(e.data.version, '?')} was inconclusive${typeof e.data.reason === 'string' ? ` (${e.data.reason})` : ''}; the incident stays open until a person resolves it or a fix passes`,
      };
    case 'note':
      return { ...base, kind: 'note', title: `${e.actor ?? 'someone'} noted: ${textOf(e.data.note)}` };
    case 'resolved':
      return { ...base, kind: 'resolved', title: `resolved (${textOf(e.data.resolution, 'manual')})${typeof e.data.note === 'string' && e.data.note !== '' ? `: ${e.data.note}` : ''}` };
    default:
      return null;
  }
}

/** The ordered timeline: by time, and for equal times in the loop's natural order. */
export function buildTimeline(f: StoryFacts): TimelineEntry[] {
  const inc = f.incident;
  const out: TimelineEntry[] = [];
  if (inc.firstBadAt !== null) {
    out.push({
      at: inc.firstBadAt, kind: 'first_bad_signal', actor: null, service: inc.service,
      title: inc.firstBadSource === 'deploy'
        ? `first ${inc.signal === 'error_rate' ? 'failed' : 'slow'} request of ${f.suspect === null ? 'the new version' : `${f.suspect.service} ${f.suspect.version}`} (${inc.signal} ${fmt(inc.signal, f.baseline)} before → ${fmt(inc.signal, f.bad)})`
        : inc.firstBadSource === 'signal'
          ? `${inc.signal} left its baseline (${fmt(inc.signal, f.baseline)} → ${fmt(inc.signal, f.bad)})`
          : `${inc.signal} breached (no earlier change found in the rollups)`,
      links: { ...f.signalLinks, ...(f.suspect === null ? {} : { suspectDeploy: f.suspect }) },
      data: { source: inc.firstBadSource, baseline: f.baseline, bad: f.bad },
    });
  }
  for (const e of f.events) {
    const entry = eventEntry(e, inc);
    if (entry !== null) out.push(entry);
  }
  for (const r of f.audit) {
    const entry = auditEntry(r);
    if (entry !== null) out.push(entry);
  }
  for (const { deploy: d, verification: v } of f.deploys) {
    const rollback = d.rollbackOf !== null || d.source === 'rollback';
    out.push({
      at: d.startedAt, kind: rollback ? 'rollback' : 'deploy', actor: d.actor, service: d.service,
      title: `${rollback ? 'rollback' : 'deploy'} ${d.service} ${d.previousVersion ?? '∅'} → ${d.version}${d.id === f.suspect?.id ? ' (suspect)' : ''}`,
      links: { deploy: deployLink(d) },
      data: { deployId: d.id, rollbackOf: d.rollbackOf, source: d.source },
    });
    const decidedAt = v?.decidedAt ?? d.decidedAt;
    const outcome = v?.outcome ?? (d.status === 'passed' ? 'pass' : d.status === 'failed' ? 'fail' : d.status === 'inconclusive' ? 'inconclusive' : null);
    if (decidedAt !== null && outcome !== null) {
      out.push({
        at: decidedAt, kind: 'verdict', actor: null, service: d.service,
        title: `verification of ${d.service} ${d.version}: ${outcome}${v?.reason ? ` (${v.reason})` : ''}`,
        links: { deploy: deployLink(d) },
        data: { deployId: d.id, outcome, verificationId: v?.id ?? d.verificationId },
      });
    }
  }
  if (inc.recoveredAt !== null) {
    out.push({
      at: inc.recoveredAt, kind: 'signal_recovered', actor: null, service: inc.service,
      title: `${inc.signal} back to baseline (${fmt(inc.signal, f.baseline)})`, links: { traces: f.signalLinks.traces, logs: f.signalLinks.logs }, data: {},
    });
  }
  return sortTimeline(out);
}

export function sortTimeline(entries: TimelineEntry[]): TimelineEntry[] {
  const rank = (k: TimelineKind): number => RANK.get(k) ?? 99;
  return entries.sort((a, b) => Date.parse(a.at) - Date.parse(b.at) || rank(a.kind) - rank(b.kind));
}
