/**
 * Alert: one rule × one series, identified by a fingerprint of the rule id and the series
 * labels, and its durable record (current row + history of state changes).
 */
import { createHash } from 'node:crypto';
import type { Kysely } from 'kysely';
import { ulid } from 'ulid';
import type { LifecycleState } from './evaluate.js';
import { iso, ms, type DetectDatabase } from './storage.js';

export interface Alert extends LifecycleState {
  id: string;
  ruleId: string;
  ruleName: string;
  /** The series the rule fanned out to. */
  series: Record<string, string>;
  /** Series labels + rule labels + alertname: what silences, inhibition and grouping match. */
  labels: Record<string, string>;
  value: number | null;
  values: Record<string, number>;
}

export function alertId(ruleId: string, series: Record<string, string>): string {
  const canon = JSON.stringify([ruleId, Object.entries(series).sort(([a], [b]) => a.localeCompare(b))]);
  return createHash('sha256').update(canon).digest('hex').slice(0, 24);
}

export function alertLabels(ruleName: string, ruleLabels: Record<string, string>, series: Record<string, string>): Record<string, string> {
  return { ...series, ...ruleLabels, alertname: ruleName };
}

/** Upserts the current row and appends a history row when the state changed. */
/** `fence` (a cluster): runs first in the transaction and throws `lease_lost` when this node lost the lease (docs/cluster.md). */
export async function saveAlert(db: Kysely<DetectDatabase>, a: Alert, stateChanged: boolean, nowMs: number, fence?: (tx: Kysely<DetectDatabase>) => Promise<void>): Promise<void> {
  const row = {
    rule_id: a.ruleId, rule_name: a.ruleName, labels: JSON.stringify(a.labels), state: a.state, value: a.value,
    values_json: JSON.stringify({ series: a.series, values: a.values }), active_at: iso(a.activeAt),
    fired_at: a.firedAt === null ? null : iso(a.firedAt), resolved_at: a.resolvedAt === null ? null : iso(a.resolvedAt),
    last_breach_at: iso(a.lastBreachAt), updated_at: iso(nowMs),
  };
  await db.transaction().execute(async (tx) => {
    await fence?.(tx);
    await tx.insertInto('detect_alerts').values({ id: a.id, ...row })
      .onConflict((oc) => oc.column('id').doUpdateSet(row)).execute();
    if (stateChanged) {
      await tx.insertInto('detect_alert_history').values({ id: ulid(), alert_id: a.id, state: a.state, value: a.value, at: iso(nowMs) }).execute();
    }
  });
}

/** Alerts still pending or firing (what a restart must remember). */
export async function loadOpenAlerts(db: Kysely<DetectDatabase>): Promise<Alert[]> {
  const rows = await db.selectFrom('detect_alerts').selectAll().where('state', 'in', ['pending', 'firing']).execute();
  return rows.map((r) => {
    const extra = JSON.parse(r.values_json) as { series: Record<string, string>; values: Record<string, number> };
    return {
      id: r.id, ruleId: r.rule_id, ruleName: r.rule_name, series: extra.series, labels: JSON.parse(r.labels) as Record<string, string>,
      value: r.value, values: extra.values, state: r.state as Alert['state'], activeAt: ms(r.active_at) ?? 0,
      firedAt: ms(r.fired_at), resolvedAt: ms(r.resolved_at), lastBreachAt: ms(r.last_breach_at) ?? 0,
    };
  });
}

export interface AlertView {
  id: string;
  ruleId: string;
  ruleName: string;
  state: string;
  labels: Record<string, string>;
  series: Record<string, string>;
  value: number | null;
  values: Record<string, number>;
  activeAt: string;
  firedAt: string | null;
  resolvedAt: string | null;
  updatedAt: string;
}

export async function queryAlerts(db: Kysely<DetectDatabase>, f: { state?: string; id?: string }, limit: number): Promise<AlertView[]> {
  let q = db.selectFrom('detect_alerts').selectAll().orderBy('updated_at', 'desc').limit(limit);
  if (f.state !== undefined) q = q.where('state', '=', f.state);
  if (f.id !== undefined) q = q.where('id', '=', f.id);
  return (await q.execute()).map((r) => {
    const extra = JSON.parse(r.values_json) as { series: Record<string, string>; values: Record<string, number> };
    return {
      id: r.id, ruleId: r.rule_id, ruleName: r.rule_name, state: r.state, labels: JSON.parse(r.labels) as Record<string, string>,
      series: extra.series, value: r.value, values: extra.values, activeAt: r.active_at, firedAt: r.fired_at,
      resolvedAt: r.resolved_at, updatedAt: r.updated_at,
    };
  });
}

export async function alertHistory(db: Kysely<DetectDatabase>, id: string): Promise<Array<{ state: string; value: number | null; at: string }>> {
  return db.selectFrom('detect_alert_history').select(['state', 'value', 'at']).where('alert_id', '=', id).orderBy('id').execute();
}
