import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { budgetSpent, burnRate, evaluateBurnWindows } from './burn-rate.js';
import { burnWindowsForPeriod, DEFAULT_BURN_WINDOWS, ruleSpecSchema } from './rules.js';

const H = 3_600_000;

describe('burn rate', () => {
  it('matches hand-computed cases', () => {
    // 1 % errors against a 99.9 % objective burns the budget 10× too fast.
    expect(burnRate(10, 1000, 0.999)).toBeCloseTo(10, 9);
    // 0.1 % errors is exactly on budget.
    expect(burnRate(1, 1000, 0.999)).toBeCloseTo(1, 9);
    // 99 % objective, 5 % errors → 5.
    expect(burnRate(50, 1000, 0.99)).toBeCloseTo(5, 9);
    // Low traffic: 1 error in 3 requests, floor of 100 events → 0.01 / 0.001 = 10 (not 333).
    expect(burnRate(1, 3, 0.999, 100)).toBeCloseTo(10, 9);
    expect(burnRate(0, 0, 0.999)).toBe(0);
    // 14.4× for one hour spends 2 % of a 30-day budget; 6× for 6 h spends 5 %.
    expect(budgetSpent(14.4, H, 30 * 24 * H)).toBeCloseTo(0.02, 9);
    expect(budgetSpent(6, 6 * H, 30 * 24 * H)).toBeCloseTo(0.05, 9);
  });

  it('pages only when both windows of a row burn too fast', () => {
    // 2 % errors over the hour (burn 20) but the last 5 minutes recovered (burn 0): no page.
    const recovered = evaluateBurnWindows(DEFAULT_BURN_WINDOWS, (ms) =>
      ms === H ? { count: 10_000, errors: 200 } : ms === 300_000 ? { count: 800, errors: 0 } : { count: 0, errors: 0 }, 0.999, 0);
    expect(recovered[0].breached).toBe(false);
    const burning = evaluateBurnWindows(DEFAULT_BURN_WINDOWS, (ms) =>
      ms === H ? { count: 10_000, errors: 200 } : ms === 300_000 ? { count: 800, errors: 16 } : { count: 0, errors: 0 }, 0.999, 0);
    expect(burning[0]).toMatchObject({ severity: 'page', factor: 14.4, breached: true });
    expect(burning[0].longBurn).toBeCloseTo(20, 9);
  });

  it('properties: monotone in errors, scale-free, zero without errors', () => {
    fc.assert(fc.property(
      fc.integer({ min: 1, max: 1_000_000 }), fc.integer({ min: 0, max: 1_000_000 }),
      fc.double({ min: 0.5, max: 0.99999, noNaN: true }), fc.integer({ min: 2, max: 50 }),
      (total, rawErrors, objective, k) => {
        const errors = rawErrors % (total + 1);
        const b = burnRate(errors, total, objective);
        expect(b).toBeGreaterThanOrEqual(0);
        // Scaling traffic and errors alike does not change the burn rate.
        expect(burnRate(errors * k, total * k, objective)).toBeCloseTo(b, 6);
        // One more error never lowers it.
        if (errors < total) expect(burnRate(errors + 1, total, objective)).toBeGreaterThan(b);
        // Burn × budget = error ratio.
        expect(b * (1 - objective)).toBeCloseTo(errors / total, 9);
        // The low-traffic floor only ever lowers the burn.
        expect(burnRate(errors, total, objective, total * 2)).toBeLessThanOrEqual(b + 1e-9);
      }));
  });

  it('derives the factors from the period as the workbook does, and refuses a period it has no table for', () => {
    const D = 24 * H;
    const factors = (days: number): number[] => burnWindowsForPeriod(days * D).map((w) => w.factor);
    expect(factors(30)).toEqual([14.4, 6, 1]);
    expect(DEFAULT_BURN_WINDOWS.map((w) => w.factor)).toEqual([14.4, 6, 1]);
    // factor = budget share × period / long window: 2 % in 1 h, 5 % in 6 h, 10 % in 3 d.
    expect(factors(28)).toEqual([13.44, 5.6, 0.933333]);
    expect(factors(7)).toEqual([3.36, 1.4, 0.233333]);
    for (const days of [7, 28, 30]) {
      for (const w of burnWindowsForPeriod(days * D)) expect(budgetSpent(w.factor, w.long, days * D)).toBeCloseTo(w.severity === 'ticket' ? 0.1 : w.long === H ? 0.02 : 0.05, 5);
    }
    const slo = (extra: Record<string, unknown>) => ruleSpecSchema.safeParse({ name: 's', type: 'slo', objective: 0.999, ...extra });
    const ok = slo({ period: '28d' });
    expect(ok.success && ok.data.type === 'slo' && ok.data.period).toBe(28 * D);
    const bad = slo({ period: '14d' });
    expect(bad.success).toBe(false);
    expect(JSON.stringify(bad.error?.issues)).toMatch(/period must be 7d, 28d or 30d/);
    // With explicit windows the factors are the rule's own: any period.
    expect(slo({ period: '14d', windows: [{ severity: 'page', factor: 3, long: '1h', short: '5m' }] }).success).toBe(true);
  });

  it('keeps one budget per service and environment by default', () => {
    const r = ruleSpecSchema.parse({ name: 's', type: 'slo', objective: 0.999 });
    expect(r.by).toEqual(['service', 'environment']);
    expect(ruleSpecSchema.parse({ name: 't', type: 'threshold', signal: 'error_rate', threshold: 0.1 }).by).toEqual(['service', 'operation', 'version', 'environment']);
  });
});
