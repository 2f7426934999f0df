import { performance } from 'node:perf_hooks';

/**
 * Time on the gateway's one thread, rationed per user (attack round 5 #7, round 6 #2, round 8
 * G1). Work whose cost a client chooses — scanning a result with the content detectors, parsing
 * and analysing a statement — is charged to a bucket of milliseconds: `burstMs` at most at once,
 * refilled at `refillPerSecond` ms per second of wall time (the share of the thread the user may
 * take while it keeps asking). What the caller does with an empty bucket is its own policy: the
 * masker masks whole values unscanned (masking/budget.ts), the session holds the next statement
 * until the bucket refills (session.ts). One bucket per user, shared by all of that user's
 * sessions: a bucket per session let one user open ten sessions and take the whole thread.
 */
export class TimeBucket {
  private balance: number;
  private at: number;

  constructor(
    readonly burstMs: number,
    readonly refillPerSecond: number,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.balance = burstMs;
    this.at = now();
  }

  /** Is there time left (after refilling for the time passed)? */
  available(): boolean {
    const t = this.now();
    if (t > this.at) {
      this.balance = Math.min(this.burstMs, this.balance + ((t - this.at) / 1000) * this.refillPerSecond);
      this.at = t;
    }
    return this.balance > 0;
  }

  /** What is left now (after refilling): negative while in debt. */
  left(): number {
    this.available();
    return this.balance;
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

  /** Runs `work`, charging the time it took. */
  charge<T>(work: () => T): T {
    const t0 = this.now();
    try {
      return work();
    } finally {
      const t1 = this.now();
      this.balance -= t1 - t0;
    }
  }
}

/** One TimeBucket per user, all with the same size and rate, made on first use. */
export class UserBuckets {
  private readonly byUser = new Map<string, TimeBucket>();

  constructor(readonly burstMs: number, readonly refillPerSecond: number) {}

  /** The bucket of `userId`, shared by all of that user's sessions. */
  of(userId: string): TimeBucket {
    let b = this.byUser.get(userId);
    if (b === undefined) this.byUser.set(userId, b = new TimeBucket(this.burstMs, this.refillPerSecond));
    return b;
  }

  /** Gives `userId` a bucket of another size (tests), or back the usual one when `bucket` is undefined. */
  set(userId: string, bucket: TimeBucket | undefined): void {
    if (bucket === undefined) this.byUser.delete(userId);
    else this.byUser.set(userId, bucket);
  }
}

/** Judging time (parse and analysis) one user may spend at once (ms). */
export const DEFAULT_JUDGE_BURST_MS = 500;
/** Judging time a user regains per second (ms): a fifth of the thread, sustained. */
export const DEFAULT_JUDGE_REFILL_MS_PER_S = 200;

/**
 * Each user's judging time (attack round 8 G1: the statement work budget bounds one statement,
 * ~0.2 s, but three sessions of one user sending such statements back to back held the thread
 * and other users' `select 1` took seconds). The session holds a statement of a user whose
 * bucket is empty until it refills (Verdict.wait in relay.ts): that user's sessions slow down,
 * nobody else's do, and nothing is refused for it.
 */
export const judgingTime = new UserBuckets(DEFAULT_JUDGE_BURST_MS, DEFAULT_JUDGE_REFILL_MS_PER_S);

/** Audit volume one user may have recorded at once (characters of text, values and COPY data). */
export const DEFAULT_AUDIT_BURST_CHARS = 64 * 1024 * 1024;
/** Audit volume a user regains per second (characters). */
export const DEFAULT_AUDIT_REFILL_CHARS_PER_S = 4 * 1024 * 1024;

/**
 * Each user's audit volume (attack round 9 H2): statement texts (up to 1 MiB), parameter values
 * (a Bind up to 16 MiB) and COPY FROM STDIN data are recorded whole (audit-text.ts), so a user
 * looping `select length($1)` with a 16 MiB value grew the state database by 16 MB a statement,
 * and the JSON, HMAC and fsynced write of those records slowed every other user. The same bucket
 * as judgingTime, counting characters recorded instead of milliseconds: the session charges the
 * text, values and COPY data of each record it writes, and holds the user's next statement while
 * the bucket is in debt, until it refills. Nothing is cut from the audit, only its rate bounded.
 * A burst of 64 Mi characters takes four maximal Binds, or a 64 MiB COPY, without a pause. 4 Mi
 * per second sustained: JSON and HMAC of a record cost ~15-30 ms per MiB on the 2-core test
 * machine under load, so ~0.1 s of the thread per second for one user at most (half of its
 * judging share above), and ~14 GB of audit an hour. The unit is the bucket's caller's: these
 * are characters, not milliseconds (TimeBucket's `burstMs`).
 */
export const auditVolume = new UserBuckets(DEFAULT_AUDIT_BURST_CHARS, DEFAULT_AUDIT_REFILL_CHARS_PER_S);
