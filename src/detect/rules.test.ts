import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { parseRulesYaml } from './rules-file.js';

describe('rules.yaml', () => {
  it('parses rules with durations and defaults', () => {
    const f = parseRulesYaml(`receivers:
  - name: ops
    url: http://127.0.0.1:9/hook
rules:
  - name: checkout errors
    type: threshold
    select: { service: checkout }
    signal: error_rate
    threshold: 0.1
    window: 5s
    n_of_m: { n: 2, m: 3 }
  - name: slo
    type: slo
    objective: 0.999
`);
    expect(f.receivers[0].type).toBe('webhook');
    const r = f.rules[0];
    expect(r.type === 'threshold' && r.window).toBe(5000);
    expect(f.rules[1].type === 'slo' && f.rules[1].period).toBe(30 * 86_400_000);
  });

  it('names the line and field of a bad value', () => {
    expect(() => parseRulesYaml(`rules:
  - name: a
    type: threshold
    signal: error_rate
    threshold: 0.1
    window: 5x
`, 'rules.yaml')).toThrow(/rules\.yaml:6: rules\.0\.window: invalid duration '5x'/);
    expect(() => parseRulesYaml(`rules:
  - name: a
    type: threshold
    signal: error_rat
    threshold: 0.1
`)).toThrow(/rules\.yaml:4: rules\.0\.signal/);
  });

  it('names the line of a YAML syntax error', () => {
    expect(() => parseRulesYaml('rules:\n  - name: [a\n')).toThrow(/rules\.yaml:\d+:\d+:/);
  });
});

describe('SeriesWindow quantiles', () => {
  it('agree with LatencySketch over the same seconds', async () => {
    const { SeriesWindow } = await import('./window.js');
    const { LatencySketch } = await import('../telemetry/index.js');
    const w = new SeriesWindow(10, 0, true);
    const ref = new LatencySketch();
    for (let s = 100; s < 110; s++) {
      const sk = new LatencySketch();
      for (let i = 0; i < 50; i++) sk.add(((s * 37 + i * 11) % 500 + 1) * 1e6);
      w.add(s, 50, 0, sk.toBins());
      if (s >= 103) ref.merge(sk);
    }
    for (const q of [0.5, 0.95, 0.99]) expect(w.quantileMs(103, 110, q)).toBeCloseTo((ref.quantile(q) ?? 0) / 1e6, 9);
    expect(w.quantileMs(200, 205, 0.5)).toBeNull();
  });
});

describe('README', () => {
  it('its rules.yaml example is valid', () => {
    const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
    const block = /## Alerts[\s\S]*?```yaml\n([\s\S]*?)```/.exec(readme);
    expect(block).not.toBeNull();
    const f = parseRulesYaml(block?.[1] ?? '');
    expect(f.rules.map((r) => r.type)).toEqual(['threshold', 'slo', 'absence', 'threshold', 'metric', 'log', 'error', 'error']);
  });
});
