import { describe, expect, it } from 'vitest';
import type { EventToCommit } from './commit.js';
import type { ErrorEvent, RawSentryEvent } from './model.js';
import { ItemSlab, packOutcome, packRequest, unpackOutcome, unpackRequest } from './worker-wire.js';

const raw = (json: string, projectId: number, gz?: number[]): RawSentryEvent => ({
  raw: Buffer.from(json), projectId, service: `svc${projectId}`, nowUs: 1_700_000_000_123_456,
  ...(gz === undefined ? {} : { compressed: { encoding: 'gzip-envelope' as const, bytes: Buffer.from(gz) } }),
});

const mapped: ErrorEvent = {
  eventId: 'e'.repeat(32), projectId: 1, timeUs: 5, service: 'otel', release: '', environment: 'production', level: 'error',
  platform: 'other', traceId: '', spanId: '', exceptions: [], message: 'm', transaction: '', user: null, tags: {}, request: null,
  source: 'otel-log', payload: '{"m":1}',
};

describe('commit worker messages (worker-wire.ts)', () => {
  it('a batch comes back in order: raw items with bytes, numbers, service and unit; mapped events as they were', () => {
    const items: EventToCommit[] = [
      { event: raw('{"message":"a"}', 3, [1, 2, 3]), groupingVersion: 1, unit: 0 },
      { event: mapped, groupingVersion: 2 },
      { event: raw('{"message":"bé"}', 4), groupingVersion: 1, unit: 1 },
    ];
    const out = unpackRequest(structuredClone(packRequest(new ItemSlab(), 9, items, 77, 12)));
    expect(out).toHaveLength(3);
    const a = out[0].event as RawSentryEvent, c = out[2].event as RawSentryEvent;
    expect(Buffer.from(a.raw).toString()).toBe('{"message":"a"}');
    expect([...a.compressed!.bytes]).toEqual([1, 2, 3]);
    expect(a.compressed!.encoding).toBe('gzip-envelope');
    expect(a).toMatchObject({ projectId: 3, service: 'svc3', nowUs: 1_700_000_000_123_456 });
    expect(out[0]).toMatchObject({ groupingVersion: 1, unit: 0 });
    expect(out[1]).toEqual({ event: mapped, groupingVersion: 2 });
    expect(Buffer.from(c.raw).toString()).toBe('{"message":"bé"}');
    expect(c.compressed).toBeUndefined();
    expect(out[2]).toMatchObject({ groupingVersion: 1, unit: 1 });
  });

  it('reuses one shared buffer: the next batch overwrites the previous one from offset 0', () => {
    const slab = new ItemSlab();
    const first = packRequest(slab, 1, [{ event: raw('{"x":1}', 1), groupingVersion: 1 }], 0, undefined);
    const second = packRequest(slab, 2, [{ event: raw('{"y":2}', 1), groupingVersion: 1 }], 0, undefined);
    expect(second.raw!.bytes).toBe(first.raw!.bytes);
    expect(Buffer.from((unpackRequest(second)[0].event as RawSentryEvent).raw).toString()).toBe('{"y":2}');
  });

  it('counts survive the compact outcome form', () => {
    const counts = [
      { groupId: 'g1', projectId: 1, service: 's', release: 'r1', environment: 'production', title: 'Error: x', count: 3, lastUs: 1_700_000_000_000_001 },
      { groupId: 'g1', projectId: 1, service: 's', release: 'r2', environment: 'staging', title: 'Error: x', count: 1, lastUs: 2 },
      { groupId: 'g2', projectId: 2, service: 't', release: 'r1', environment: 'production', title: 'TypeError', count: 7, lastUs: 3 },
    ];
    const o = { newGroups: [], regressed: [], eventIds: ['a', '', 'b'], rejected: [{ index: 1, message: 'bad' }], counts };
    expect(unpackOutcome(structuredClone(packOutcome(o)))).toEqual(o);
    const none = { newGroups: [], regressed: [], eventIds: [], rejected: [] };
    expect(unpackOutcome(packOutcome(none))).toEqual(none);
  });
});
