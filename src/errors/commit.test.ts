import { describe, expect, it } from 'vitest';
import { inflateSync } from 'node:zlib';
import { prepareBatch, RAW_PAYLOAD_BELOW, storedPayloadSync, type EventToCommit } from './commit.js';
import type { RawSentryEvent } from './model.js';

const raw = (json: string): RawSentryEvent => ({ raw: Buffer.from(json), projectId: 7, service: 'shop', nowUs: 1_700_000_000_000_000 });
const item = (json: string, unit: number): EventToCommit => ({ event: raw(json), groupingVersion: 1, unit });

describe('prepareBatch (raw Sentry items parsed where the commit runs)', () => {
  it('maps raw event items like the route did: ids, project, service, payload kept as received', () => {
    const json = '{"event_id":"0123456789abcdef0123456789abcdef","release":"r1","exception":{"values":[{"type":"TypeError","value":"x"}]}}';
    const b = prepareBatch([item(json, 0)]);
    expect(b.rejected).toEqual([]);
    expect(b.eventIds).toEqual(['0123456789abcdef0123456789abcdef']);
    expect(b.events[0]).toMatchObject({ projectId: 7, service: 'shop', release: 'r1', payload: json, source: 'sentry' });
    expect(b.events[0].exceptions[0].type).toBe('TypeError');
  });

  it('a bad item leaves its whole unit out and is reported; other units are kept', () => {
    const ok = '{"event_id":"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa","message":"fine"}';
    const b = prepareBatch([item(ok, 0), item('{not json', 1), item('{"event_id":"bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"}', 1), item('[1]', 2), item(ok, 3)]);
    expect(b.rejected).toEqual([
      { index: 1, message: 'malformed envelope: event item is not JSON' },
      { index: 3, message: 'malformed envelope: event item is not a JSON object' },
    ]);
    expect(b.eventIds).toEqual(['aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', '', '', '', 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa']);
    expect(b.events).toHaveLength(2);
    expect(b.versions).toEqual([1, 1]);
  });

  it('keeps the sender-compressed payload of a raw item', () => {
    const compressed = { encoding: 'gzip-envelope' as const, bytes: Buffer.from([1, 2, 3]) };
    const b = prepareBatch([{ event: { ...raw('{"message":"m"}'), compressed }, groupingVersion: 2 }]);
    expect(b.events[0].compressed).toBe(compressed);
    expect(b.events[0].eventId).toMatch(/^[0-9a-f]{32}$/);
    expect(b.versions).toEqual([2]);
  });
});

describe('storedPayloadSync', () => {
  it('keeps payloads under RAW_PAYLOAD_BELOW as they are and deflates larger ones', () => {
    const event = prepareBatch([item('{"message":"m"}', 0)]).events[0];
    const small = JSON.stringify({ attributes: { 'exception.type': 'E', 'exception.stacktrace': 'at f (/app/src/a.ts:1:1)' } });
    expect(storedPayloadSync({ ...event, payload: small })).toEqual({ encoding: 'json', bytes: Buffer.from(small) });
    const large = JSON.stringify({ message: 'y'.repeat(RAW_PAYLOAD_BELOW) });
    const stored = storedPayloadSync({ ...event, payload: large });
    expect(stored.encoding).toBe('deflate-json');
    expect(stored.bytes.length).toBeLessThan(large.length / 4);
    expect(inflateSync(stored.bytes).toString()).toBe(large);
  });
});
