import { describe, expect, it } from 'vitest';
import { groupEvent, normalizeFilename, normalizeMessage } from './grouping.js';
import type { ErrorEvent } from './model.js';
import { parseStacktrace } from './otel-errors.js';

function event(over: Partial<ErrorEvent>): ErrorEvent {
  return {
    eventId: 'a'.repeat(32), projectId: 1, timeUs: 0, service: 's', release: '', environment: 'production', level: 'error',
    platform: 'node', traceId: '', spanId: '', exceptions: [], message: '', transaction: '', user: null, tags: {}, request: null,
    source: 'sentry', payload: '{}', ...over,
  };
}

describe('normalizeMessage', () => {
  it('replaces numbers, hex, UUIDs, e-mails, IPs and timestamps', () => {
    expect(normalizeMessage('user 42 (bob@example.com) from 10.1.2.3:8080 at 2026-11-26T10:00:00Z, req 550e8400-e29b-41d4-a716-446655440000, ptr 0x7ffe, sha deadbeef12'))
      .toBe('user <num> (<email>) from <ip> at <timestamp>, req <uuid>, ptr <hex>, sha <hex>');
    expect(normalizeMessage('fe80::1ff:fe23:4567:890a refused')).toBe('<ip> refused');
  });
});

describe('normalizeFilename', () => {
  it('drops host paths, query strings and bundle hashes', () => {
    expect(normalizeFilename('/home/ci/build-123/app/src/orders/checkout.ts')).toBe('src/orders/checkout.ts');
    expect(normalizeFilename('file:///srv/x/node_modules/pg/lib/client.js')).toBe('node_modules/pg/lib/client.js');
    expect(normalizeFilename('https://cdn.example.com/assets/main.3f9a8b7c6d.js?v=2')).toBe('assets/main.js');
  });
});

describe('groupEvent', () => {
  const frames = (line: number) => [
    { filename: '/srv/app/node_modules/express/router.js', function: 'handle', inApp: false, lineno: 1 },
    { filename: '/srv/a/src/checkout.ts', function: 'pay', inApp: true, lineno: line },
  ];
  it('groups by in-app frames, ignoring line numbers, messages and host paths', () => {
    const a = groupEvent(event({ exceptions: [{ type: 'Error', value: 'order 1 failed', frames: frames(10) }] }));
    const b = groupEvent(event({ exceptions: [{ type: 'Error', value: 'order 2 failed', frames: frames(99) }] }));
    expect(a.groupId).toBe(b.groupId);
    expect(a.components).toEqual(['frames', 'Error', 'src/checkout.ts:pay']);
    expect(a.title).toBe('Error: order 1 failed');
  });
  it('falls back to type + normalised message, then the log message', () => {
    const a = groupEvent(event({ exceptions: [{ type: 'TypeError', value: 'id 5 missing', frames: [] }] }));
    expect(a.components).toEqual(['exception', 'TypeError', 'id <num> missing']);
    expect(groupEvent(event({ message: 'disk 91% full' })).components).toEqual(['message', 'disk <num>% full']);
  });
  it('an explicit fingerprint wins and {{ default }} expands', () => {
    const e = event({ message: 'x 1', fingerprint: ['db', '{{ default }}'] });
    expect(groupEvent(e).components).toEqual(['fingerprint', 'db', 'message', 'x <num>']);
    expect(groupEvent(event({ message: 'other', fingerprint: ['db'] })).groupId)
      .toBe(groupEvent(event({ message: 'else', fingerprint: ['db'] })).groupId);
  });
  it('separates projects and refuses unknown versions', () => {
    expect(groupEvent(event({ message: 'm' })).groupId).not.toBe(groupEvent(event({ message: 'm', projectId: 2 })).groupId);
    expect(() => groupEvent(event({}), 99)).toThrow(/grouping version/);
  });
});

describe('parseStacktrace', () => {
  it('reads JS, Python and Java stacks, crashing frame last', () => {
    const js = parseStacktrace('Error: x\n    at pay (/srv/app/src/pay.js:3:9)\n    at Layer.handle (/srv/app/node_modules/express/lib/layer.js:95:5)\n    at node:internal/timers:1:1');
    expect(js.map((f) => [f.function, f.inApp])).toEqual([['?', false], ['Layer.handle', false], ['pay', true]]);
    const py = parseStacktrace('Traceback:\n  File "/app/main.py", line 3, in run\n  File "/app/pay.py", line 9, in charge\nValueError: x');
    expect(py.map((f) => f.function)).toEqual(['run', 'charge']);
    const java = parseStacktrace('java.lang.IllegalStateException: x\n\tat com.shop.Pay.charge(Pay.java:12)\n\tat java.base/java.lang.Thread.run(Thread.java:1)');
    expect(java.at(-1)).toMatchObject({ module: 'com.shop.Pay', function: 'charge', inApp: true });
  });
});
