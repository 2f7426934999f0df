import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { budgetSpent, burnRate, evaluateBurnWindows } from './burn-rate.js';
import { DEFAULT_BURN_WINDOWS } from './rules.js';

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
});
