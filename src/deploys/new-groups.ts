/**
 * The new-error-group rule of a verification. An error group first seen in the candidate version
 * fails the deploy only when it hits a real share of the candidate's requests: a healthy release
 * that logs one rare new exception in thousands of requests must not roll back, a crash on a
 * common path must fail at once.
 *
 * Per group, a one-sided sequential test of "its events are at most `minShare` of the
 * candidate's requests": the mixture over SHARE_GRID of Poisson likelihood ratios
 * r^c · exp(−(r − 1)·minShare·n) (c events of the group in n candidate requests). Under the null
 * each factor is a supermartingale per request (E[r^X] ≤ 1 + q(r − 1) ≤ e^{(r−1)·minShare} for a
 * Bernoulli X with q ≤ minShare), so Ville bounds a false fail by α per group. One event can never
 * fail: max r / |SHARE_GRID| = 50 < 1/α for any α < 0.02.
 */

/** Multiples of `minShare` the fail-side mixture weighs equally. */
const SHARE_GRID = [2, 5, 10, 50, 250] as const;

export interface NewGroupState {
  id: string;
  title: string;
  /** Events of the group from the candidate version since the verification began. */
  events: number;
  /** The fail-side log likelihood ratio at the last evaluation. */
  logLr: number;
  failed: boolean;
}

export class NewGroupRule {
  readonly groups = new Map<string, NewGroupState>();

  /** `minShare` 0: the old rule, any new group fails at once. */
  constructor(readonly minShare: number, readonly alpha: number) {}

  add(id: string, title: string): void {
    if (!this.groups.has(id)) this.groups.set(id, { id, title, events: 0, logLr: 0, failed: false });
  }

  /** `count` more events of group `id` (ignored unless the group is new in this version). */
  addEvents(id: string, count: number): void {
    const g = this.groups.get(id);
    if (g !== undefined && count > 0) g.events += count;
  }

  /**
   * Tests every group against `requests` candidate requests so far. A share test needs the
   * request count: below `minSamples` nothing fails on share (as the traffic tests: low traffic
   * never fails a deploy).
   */
  evaluate(requests: number, minSamples: number): void {
    const bound = Math.log(1 / this.alpha);
    for (const g of this.groups.values()) {
      if (g.failed) continue;
      if (this.minShare <= 0) { g.failed = true; continue; }
      if (requests < minSamples) continue;
      const mu = this.minShare * requests;
      let max = -Infinity;
      const terms = SHARE_GRID.map((r) => g.events * Math.log(r) - (r - 1) * mu);
      for (const t of terms) if (t > max) max = t;
      let sum = 0;
      for (const t of terms) sum += Math.exp(t - max);
      g.logLr = max + Math.log(sum / terms.length);
      if (g.logLr >= bound) g.failed = true;
    }
  }

  get failed(): NewGroupState[] { return [...this.groups.values()].filter((g) => g.failed); }
  get rare(): NewGroupState[] { return [...this.groups.values()].filter((g) => !g.failed); }
}
