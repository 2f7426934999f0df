/**
 * Notifiers: one interface, two payload shapes. The generic webhook gets the whole notification
 * as JSON; Slack-compatible incoming webhooks get `{text, attachments}`. Sending retries with
 * exponential backoff; the caller's notification log keeps a retry or restart from sending an
 * edge twice, and `Idempotency-Key` lets a receiver drop the rare in-flight duplicate.
 */
import type { Receiver } from './rules.js';

export interface NotifiedAlert {
  id: string;
  status: 'firing' | 'resolved';
  /** A repeat of an alert that is still firing (repeat_interval). */
  repeat: boolean;
  rule: { id: string; name: string; type: string };
  /** The series the rule fanned out to (service, operation, version, environment). */
  series: Record<string, string>;
  /** Series labels + rule labels + alertname. */
  labels: Record<string, string>;
  value: number | null;
  values: Record<string, number>;
  threshold: Record<string, unknown>;
  startsAt: string;
  endsAt: string | null;
  /** Console, example traces; `errors` (error rules: the group) and `logs` (log rules) when they apply. */
  links: { console: string; traces: string; errors?: string; logs?: string };
}

export interface Notification {
  id: string;
  receiver: string;
  status: 'firing' | 'resolved';
  groupKey: string;
  groupLabels: Record<string, string>;
  alerts: NotifiedAlert[];
}

export function slackPayload(n: Notification): Record<string, unknown> {
  const firing = n.alerts.filter((a) => a.status === 'firing').length;
  const title = `[${n.status.toUpperCase()}${firing > 0 ? `:${firing}` : ''}] ${n.alerts[0]?.rule.name ?? ''}`;
  return {
    text: title,
    attachments: n.alerts.map((a) => ({
      color: a.status === 'firing' ? 'danger' : 'good',
      title: `${a.status === 'firing' ? 'Firing' : 'Resolved'}: ${a.rule.name}`,
      title_link: a.links.console,
      text: [
        Object.entries(a.series).map(([k, v]) => `${k}=${v}`).join(' '),
        `value: ${a.value ?? 'n/a'}  threshold: ${JSON.stringify(a.threshold)}`,
        `since ${a.startsAt}${a.endsAt ? ` until ${a.endsAt}` : ''}`,
        [`<${a.links.traces}|example traces>`, a.links.errors ? `<${a.links.errors}|errors>` : '', a.links.logs ? `<${a.links.logs}|logs>` : '']
          .filter((x) => x !== '').join('  '),
      ].join('\n'),
    })),
  };
}

export interface SendOptions {
  attempts?: number;
  baseDelayMs?: number;
  timeoutMs?: number;
}

/** POSTs the payload; retries network errors, 5xx and 429 with backoff. Never throws. */
export async function sendNotification(r: Receiver, n: Notification, opts: SendOptions = {}): Promise<{ ok: boolean; attempts: number; error?: string }> {
  const body = JSON.stringify(r.type === 'slack' ? slackPayload(n) : { version: '1', ...n });
  const attempts = opts.attempts ?? 5;
  let error = '';
  for (let i = 1; i <= attempts; i++) {
    try {
      const res = await fetch(r.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'idempotency-key': n.id, ...r.headers },
        body,
        signal: AbortSignal.timeout(opts.timeoutMs ?? 5000),
      });
      await res.arrayBuffer();
      if (res.ok) return { ok: true, attempts: i };
      error = `HTTP ${res.status}`;
      // A 4xx other than 429 will not get better by retrying.
      if (res.status < 500 && res.status !== 429) return { ok: false, attempts: i, error };
    } catch (e) {
      error = (e as Error).message;
    }
    if (i < attempts) await new Promise((done) => setTimeout(done, (opts.baseDelayMs ?? 200) * 2 ** (i - 1)));
  }
  return { ok: false, attempts, error };
}
