import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { MetricsRegistry, escapeLabelValue } from './metrics.js';

/** `promtool check metrics` (Debian's prometheus package) reads the exposition on stdin. */
function promtoolCheck(text: string): { status: number | null; out: string } {
  const r = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
  if (r.error) throw r.error;
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

describe('metrics registry', () => {
  it('renders counters, gauges and collected families in the 0.0.4 text format that promtool accepts', () => {
    const m = new MetricsRegistry();
    m.inc('tightloop_notifier_failures_total', 'Failed notifications.\nSecond line \\ here.', { receiver: 'pager "main"\\ops\nteam' });
    m.inc('tightloop_notifier_failures_total', 'ignored', { receiver: 'pager "main"\\ops\nteam' }, 2);
    m.inc('tightloop_notifier_failures_total', 'ignored', { receiver: 'slack' });
    m.setGauge('tightloop_ingest_log_lag_bytes', 'Bytes not yet loaded.', 5);
    m.collect('tightloop_ingest_truncated_values_total', 'Strings cut.', 'counter', () => [{ labels: {}, value: 7 }]);
    const text = m.render();
    expect(text).toContain('# HELP tightloop_notifier_failures_total Failed notifications.\\nSecond line \\\\ here.\n');
    expect(text).toContain('# TYPE tightloop_notifier_failures_total counter\n');
    expect(text).toContain('tightloop_notifier_failures_total{receiver="pager \\"main\\"\\\\ops\\nteam"} 3\n');
    expect(text).toContain('tightloop_notifier_failures_total{receiver="slack"} 1\n');
    expect(text).toContain('# TYPE tightloop_ingest_log_lag_bytes gauge\ntightloop_ingest_log_lag_bytes 5\n');
    expect(text).toContain('tightloop_ingest_truncated_values_total 7\n');
    expect(m.value('tightloop_notifier_failures_total', { receiver: 'slack' })).toBe(1);
    const check = promtoolCheck(text);
    expect(check.out).toBe('');
    expect(check.status).toBe(0);
  });

  it('promtool refuses a broken exposition (the check can fail)', () => {
    expect(promtoolCheck('tightloop_x{receiver="a"b"} 1\n').status).not.toBe(0);
  });

  it('refuses invalid names, a type change and a decreasing counter', () => {
    const m = new MetricsRegistry();
    expect(() => m.inc('tightloop-bad', 'x')).toThrow(/invalid metric name/);
    expect(() => m.inc('tightloop_x_total', 'x', { 'bad-label': 'v' })).toThrow(/invalid label name/);
    expect(() => m.inc('tightloop_x_total', 'x', {}, -1)).toThrow(/cannot decrease/);
    m.inc('tightloop_y_total', 'y');
    expect(() => m.setGauge('tightloop_y_total', 'y', 1)).toThrow(/already registered as a counter/);
    expect(escapeLabelValue('a\\b"c\nd')).toBe('a\\\\b\\"c\\nd');
  });

  it('tracks degraded components until they recover', () => {
    const m = new MetricsRegistry();
    m.setDegraded('telemetry_flush', 'disk full');
    m.setDegraded('notifier:pager', 'HTTP 500');
    expect(m.degradedComponents()).toEqual([{ component: 'notifier:pager', reason: 'HTTP 500' }, { component: 'telemetry_flush', reason: 'disk full' }]);
    m.setDegraded('telemetry_flush', undefined);
    expect(m.degradedComponents().map((d) => d.component)).toEqual(['notifier:pager']);
  });
});
