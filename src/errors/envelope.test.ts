import Fastify from 'fastify';
import { describe, expect, it } from 'vitest';
import { apiError, AppError } from '../core/app-error.js';
import { keyFromAuthHeader, keyFromDsn, MAX_ENVELOPE_ITEMS, parseEnvelope } from './envelope.js';
import { registerSentryIngest, UnstoredItems } from './ingest-routes.js';
import type { ErrorPipeline } from './pipeline.js';
import type { ProjectRegistry } from './projects.js';
import type { ReleaseHealthStore } from './release-health.js';
import { routesPlugin } from '../http/plugin.js';
import { containing } from '../../test/helpers/match.js';

describe('parseEnvelope', () => {
  it('reads items with and without length, binary payloads and a missing trailing newline', () => {
    const bin = Buffer.from([0x00, 0x0a, 0xff]);
    const buf = Buffer.concat([
      Buffer.from('{"event_id":"abc"}\n{"type":"attachment","length":3}\n'), bin,
      Buffer.from('\n{"type":"event"}\n{"message":"hi"}'),
    ]);
    const env = parseEnvelope(buf, 1000);
    expect(env.header).toEqual({ event_id: 'abc' });
    expect(env.items.map((i) => i.type)).toEqual(['attachment', 'event']);
    expect(env.items[0].payload).toEqual(bin);
    expect(env.items[1].payload.toString()).toBe('{"message":"hi"}');
  });
  it('fails with precise 4xx errors', () => {
    const fail = (s: string, max = 1000) => { try { parseEnvelope(Buffer.from(s), max); } catch (e) { return e as AppError; } throw new Error('no error'); };
    expect(fail('')).toMatchObject({ status: 400, code: 'invalid_envelope' });
    expect(fail('nope')).toMatchObject({ status: 400, message: containing('envelope header') });
    expect(fail('{}\n{"length":1}\nx')).toMatchObject({ status: 400, message: containing('no type') });
    expect(fail('{}\n{"type":"event","length":10}\nabc')).toMatchObject({ status: 400 });
    expect(fail('{}\n{"type":"event","length":50}\n', 10)).toMatchObject({ status: 413, code: 'item_too_large' });
    expect(fail('{}\n{"type":"event"}\n' + 'x'.repeat(20), 10)).toMatchObject({ status: 413 });
  });
  it('bounds the items per envelope (1,000) and the header lines: 413 / 400 before unpacking the rest', () => {
    const item = '{"type":"client_report"}\n{}\n';
    expect(parseEnvelope(Buffer.from('{}\n' + item.repeat(MAX_ENVELOPE_ITEMS)), 1000).items).toHaveLength(MAX_ENVELOPE_ITEMS);
    const many = Buffer.from('{}\n' + item.repeat(100_000));
    let err: AppError | undefined;
    try { parseEnvelope(many, 1000); } catch (e) { err = e as AppError; }
    expect(err).toMatchObject({ status: 413, code: 'too_many_items', message: containing('1000') });
    const longHeader = `{}\n{"type":"event","pad":"${'x'.repeat(70_000)}"}\n{}\n`;
    expect(() => parseEnvelope(Buffer.from(longHeader), 1 << 20)).toThrow(/longer than 64 KiB/);
  });
  it('finds the key in a DSN and in X-Sentry-Auth', () => {
    expect(keyFromDsn('https://abc123@o1.example.com/42')).toBe('abc123');
    expect(keyFromDsn('not a url')).toBeUndefined();
    expect(keyFromAuthHeader('Sentry sentry_version=7, sentry_key=k1, sentry_client=x/1')).toBe('k1');
    expect(keyFromAuthHeader('Sentry sentry_version=7')).toBeUndefined();
  });
});

describe('Sentry ingest under overload', () => {
  it('answers 429 with Retry-After and X-Sentry-Rate-Limits', async () => {
    const app = Fastify();
    const project = { id: 1, name: 'p', publicKey: 'k', groupingVersion: 1, createdAt: '' };
    await app.register(routesPlugin((a) => {
      registerSentryIngest(a, {
        projects: { forKey: (k: string) => (k === 'k' ? project : undefined) } as unknown as ProjectRegistry,
        pipeline: { submit: () => Promise.reject(apiError('overloaded', 'error ingest queue full', { retryAfterS: 1 })) } as unknown as ErrorPipeline,
        health: { add: () => Promise.resolve() } as unknown as ReleaseHealthStore,
        submitSpans: () => Promise.resolve(),
        maxBodyBytes: 1 << 20, maxItemBytes: 1 << 16, unstored: new UnstoredItems({ warn: () => undefined }),
      });
    }));
    const res = await app.inject({ method: 'POST', url: '/api/1/envelope/?sentry_key=k', payload: '{}\n{"type":"event"}\n{"message":"m"}\n',
      headers: { 'content-type': 'text/plain' } });
    expect(res.statusCode).toBe(429);
    expect(res.headers['retry-after']).toBe('1');
    expect(res.headers['x-sentry-rate-limits']).toBe('1::organization');
    await app.close();
  });
});
