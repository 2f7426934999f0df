import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { openStateStore, type StateStore } from '../state/index.js';
import { InThreadCommitter, type BatchCommitter, type EventToCommit } from './commit.js';
import { ErrorEventStore } from './event-store.js';
import { ErrorEvents } from './events.js';
import { GroupStore } from './groups.js';
import type { ErrorEvent } from './model.js';
import { ErrorPipeline } from './pipeline.js';
import { ERRORS_MIGRATIONS, errorsDb } from './tables.js';

let dir: string;
let state: StateStore;
let seq = 0;

function event(): ErrorEvent {
  seq++;
  return {
    eventId: seq.toString(16).padStart(32, '0'), projectId: 1, timeUs: 1_700_000_000_000_000 + seq, service: 'shop', release: 'r1',
    environment: 'production', level: 'error', platform: 'otel', traceId: 'ab'.repeat(16), spanId: 'cd'.repeat(8),
    exceptions: [{ type: 'Error', value: 'boom', frames: [], handled: false }], message: 'boom', transaction: 'GET /', user: null, tags: {},
    request: null, source: 'otel-span', payload: '{}',
  };
}

/** The real in-thread committer on a real SQLite state database, counting its commits. */
function counted(): { committer: BatchCommitter; commits: number[] } {
  const db = errorsDb(state.db);
  const inner = new InThreadCommitter(new GroupStore(db), new ErrorEventStore(db));
  const commits: number[] = [];
  return {
    commits,
    committer: {
      commit: (items: EventToCommit[], receivedUs, otelSpanSeq) => {
        commits.push(items.length);
        return inner.commit(items, receivedUs, otelSpanSeq);
      },
      close: () => inner.close(),
    },
  };
}

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tl-error-pipeline-'));
  state = await openStateStore({ dialect: 'sqlite', path: join(dir, 'state.db'), migrations: ERRORS_MIGRATIONS });
  // Only the pipeline's timers and clock are faked; SQLite runs for real.
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
});

afterEach(async () => {
  vi.useRealTimers();
  await state.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('ErrorPipeline schedule: background events wait longer for company', () => {
  it('commits background events (OTel span exceptions) after backgroundIntervalMs, a waited-for event after commitIntervalMs', async () => {
    const { committer, commits } = counted();
    const pipeline = new ErrorPipeline(committer, new ErrorEvents(), { groupingVersion: () => 1, commitIntervalMs: 5, backgroundIntervalMs: 1000 });
    const first = pipeline.submit([event()]); // nothing started yet: commits at once
    await vi.advanceTimersByTimeAsync(0);
    await first;
    expect(commits).toEqual([1]);

    // Background events of three appends, 100 ms apart: no commit until 1 s after the last start.
    const background = [pipeline.submit([event(), event()], 1)];
    await vi.advanceTimersByTimeAsync(100);
    background.push(pipeline.submit([event()], 2));
    await vi.advanceTimersByTimeAsync(100);
    background.push(pipeline.submit([event()], 3));
    await vi.advanceTimersByTimeAsync(700);
    expect(commits).toEqual([1]);
    await vi.advanceTimersByTimeAsync(200);
    await Promise.all(background);
    expect(commits).toEqual([1, 4]); // one commit took all three appends' events

    // A background event waits; a request's event queued after it brings the commit forward and takes both.
    const bg = pipeline.submit([event()], 4);
    await vi.advanceTimersByTimeAsync(10);
    expect(commits).toEqual([1, 4]);
    const waited = pipeline.submit([event()]);
    await vi.advanceTimersByTimeAsync(5);
    await Promise.all([bg, waited]);
    expect(commits).toEqual([1, 4, 2]);

    const stored = await errorsDb(state.db).selectFrom('errors_events').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
    expect(Number(stored.n)).toBe(7);
    await pipeline.close();
  });

  it('close() commits queued background events at once', async () => {
    const { committer, commits } = counted();
    const pipeline = new ErrorPipeline(committer, new ErrorEvents(), { groupingVersion: () => 1, commitIntervalMs: 5, backgroundIntervalMs: 60_000 });
    const first = pipeline.submit([event()]);
    await vi.advanceTimersByTimeAsync(0);
    await first;
    const bg = pipeline.submit([event()], 1);
    const closed = pipeline.close();
    await vi.advanceTimersByTimeAsync(0);
    await Promise.all([bg, closed]);
    expect(commits).toEqual([1, 1]);
  });
});
