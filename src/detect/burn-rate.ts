/**
 * SLO burn-rate maths (Google SRE workbook, "multiwindow, multi-burn-rate alerts"). A burn rate
 * of 1 spends exactly the error budget over the SLO period; 14.4 spends 2 % of a 30-day budget
 * in one hour. Pure functions, so they are checked by hand-computed cases and property tests.
 */
import type { BurnWindow } from './rules.js';

/**
 * errors / max(total, minEvents) / (1 − objective). The `minEvents` floor is the low-traffic
 * guard: with 3 requests an hour, one error is a 33 % error rate (burn 333× at 99.9 %), which
 * says more about the sample size than about the budget.
 */
export function burnRate(errors: number, total: number, objective: number, minEvents = 0): number {
  const denom = Math.max(total, minEvents);
  if (denom <= 0 || errors <= 0) return 0;
  return errors / denom / (1 - objective);
}

export interface BurnWindowResult {
  severity: string;
  factor: number;
  longBurn: number;
  shortBurn: number;
  /** Both windows burn faster than the factor. */
  breached: boolean;
}

/** Evaluates every row of the table; `totals(ms)` gives the counts over the last `ms`. */
export function evaluateBurnWindows(
  windows: readonly BurnWindow[],
  totals: (windowMs: number) => { count: number; errors: number },
  objective: number,
  minEvents: number,
): BurnWindowResult[] {
  return windows.map((w) => {
    const l = totals(w.long);
    const s = totals(w.short);
    const longBurn = burnRate(l.errors, l.count, objective, minEvents);
    const shortBurn = burnRate(s.errors, s.count, objective, minEvents);
    return { severity: w.severity, factor: w.factor, longBurn, shortBurn, breached: longBurn > w.factor && shortBurn > w.factor };
  });
}

/** Share of the period's error budget a burn rate spends over a window. */
export function budgetSpent(burn: number, windowMs: number, periodMs: number): number {
  return (burn * windowMs) / periodMs;
}
