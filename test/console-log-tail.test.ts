import { describe, expect, it } from 'vitest';
import { LogTailHub, TAIL_MAX_CHARS_PER_PUSH, TAIL_MAX_LINES_PER_PUSH } from '../src/http/log-tail.js';
import { emptyLogBatch, type LogBatch, type LogRow } from '../src/telemetry/index.js';

/** The live-tail hub on its own: filtering, the per-push bound, slow and failing readers. */

function batch(lines: Array<{ service: string; severity: number; body: string; traceId?: string }>): LogBatch {
  const b = emptyLogBatch();
  for (const l of lines) {
    b.service.push(l.service); b.version.push('1.0.0'); b.environment.push('prod');
    b.resourceAttrs.push(JSON.stringify({ 'service.name': l.service })); b.scopeName.push('test'); b.scopeVersion.push('');
    b.timeUs.push(1_700_000_000_000_000 + b.length); b.observedTimeUs.push(1_700_000_000_000_000 + b.length);
    b.severityNumber.push(l.severity); b.severityText.push(''); b.body.push(l.body);
    b.traceId.push(l.traceId ?? ''); b.spanId.push(''); b.flags.push(0); b.attrs.push('{"k":"v"}');
    b.length++;
  }
  return b;
}

describe('LogTailHub', () => {
  it('gives each subscriber the lines its filter matches, as log rows', () => {
    const hub = new LogTailHub();
    const got: Record<string, LogRow[]> = { all: [], payments: [], errors: [], text: [], trace: [] };
    const sub = (name: string, filter: object) => hub.subscribe({ filter, send: (rows) => { got[name].push(...rows); return true; }, dropped: () => undefined });
    sub('all', {});
    sub('payments', { service: 'payments' });
    sub('errors', { minSeverity: 17 });
    sub('text', { q: 'DECLINED' });
    sub('trace', { traceId: 'ab'.repeat(16) });
    hub.publish(batch([
      { service: 'checkout', severity: 9, body: 'order placed' },
      { service: 'payments', severity: 17, body: 'card declined', traceId: 'ab'.repeat(16) },
      { service: 'payments', severity: 13, body: 'retrying' },
    ]));
    expect(got.all.map((r) => r.body)).toEqual(['order placed', 'card declined', 'retrying']);
    expect(got.payments.map((r) => r.body)).toEqual(['card declined', 'retrying']);
    expect(got.errors.map((r) => r.body)).toEqual(['card declined']);
    expect(got.text.map((r) => r.body)).toEqual(['card declined']);
    expect(got.trace.map((r) => r.body)).toEqual(['card declined']);
    expect(got.all[0]).toMatchObject({ service: 'checkout', version: '1.0.0', severityNumber: 9, attrs: { k: 'v' }, resourceAttrs: { 'service.name': 'checkout' } });
  });

  it('bounds one push per subscriber and counts the rest as dropped; a reader that cannot take more loses lines, not memory', () => {
    const hub = new LogTailHub();
    let sent = 0;
    let dropped = 0;
    hub.subscribe({ filter: {}, send: (rows) => { sent += rows.length; return true; }, dropped: (n) => { dropped += n; } });
    const n = TAIL_MAX_LINES_PER_PUSH + 123;
    hub.publish(batch(Array.from({ length: n }, (_, i) => ({ service: 's', severity: 9, body: `line ${i}` }))));
    expect([sent, dropped]).toEqual([TAIL_MAX_LINES_PER_PUSH, 123]);

    let slowDropped = 0;
    hub.subscribe({ filter: {}, send: () => false, dropped: (c) => { slowDropped += c; } });
    hub.publish(batch([{ service: 's', severity: 9, body: 'a' }, { service: 's', severity: 9, body: 'b' }]));
    expect(slowDropped).toBe(2);
  });

  it('bounds one push by size too: 64 KiB lines stop at TAIL_MAX_CHARS_PER_PUSH', () => {
    const hub = new LogTailHub();
    let chars = 0;
    let sent = 0;
    let dropped = 0;
    hub.subscribe({ filter: {}, send: (rows) => { sent += rows.length; chars += rows.reduce((n, r) => n + r.body.length, 0); return true; }, dropped: (n) => { dropped += n; } });
    const body = 'x'.repeat(64 * 1024);
    hub.publish(batch(Array.from({ length: 100 }, () => ({ service: 's', severity: 9, body }))));
    expect(chars).toBeLessThanOrEqual(TAIL_MAX_CHARS_PER_PUSH);
    expect(sent).toBeGreaterThan(0);
    expect(sent + dropped).toBe(100);
    expect(dropped).toBeGreaterThan(0);
  });

  it('drops a subscriber that throws and keeps serving the others; unsubscribe stops delivery', () => {
    const hub = new LogTailHub();
    const seen: string[] = [];
    hub.subscribe({ filter: {}, send: () => { throw new Error('socket gone'); }, dropped: () => undefined });
    const off = hub.subscribe({ filter: {}, send: (rows) => { seen.push(...rows.map((r) => r.body)); return true; }, dropped: () => undefined });
    expect(hub.size).toBe(2);
    hub.publish(batch([{ service: 's', severity: 9, body: 'first' }]));
    expect(hub.size).toBe(1);
    off();
    hub.publish(batch([{ service: 's', severity: 9, body: 'second' }]));
    expect(seen).toEqual(['first']);
    expect(hub.size).toBe(0);
  });
});
