/**
 * Notices: messages other pillars send to the receivers of rules.yaml outside any alert rule
 * (a rollout held for want of evidence). Same payloads as alert notifications (the generic
 * webhook's JSON, Slack's `{text, attachments}`), one pseudo-alert each, `rule.type: notice`.
 */
import { sendNotification, type Notification, type SendOptions } from './notifier.js';
import type { Receiver } from './rules.js';

export interface Notice {
  /** Stable id (idempotency key). */
  id: string;
  /** What kind of notice (the pseudo-rule's id), e.g. `rollout.held`. */
  kind: string;
  title: string;
  text: string;
  labels: Record<string, string>;
  /** Where to look (the console). */
  link: string;
}

/** Sends `n` to every receiver; answers per receiver whether it was delivered. Never throws. */
export async function sendNotice(receivers: readonly Receiver[], n: Notice, opts: SendOptions = {}): Promise<Array<{ receiver: string; ok: boolean; error?: string }>> {
  const at = new Date().toISOString();
  return Promise.all(receivers.map(async (r) => {
    const notification: Notification = {
      id: `${n.id}:${r.name}`, receiver: r.name, status: 'firing', groupKey: n.kind, groupLabels: n.labels,
      alerts: [{
        id: n.id, status: 'firing', repeat: false, rule: { id: n.kind, name: n.title, type: 'notice' }, series: n.labels,
        labels: { ...n.labels, alertname: n.kind }, value: null, values: {}, threshold: { reason: n.text }, startsAt: at, endsAt: null,
        links: { console: n.link, traces: '' },
      }],
    };
    const res = await sendNotification(r, notification, opts);
    return { receiver: r.name, ok: res.ok, ...(res.error === undefined ? {} : { error: res.error }) };
  }));
}
