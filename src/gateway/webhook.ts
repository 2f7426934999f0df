import type { Logger } from 'pino';

/**
 * Notifications for humans: pending access and statement reviews, and break-glass alerts,
 * posted as Slack-compatible incoming-webhook JSON (`text` plus `blocks`; other chat tools
 * accept the same shape). Delivery is best effort and never delays the caller.
 */

export interface Notification {
  /** One-line summary (Slack's fallback text). */
  text: string;
  /** Extra lines shown under the summary. */
  lines?: string[];
}

export function slackPayload(n: Notification): Record<string, unknown> {
  const blocks: unknown[] = [{ type: 'section', text: { type: 'mrkdwn', text: n.text } }];
  if (n.lines !== undefined && n.lines.length > 0) {
    blocks.push({ type: 'context', elements: n.lines.map((l) => ({ type: 'mrkdwn', text: l })) });
  }
  return { text: n.text, blocks };
}

export class WebhookNotifier {
  /** Deliveries in flight, so shutdown and tests can wait for them. */
  private readonly inflight = new Set<Promise<void>>();

  constructor(
    private readonly url: string | undefined,
    private readonly log: Logger,
  ) {}

  notify(n: Notification): void {
    if (this.url === undefined) return;
    const url = this.url;
    const p = (async () => {
      try {
        const res = await fetch(url, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify(slackPayload(n)),
          signal: AbortSignal.timeout(5_000),
        });
        if (!res.ok) this.log.warn({ status: res.status }, 'gateway webhook answered with an error');
      } catch (err) {
        this.log.warn({ err }, 'gateway webhook delivery failed');
      }
    })();
    this.inflight.add(p);
    void p.finally(() => this.inflight.delete(p));
  }

  async settle(): Promise<void> {
    await Promise.all([...this.inflight]);
  }
}
