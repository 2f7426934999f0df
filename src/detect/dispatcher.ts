/**
 * Dispatcher: turns alert edges into notifications — grouping (group_by, group_wait,
 * group_interval, repeat_interval), silences, inhibition and the notification log.
 *
 * Every (receiver, alert, edge) has a key: `firing` edges carry the fire time and the repeat
 * number (⌊(now − firedAt) / repeat_interval⌋), `resolved` edges the fire time. A key is logged
 * in the state store (`pending`) before its request goes out, and once its outcome is logged
 * (`sent`, `failed`) it is never sent again, so a flush may run as often as it likes: it only
 * ever sends what is new. A key a crash left `pending` (mid-send) is sent again by the next
 * process: at least once, with the same Idempotency-Key for the same edges (docs/cluster.md).
 */
import { createHash } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { Alert } from './alert.js';
import { matchesAll, type InhibitRule, type Receiver, type Rule } from './rules.js';
import type { SilenceBook } from './silences.js';
import { sendNotification, type Notification, type NotifiedAlert, type SendOptions } from './notifier.js';
import { iso, type DetectDatabase } from './storage.js';
import { metrics } from '../core/metrics.js';

interface Group {
  key: string;
  rule: Rule;
  labels: Record<string, string>;
  alerts: Map<string, Alert>;
  createdAt: number;
  lastSentAt: number | null;
}

export interface DispatcherDeps {
  db: Kysely<DetectDatabase>;
  silences: SilenceBook;
  receivers: () => Receiver[];
  inhibitRules: () => InhibitRule[];
  /** Alerts currently firing (inhibition sources). */
  firing: () => Iterable<Alert>;
  describe: (a: Alert, rule: Rule) => Omit<NotifiedAlert, 'repeat' | 'status'>;
  nowMs: () => number;
  send?: SendOptions;
  onError: (err: unknown, what: string) => void;
  /**
   * Fencing (a cluster: only the lease holder notifies): runs in the transaction that claims a
   * notification's keys and throws when this node no longer holds the lease. Absent on a node alone.
   */
  fence?: (tx: Kysely<DetectDatabase>) => Promise<void>;
  /** After each delivery attempt ends (incidents record who was told, and when). */
  onDelivered?: (e: { receiver: string; status: 'firing' | 'resolved'; alertIds: string[]; ok: boolean; at: string }) => void;
}

export class Dispatcher {
  /** Keys logged as sent or given up on. */
  private readonly logged = new Set<string>();
  private readonly groups = new Map<string, Group>();
  private readonly inFlight = new Set<Promise<void>>();
  /** The last delivery of each receiver × group: the next one waits for it (deliver()). */
  private readonly chains = new Map<string, Promise<void>>();
  /** Notifications sent since start (tests and the bench read it). */
  sent = 0;

  constructor(private readonly deps: DispatcherDeps) {}

  /** Loads the log; rows still 'pending' (a crash mid-send) are sent again. */
  async load(): Promise<void> {
    const rows = await this.deps.db.selectFrom('detect_notifications').select(['key', 'status']).where('status', '!=', 'pending').execute();
    for (const r of rows) this.logged.add(r.key);
  }

  private groupOf(a: Alert, rule: Rule): Group {
    const by = rule.spec.group_by;
    const labels: Record<string, string> = {};
    if (by === undefined) Object.assign(labels, a.labels);
    else for (const k of by) labels[k] = a.labels[k] ?? '';
    const key = `${rule.id}|${JSON.stringify(Object.entries(labels).sort())}`;
    let g = this.groups.get(key);
    if (!g) {
      g = { key, rule, labels, alerts: new Map(), createdAt: this.deps.nowMs(), lastSentAt: null };
      this.groups.set(key, g);
    }
    return g;
  }

