import { TimeBucket, UserBuckets, judgingTime } from '../user-bucket.js';

/**
 * Detector time per user (attack round 5 #7). One value's scan is bounded (MAX_DETECT_CHARS),
 * a result's is not: 400 rows of `repeat('1 ', 8000)` took 11 s on the gateway's one thread,
 * and every other session (logins included) waited behind it. So each user's sessions draw
 * detection time from one bucket (user-bucket.ts). While it is empty, a value the detectors
 * would scan is not scanned but masked as a whole (`over-budget`, fail closed: nothing unjudged
 * passes) until the bucket refills. Legitimate results take microseconds per value and never
 * reach the limit.
 */

/** Detection time one user may spend at once (ms). */
export const DEFAULT_DETECT_BURST_MS = 500;
/** Detection time a user regains per second (ms): a fifth of the thread, sustained. */
export const DEFAULT_DETECT_REFILL_MS_PER_S = 200;
/** Counter (MaskCounts) of values masked whole because the user's detection time ran out. */
export const OVER_BUDGET = 'over-budget';

/** Each user's detection time, shared by all of that user's sessions (attack round 6 #2). */
export const detectionTime = new UserBuckets(DEFAULT_DETECT_BURST_MS, DEFAULT_DETECT_REFILL_MS_PER_S);

/** A detection bucket of its own (one session's, or a test's), at the default size and rate. */
export function detectionBucket(now?: () => number): TimeBucket {
  return new TimeBucket(DEFAULT_DETECT_BURST_MS, DEFAULT_DETECT_REFILL_MS_PER_S, now);
}

// The names from before the bucket moved to ../user-bucket.ts, kept for code written against
// them (branches in flight); new code uses TimeBucket, detectionTime and judgingTime.
export { DEFAULT_JUDGE_BURST_MS, DEFAULT_JUDGE_REFILL_MS_PER_S } from '../user-bucket.js';
/** A TimeBucket, by default at detection's size and rate: detectionBucket(). */
export class DetectBudget extends TimeBucket {
  constructor(burstMs = DEFAULT_DETECT_BURST_MS, refillPerSecond = DEFAULT_DETECT_REFILL_MS_PER_S, now?: () => number) {
    super(burstMs, refillPerSecond, now);
  }
}
/** The detection bucket of one user: `detectionTime.of(userId)`. */
export const detectBudgetFor = (userId: string): TimeBucket => detectionTime.of(userId);
/** The judging bucket of one user: `judgingTime.of(userId)` (../user-bucket.ts). */
export const judgeBudgetFor = (userId: string): TimeBucket => judgingTime.of(userId);
