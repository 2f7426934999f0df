import { describe, expect, it } from 'vitest';
import { RetentionJob } from './retention.js';
import type { Signal } from './store.js';

const DAY_US = 86_400_000_000;
const NOW = Date.UTC(2024, 4, 20, 13, 30) * 1000;

function fakeStore(fail?: Signal) {
  const calls: Array<[Signal, number]> = [];
  return {
    calls,
    store: {
      dropBefore: (signal: Signal, cutoffUs: number): Promise<number> => {
        calls.push([signal, cutoffUs]);
        if (signal === fail) return Promise.reject(new Error('locked'));
        return Promise.resolve(signal === 'spans' ? 10 : 0);
      },
    },
  };
}

describe('RetentionJob', () => {
  it('drops each signal older than its own number of days', async () => {
    const f = fakeStore();
    const logged: object[] = [];
    const job = new RetentionJob(f.store, { spans: 7, logs: 3, metrics: 30 },
      { info: (o) => logged.push(o), error: (o) => logged.push(o) }, { nowUs: () => NOW });
    expect(await job.runOnce()).toEqual({ spans: 10, logs: 0, metrics: 0 });
    expect(f.calls).toEqual([['spans', NOW - 7 * DAY_US], ['logs', NOW - 3 * DAY_US], ['metrics', NOW - 30 * DAY_US]]);
    expect(logged).toEqual([{ signal: 'spans', days: 7, removed: 10 }]);
  });

  it('logs a failing signal and still handles the others', async () => {
    const f = fakeStore('logs');
    const errors: object[] = [];
    const job = new RetentionJob(f.store, { spans: 1, logs: 1, metrics: 1 }, { info: () => undefined, error: (o) => errors.push(o) }, { nowUs: () => NOW });
    expect(await job.runOnce()).toEqual({ spans: 10, logs: 0, metrics: 0 });
    expect(f.calls.map((c) => c[0])).toEqual(['spans', 'logs', 'metrics']);
    expect(errors).toHaveLength(1);
  });

  it('runs at start and on its interval until stopped', async () => {
    const f = fakeStore();
    const job = new RetentionJob(f.store, { spans: 1, logs: 1, metrics: 1 }, undefined, { intervalMs: 20, nowUs: () => NOW });
    job.start();
    job.start(); // idempotent
    await new Promise((r) => setTimeout(r, 70));
    job.stop();
    await job.idle();
    const runs = f.calls.length / 3;
    expect(runs).toBeGreaterThanOrEqual(2);
    await new Promise((r) => setTimeout(r, 50));
    expect(f.calls.length / 3).toBe(runs);
  });
});