  /** A lifecycle edge (firing or resolved): notify now if the group is due, else at its next flush. */
  onEdge(a: Alert, rule: Rule): void {
    const g = this.groupOf(a, rule);
    g.alerts.set(a.id, a);
    if (this.due(g, this.deps.nowMs())) this.flush(g);
  }

  /** Re-attaches an alert loaded at start (its edges were notified before, or will be now). */
  track(a: Alert, rule: Rule): void {
    const g = this.groupOf(a, rule);
    g.alerts.set(a.id, a);
  }

  forget(ruleId: string): void {
    for (const [k, g] of this.groups) if (g.rule.id === ruleId) this.groups.delete(k);
  }

  private due(g: Group, now: number): boolean {
    const s = g.rule.spec;
    if (g.lastSentAt === null) return now >= g.createdAt + s.group_wait;
    return now >= g.lastSentAt + s.group_interval;
  }

  /** Periodic: flushes due groups (new edges after group_interval, repeats, expired silences). */
  tick(): void {
    const now = this.deps.nowMs();
    for (const g of this.groups.values()) if (this.due(g, now)) this.flush(g);
  }

  /** Why an alert must not notify now, or undefined. */
  muted(a: Alert): string | undefined {
    const s = this.deps.silences.mutedBy(a.labels);
    if (s) return `silenced by ${s.id}`;
    for (const rule of this.deps.inhibitRules()) {
      if (!matchesAll(rule.target, a.labels)) continue;
      for (const src of this.deps.firing()) {
        if (src.id === a.id || src.state !== 'firing' || !matchesAll(rule.source, src.labels)) continue;
        if (rule.equal.every((l) => (src.labels[l] ?? '') === (a.labels[l] ?? ''))) return `inhibited by ${src.id}`;
      }
    }
    return undefined;
  }

  private flush(g: Group): void {
    const now = this.deps.nowMs();
    const spec = g.rule.spec;
    const receivers = this.deps.receivers().filter((r) => spec.receivers === undefined || spec.receivers.includes(r.name));
    let sentAny = false;
    for (const r of receivers) {
      const items: Array<{ key: string; alert: NotifiedAlert }> = [];
      for (const a of g.alerts.values()) {
        if (a.firedAt === null || this.muted(a) !== undefined) continue;
        const base = `${r.name}|${a.id}|${a.firedAt}`;
        if (a.state === 'firing') {
          const n = Math.max(0, Math.floor((now - a.firedAt) / spec.repeat_interval));
          const key = `${base}|firing|${n}`;
          if (!this.logged.has(key)) items.push({ key, alert: { ...this.deps.describe(a, g.rule), status: 'firing', repeat: n > 0 } });
        } else if (a.state === 'resolved') {
          const key = `${base}|resolved`;
          // Resolved is only news to someone who heard it fire.
          if (!this.logged.has(key) && this.logged.has(`${base}|firing|0`)) {
            items.push({ key, alert: { ...this.deps.describe(a, g.rule), status: 'resolved', repeat: false } });
          }
        }
      }
      if (items.length === 0) continue;
      sentAny = true;
      for (const it of items) this.logged.add(it.key);
      const id = createHash('sha256').update(items.map((i) => i.key).join('\n')).digest('hex').slice(0, 32);
      const n: Notification = {
        id, receiver: r.name, groupKey: g.key, groupLabels: g.labels,
        status: items.some((i) => i.alert.status === 'firing') ? 'firing' : 'resolved',
        alerts: items.map((i) => i.alert),
      };
      this.deliver(r, n, items.map((i) => ({ key: i.key, alertId: i.alert.id })));
    }
    if (sentAny) g.lastSentAt = now;
    for (const a of [...g.alerts.values()]) if (a.state === 'resolved') g.alerts.delete(a.id);
    if (g.alerts.size === 0) this.groups.delete(g.key);
  }

