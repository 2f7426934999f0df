import { createServer } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sendNotification, slackPayload, type Notification } from './notifier.js';

/** Retries with backoff against a real receiver that fails first; Slack payload shape. */

const bodies: string[] = [];
let failuresLeft = 0;
const server = createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    if (failuresLeft > 0) { failuresLeft--; res.writeHead(503).end(); return; }
    bodies.push(Buffer.concat(chunks).toString('utf8'));
    res.writeHead(failuresLeft === -1 ? 400 : 200).end();
  });
});
let url = '';
beforeAll(async () => {
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  url = `http://127.0.0.1:${(server.address() as { port: number }).port}/hook`;
});
afterAll(() => { server.close(); });

const n: Notification = {
  id: 'n1', receiver: 'r', status: 'firing', groupKey: 'g', groupLabels: {},
  alerts: [{
    id: 'a1', status: 'firing', repeat: false, rule: { id: 'file:x', name: 'x', type: 'threshold' },
    series: { service: 'checkout' }, labels: { service: 'checkout', alertname: 'x' }, value: 0.5, values: {},
    threshold: { threshold: 0.1 }, startsAt: '2026-01-01T00:00:00.000Z', endsAt: null,
    links: { console: 'http://c/#/alerts/a1', traces: 'http://c/api/traces?service=checkout' },
  }],
};

describe('sendNotification', () => {
  it('retries 5xx with backoff, then delivers once', async () => {
    failuresLeft = 2;
    bodies.length = 0;
    const t = performance.now();
    const r = await sendNotification({ name: 'r', type: 'webhook', url }, n, { attempts: 4, baseDelayMs: 20 });
    expect(r).toEqual({ ok: true, attempts: 3 });
    expect(performance.now() - t).toBeGreaterThanOrEqual(55); // 20 + 40 ms of backoff
    expect(bodies).toHaveLength(1);
    expect(JSON.parse(bodies[0])).toMatchObject({ version: '1', status: 'firing', alerts: [{ series: { service: 'checkout' } }] });
  });

  it('gives up without retrying a 4xx', async () => {
    failuresLeft = -1;
    const r = await sendNotification({ name: 'r', type: 'webhook', url }, n, { attempts: 4, baseDelayMs: 1 });
    failuresLeft = 0;
    expect(r).toMatchObject({ ok: false, attempts: 1, error: 'HTTP 400' });
  });

  it('Slack payload: text plus one attachment per alert naming the series', () => {
    const p = slackPayload(n) as { text: string; attachments: Array<{ text: string; color: string }> };
    expect(p.text).toBe('[FIRING:1] x');
    expect(p.attachments[0].color).toBe('danger');
    expect(p.attachments[0].text).toContain('service=checkout');
  });
});
