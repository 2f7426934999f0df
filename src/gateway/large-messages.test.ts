import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { failure, grantAccess, shopResource, startGatewayTest, stopGatewayTest } from '../../test/helpers/gateway.js';
import type { GatewayHarness, Upstream } from './harness.conformance.js';

/**
 * Attack round 8 G4: a read-grant user's `select repeat('x', 60000000)::int` made the server
 * answer with a 60 MB ErrorResponse, and the gateway held ~20 times that while masking it, in
 * time that grew with the square of its size. Every text field of an error or notice is now
 * bounded (masking/errors.ts FIELD_BYTES): a longer one is replaced whole, unscanned, before
 * anything looks at it. Real PostgreSQL; memory is a loose bound (no timing: bench gateway).
 */

let upstream: Upstream;
let h: GatewayHarness;
const MB = 1_000_000;

beforeAll(async () => {
  ({ upstream, h } = await startGatewayTest({ ssl: false }));
  await shopResource(h, upstream, 'shop-d', {});
  await shopResource(h, upstream, 'shop-r', { masking: { columns: [{ name: 'email', mode: 'full' }] } });
  await grantAccess(h, h.users.bob, 'shop-d', 'read');
  await grantAccess(h, h.users.bob, 'shop-r', 'read');
});
afterAll(async () => {
  await stopGatewayTest(h, upstream);
});

/** Runs `fn` on a session of bob's to `resource`; the session must still answer afterwards. */
async function asBob(resource: string, fn: (c: pg.Client) => Promise<void>): Promise<void> {
  const c = new pg.Client({ connectionString: h.url(h.users.bob, resource) });
  c.on('error', () => undefined); // a dropped session shows as the failed query below
  await c.connect();
  try {
    await fn(c);
    expect((await c.query('select 1 as ok')).rows).toEqual([{ ok: 1 }]);
  } finally {
    await c.end();
  }
}

describe('large server messages are bounded (attack round 8 G4)', () => {
  for (const resource of ['shop-d', 'shop-r']) {
    it(`${resource}: a 50 MB error arrives bounded and masked, the session stays usable, the heap stays bounded`, () => asBob(resource, async (c) => {
      // Warm up the path once with a small one.
      expect((await failure(c.query(`select repeat('y', 1000)::int`)))?.code).toBe('22P02');
      globalThis.gc?.();
      const before = process.memoryUsage();
      let peak = before.heapUsed + before.arrayBuffers;
      const timer = setInterval(() => {
        const m = process.memoryUsage();
        peak = Math.max(peak, m.heapUsed + m.arrayBuffers);
      }, 5);
      const e = await failure(c.query(`select repeat('x', ${50 * MB})::int`));
      clearInterval(timer);
      expect(e?.code).toBe('22P02');
      // The value the server echoed never reaches the client, not even a part of it.
      expect(e?.message.length).toBeLessThan(64 * 1024);
      expect(e?.message).not.toMatch(/x{100}/);
      expect(e?.message).toContain('tightloop');
      // Loose: the server's message passes through the gateway's buffers once (the old code held ~20×).
      expect(peak - (before.heapUsed + before.arrayBuffers)).toBeLessThan(4 * 50 * MB);
    }));
  }

  it('a value just under the row bound is masked whole, unscanned, and the session goes on', () => asBob('shop-d', async (c) => {
    const { v } = (await c.query<{ v: string }>(`select repeat('x', ${15 * MB}) as v`)).rows[0];
    expect(v.length).toBe(15 * MB);
    // Over the detectors' 16 KiB scan bound: masked whole (`partial` keeps the last four).
    expect(/^\*+x{0,4}$/.test(v)).toBe(true);
  }));
});