  private deliver(r: Receiver, n: Notification, keys: Array<{ key: string; alertId: string }>): void {
    const db = this.deps.db;
    const at = iso(this.deps.nowMs());
    // One group's notifications to one receiver leave in order: a resolved must never overtake
    // its firing. Each job's first await is a state write; on a pool (PostgreSQL) those finish
    // in any order, and two HTTP requests in flight may too, so they are chained, not raced.
    const chainKey = `${r.name}\n${n.groupKey}`;
    const before = this.chains.get(chainKey) ?? Promise.resolve();
    const job = before.then(async () => {
      // Logged before the request leaves: a logged outcome is never sent again (a crash between
      // sending and logging the outcome leaves it 'pending': sent again, at least once).
      // Claimed, not only logged: a key another process logged as sent or failed is not sent
      // again (a 'pending' one, a crash mid-send, is); in a cluster the claim is fenced by the
      // lease, so a node that lost it sends nothing.
      const claim = async (tx: Kysely<DetectDatabase>) => {
        await this.deps.fence?.(tx);
        return await tx.insertInto('detect_notifications')
          .values(keys.map((k) => ({ key: k.key, receiver: r.name, alert_id: k.alertId, status: 'pending', attempts: 0, updated_at: at })))
          .onConflict((oc) => oc.column('key').doUpdateSet({ updated_at: at }).where('detect_notifications.status', '=', 'pending'))
          .returning('key')
          .execute();
      };
      const claimed = new Set((this.deps.fence === undefined ? await claim(db) : await db.transaction().execute(claim)).map((c) => c.key));
      if (claimed.size < keys.length) {
        keys = keys.filter((k) => claimed.has(k.key));
        if (keys.length === 0) return;
        const ids = new Set(keys.map((k) => k.alertId));
        n = { ...n, id: createHash('sha256').update(keys.map((k) => k.key).join('\n')).digest('hex').slice(0, 32), alerts: n.alerts.filter((a) => ids.has(a.id)) };
      }
      const res = await sendNotification(r, n, this.deps.send);
      if (res.ok) {
        this.sent++;
        metrics.setDegraded(`notifier:${r.name}`, undefined);
      } else {
        metrics.inc('tightloop_notifier_failures_total', 'Notifications a receiver did not accept after all attempts.', { receiver: r.name });
        metrics.setDegraded(`notifier:${r.name}`, `the last notification failed: ${res.error ?? 'failed'}`);
        this.deps.onError(new Error(`receiver ${r.name}: ${res.error ?? 'failed'}`), 'notify');
      }
      metrics.inc('tightloop_notifications_total', 'Notifications delivered or failed, per receiver and outcome.', { receiver: r.name, outcome: res.ok ? 'sent' : 'failed' });
      this.deps.onDelivered?.({ receiver: r.name, status: n.status, alertIds: [...new Set(keys.map((k) => k.alertId))], ok: res.ok, at: iso(this.deps.nowMs()) });
      // Only over keys still `pending`: the first outcome logged stands. Not fenced: the request
      // left already, and its outcome is a fact (a node that lost the lease meanwhile, whose
      // send raced the new holder's re-send, must not turn the new holder's `sent` into `failed`,
      // nor leave a key it did send `pending` to be sent a third time).
      await db.updateTable('detect_notifications')
        .set({ status: res.ok ? 'sent' : 'failed', attempts: res.attempts, updated_at: iso(this.deps.nowMs()) })
        .where('key', 'in', keys.map((k) => k.key))
        .where('status', '=', 'pending')
        .execute();
    }).catch((e: unknown) => {
      metrics.inc('tightloop_notification_log_failures_total', 'Writes of the notification log (state database) that failed.', { receiver: r.name });
      this.deps.onError(e, 'notification log');
    });
    this.chains.set(chainKey, job);
    this.inFlight.add(job);
    void job.finally(() => {
      this.inFlight.delete(job);
      if (this.chains.get(chainKey) === job) this.chains.delete(chainKey);
    });
  }

  /** Waits for notifications in flight (shutdown, tests). */
  async drain(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.all([...this.inFlight]);
  }
}
