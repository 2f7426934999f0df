import { ruleCondition } from '../cli/rule-text.js';
import type { DemoApi } from './api.js';

/**
 * What the demo says about alerts and the incident's end, read back from tightloop's API (never
 * a fixed sentence): which alert fired, on what value against which condition, when it resolved,
 * and what the incident's resolution rested on. Console links carry the moment they are about.
 */

/** Console range around a moment: from 2 min before to 3 min after (`from`/`to` in epoch ms). */
export function around(path: string, atMs: number): string {
  return `${path}${path.includes('?') ? '&' : '?'}from=${Math.floor(atMs - 120_000)}&to=${Math.ceil(atMs + 180_000)}`;
}

export interface AlertSeen {
  id: string;
  ruleId: string;
  ruleName: string;
  state: string;
  firedAt: string | null;
  resolvedAt: string | null;
  /** The value the rule saw when it fired (from the alert's history). */
  firedValue: number | null;
  /** The rule's condition, e.g. `error_rate > 0.1 % over 15 s where service=shop`. */
  condition: string;
}

interface AlertView { id: string; ruleId: string; ruleName: string; state: string; labels: Record<string, string>; value: number | null; firedAt: string | null; resolvedAt: string | null }
interface AlertDetail extends AlertView { history: Array<{ state: string; value: number | null; at: string }> }
interface RuleView { id: string; spec: Record<string, unknown> }

/** `HH:MM:SS.mmm` (UTC, like the demo's step lines). */
export function clock(iso: string | null): string {
  return iso === null ? '—' : new Date(Date.parse(iso)).toISOString().slice(11, 23);
}

/** A value as the rule reads it: error rates in %. */
export function valueText(condition: string, v: number | null): string {
  if (v === null) return '?';
  return condition.startsWith('error_rate') ? `${Number((v * 100).toFixed(2))} %` : String(Number(v.toFixed(3)));
}

/** Alerts of `service` that fired at or after `sinceMs`, with their rule's condition. */
export async function alertsFiredSince(api: DemoApi, service: string, sinceMs: number): Promise<AlertSeen[]> {
  const list = await api<{ alerts: AlertView[] }>('/api/alerts?state=all&limit=100');
  if (list.status !== 200 || !Array.isArray(list.body?.alerts)) return [];
  const hits = list.body.alerts.filter((a) => a.labels.service === service && a.firedAt !== null && Date.parse(a.firedAt) >= sinceMs);
  if (hits.length === 0) return [];
  const rules = await api<{ rules: RuleView[] }>('/api/rules');
  const specOf = new Map((rules.body?.rules ?? []).map((r) => [r.id, r.spec]));
  const out: AlertSeen[] = [];
  for (const a of hits) {
    const d = await api<AlertDetail>(`/api/alerts/${encodeURIComponent(a.id)}`);
    const fired = d.status === 200 ? d.body.history.find((h) => h.state === 'firing') : undefined;
    const spec = specOf.get(a.ruleId);
    out.push({
      id: a.id, ruleId: a.ruleId, ruleName: a.ruleName, state: a.state, firedAt: a.firedAt, resolvedAt: a.resolvedAt,
      firedValue: fired?.value ?? null, condition: spec === undefined ? '(rule no longer defined)' : ruleCondition(spec),
    });
  }
  return out.sort((x, y) => Date.parse(x.firedAt ?? '') - Date.parse(y.firedAt ?? ''));
}

/** `alert "shop error rate" fired at 06:01:31.512: error_rate 7.5 % (rule: error_rate > 0.1 % over 15 s …)`. */
export function firedLine(a: AlertSeen): string {
  return `alert "${a.ruleName}" fired at ${clock(a.firedAt)}: ${a.condition.split(' ')[0]} was ${valueText(a.condition, a.firedValue)} (rule: ${a.condition})`;
}

export interface IncidentEnd {
  incident: { id: string; status: string; resolution?: string | null; resolvedAt: string | null; alerts?: Array<{ id: string; rule: string; state: string; firedAt: string; resolvedAt: string | null }> };
  timeline: Array<{ at: string; kind: string; title: string }>;
}

/**
 * How the incident ended, from its record and timeline: `resolved by itself: alert "shop error
 * rate" resolved at 06:01:45.020; verification of shop 1.0.0: pass (...)`, or, without any alert,
 * that none had fired.
 */
export function resolvedLine(s: IncidentEnd): string {
  const how = s.incident.resolution === 'auto' ? 'resolved by itself' : `resolved (${s.incident.resolution ?? 'unknown'})`;
  const alerts = s.incident.alerts ?? [];
  const alertText = alerts.length === 0 ? 'no alert had fired (the failed verdict opened it)'
    : alerts.map((a) => `alert "${a.rule}" ${a.state === 'resolved' ? `resolved at ${clock(a.resolvedAt)}` : 'still firing'}`).join(', ');
  const verdicts = s.timeline.filter((e) => e.kind === 'verdict');
  const last = verdicts[verdicts.length - 1];
  return `incident ${how} at ${clock(s.incident.resolvedAt)}: ${alertText}${last === undefined ? '' : `; ${last.title}`}`;
}
