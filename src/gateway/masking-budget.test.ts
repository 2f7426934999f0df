import { describe, expect, it } from 'vitest';
import { DEFAULT_MASKING, Masker, type MaskCounts } from './masking/index.js';
import { OVER_BUDGET, detectionBucket, detectionTime } from './masking/budget.js';
import { TimeBucket, judgingTime } from './user-bucket.js';
import { frame, int16, int32 } from './wire/encode.js';

/**
 * Attack round 5 #7: detector CPU per result was unbounded (400 rows of `repeat('1 ', 8000)`
 * held the gateway's thread for 11 s). Each session draws detection time from a bucket
 * (masking/budget.ts, user-bucket.ts); with it spent, values are masked whole without a scan (fail closed).
 * A manual clock makes the bucket deterministic here: no timing in assertions.
 */

function dataRow(values: string[]): Buffer {
  return frame('D', int16(values.length), ...values.map((v) => Buffer.concat([int32(Buffer.byteLength(v)), Buffer.from(v)])));
}

function firstValue(msg: Buffer): string {
  return msg.toString('utf8', 11, 11 + msg.readInt32BE(7));
}

/** A clock that advances `step` ms on every reading: each scan costs `step`. */
function steppingClock(step: number): { now: () => number; advance(ms: number): void } {
  let t = 0;
  return {
    now: () => (t += step),
    advance(ms) {
      t += ms;
    },
  };
}

describe('detection budget per session (attack round 5 #7)', () => {
  const masker = new Masker({ ...DEFAULT_MASKING }, Buffer.alloc(32, 1));
  const plan = masker.plan([{ name: 'note', tableOid: 0, column: 0, typeOid: 25, format: 0 }]);

  it('scans while the bucket holds time, then masks whole values unscanned until it refills', () => {
    const clock = steppingClock(100);
    const budget = new TimeBucket(300, 100, clock.now);
    const clean = dataRow(['nothing to see here, just words']);
    const counts: MaskCounts = {};
    let scanned = 0;
    for (let i = 0; i < 6; i++) if (masker.maskDataRow(clean, 0, clean.length, plan, counts, budget) === undefined) scanned++;
    // 100 ms charged per scan against a 300 ms bucket, refilled by 30 ms per scan (the clock moves).
    expect(scanned).toBeGreaterThanOrEqual(3);
    expect(scanned).toBeLessThan(6);
    const out = masker.maskDataRow(clean, 0, clean.length, plan, counts, budget);
    expect(out).toBeDefined();
    expect(firstValue(out as Buffer)).not.toContain('nothing');
    expect(counts[OVER_BUDGET]).toBeGreaterThan(0);
    // PII after the bucket ran out is masked too (whole), never passed unscanned.
    const pii = dataRow(['card 4111 1111 1111 1111']);
    expect(firstValue(masker.maskDataRow(pii, 0, pii.length, plan, counts, budget) as Buffer)).not.toContain('4111 1111');
    // Refilled after a quiet while: scanned again, clean text passes.
    clock.advance(10_000);
    expect(masker.maskDataRow(clean, 0, clean.length, plan, {}, budget)).toBeUndefined();
  });

  it("one user's sessions share one bucket; another user's is apart (attack round 6 #2)", () => {
    expect(detectionTime.of('user-a')).toBe(detectionTime.of('user-a'));
    expect(detectionTime.of('user-b')).not.toBe(detectionTime.of('user-a'));
  });

  it('a budget belongs to its user: another user scans as usual', () => {
    const spent = new TimeBucket(300, 100, steppingClock(1_000).now);
    const row = dataRow(['plain words only']);
    expect(masker.maskDataRow(row, 0, row.length, plan, {}, spent)).toBeUndefined();
    expect(masker.maskDataRow(row, 0, row.length, plan, {}, spent)).toBeDefined();
    expect(masker.maskDataRow(row, 0, row.length, plan, {}, detectionBucket())).toBeUndefined();
    expect(masker.maskDataRow(row, 0, row.length, plan, {})).toBeUndefined();
  });
});

describe('judging time per user (attack round 8 G1)', () => {
  it('tells how long until the bucket holds time again, refilled at its rate', () => {
    let t = 0;
    const budget = new TimeBucket(500, 200, () => t);
    expect(budget.msUntilAvailable()).toBe(0);
    budget.spend(1_500); // 1,000 ms in debt: 5 s at 200 ms per second
    expect(budget.msUntilAvailable()).toBeGreaterThan(5_000);
    expect(budget.msUntilAvailable()).toBeLessThan(5_010);
    t = 5_010;
    expect(budget.msUntilAvailable()).toBe(0);
  });

  it("one user's sessions share one judging bucket, apart from detection's and other users'", () => {
    expect(judgingTime.of('user-a')).toBe(judgingTime.of('user-a'));
    expect(judgingTime.of('user-b')).not.toBe(judgingTime.of('user-a'));
    expect(judgingTime.of('user-a')).not.toBe(detectionTime.of('user-a'));
  });
});

