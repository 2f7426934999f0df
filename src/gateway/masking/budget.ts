import { performance } from 'node:perf_hooks';

/**
 * Detector CPU per session (attack round 5 #7). One value's scan is bounded (MAX_DETECT_CHARS),
 * a result's is not: 400 rows of `repeat('1 ', 8000)` took 11 s on the gateway's one thread,
 * and every other session (logins included) waited behind it. So each session draws detection
 * time from a bucket: `burstMs` at most at once, refilled at `refillPerSecond` ms per second of
 * wall time (the share of the thread one session may take when it keeps asking). While the
 * bucket is empty, a value the detectors would scan is not scanned but masked as a whole
 * (`over-budget`, fail closed: nothing unjudged passes) until the bucket refills. Legitimate
 * results take microseconds per value and never reach the limit.
 */
export class DetectBudget {
  private balance: number;
  private at: number;

  constructor(
    readonly burstMs = DEFAULT_DETECT_BURST_MS,
    readonly refillPerSecond = DEFAULT_DETECT_REFILL_MS_PER_S,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.balance = burstMs;
    this.at = now();
  }

  /** Is there time left to scan (after refilling for the time passed)? */
  available(): boolean {
    const t = this.now();
    if (t > this.at) {
      this.balance = Math.min(this.burstMs, this.balance + ((t - this.at) / 1000) * this.refillPerSecond);
      this.at = t;
    }
    return this.balance > 0;
  }

  /** Milliseconds until there is time left again (0 when there is some now). */
  msUntilAvailable(): number {
    return this.available() ? 0 : ((1 - this.balance) / this.refillPerSecond) * 1000;
  }

  /** Charges `ms` of work measured by the caller. */
  spend(ms: number): void {
    this.available();
    this.balance -= ms;
  }

  /** Runs one scan, charged to the bucket. */
  charge<T>(scan: () => T): T {
    const t0 = this.now();
    try {
      return scan();
    } finally {
      const t1 = this.now();
      this.balance -= t1 - t0;
    }
  }
}

/** Detection time one session may spend at once (ms). */
export const DEFAULT_DETECT_BURST_MS = 500;
/** Detection time a session regains per second (ms): a fifth of the thread, sustained. */
export const DEFAULT_DETECT_REFILL_MS_PER_S = 200;
/** Counter (MaskCounts) of values masked whole because the session's detection budget ran out. */
export const OVER_BUDGET = 'over-budget';

const byUser = new Map<string, DetectBudget>();

/**
 * The bucket of one user, shared by all of that user's sessions: a per-session bucket let one
 * user open ten sessions and take the whole thread (attack round 6 #2).
 */
export function detectBudgetFor(userId: string): DetectBudget {
  let b = byUser.get(userId);
  if (b === undefined) byUser.set(userId, b = new DetectBudget());
  return b;
}

/** Judging time (parse and analysis) one user may spend at once (ms). */
export const DEFAULT_JUDGE_BURST_MS = 500;
/** Judging time a user regains per second (ms): a fifth of the thread, sustained. */
export const DEFAULT_JUDGE_REFILL_MS_PER_S = 200;

const judgingByUser = new Map<string, DetectBudget>();

/**
 * The judging bucket of one user, shared by all of that user's sessions (attack round 8 G1: the
 * statement work budget bounds one statement, ~0.2 s, but three sessions of one user sending such
 * statements back to back held the thread and other users' `select 1` took seconds). The relay
 * holds a statement of a user whose bucket is empty until it refills (Verdict.wait): the
 * user's sessions slow down, nobody else's do, and nothing is refused for it.
 */
export function judgeBudgetFor(userId: string): DetectBudget {
  let b = judgingByUser.get(userId);
  if (b === undefined) judgingByUser.set(userId, b = new DetectBudget(DEFAULT_JUDGE_BURST_MS, DEFAULT_JUDGE_REFILL_MS_PER_S));
  return b;
}
