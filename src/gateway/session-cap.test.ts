import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GatewayHarness, Upstream } from './harness.conformance.js';
import { grantAccess, startGatewayTest, stopGatewayTest } from '../../test/helpers/gateway.js';

/**
 * Attack round 4 #10: one read grant opened 93 idle gateway sessions and took every upstream
 * connection slot (other users got 53300 from the server, the catalog refresh failed). A user
 * holds at most `gateway.maxSessionsPerUser` sessions on one resource at once. Real PostgreSQL.
 */

let upstream: Upstream;
let h: GatewayHarness;
const CAP = 3;

beforeAll(async () => {
  ({ upstream, h } = await startGatewayTest({ gateway: { maxSessionsPerUser: CAP } }));
  await grantAccess(h, h.users.bob, 'shop', 'read');
});
afterAll(() => stopGatewayTest(h, upstream));

async function open(user: 'alice' | 'bob'): Promise<pg.Client> {
  const c = new pg.Client({ connectionString: h.url(h.users[user], 'shop') });
  c.on('error', () => undefined);
  await c.connect();
  return c;
}

describe('sessions per user (attack round 4 #10)', () => {
  it('a user gets at most the cap at once, concurrent logins included; others are unaffected; a closed one frees its slot', async () => {
    const settled = await Promise.allSettled(Array.from({ length: CAP + 3 }, () => open('bob')));
    const held = settled.filter((s): s is PromiseFulfilledResult<pg.Client> => s.status === 'fulfilled').map((s) => s.value);
    const refused = settled.filter((s): s is PromiseRejectedResult => s.status === 'rejected').map((s) => s.reason as Error & { code?: string });
    expect(held).toHaveLength(CAP);
    expect(refused.map((e) => e.code)).toEqual(['53300', '53300', '53300']);
    expect(refused[0].message).toMatch(/too many gateway sessions for user "bob"/);
    // Another user is not limited by bob's sessions.
    const alice = await open('alice');
    expect((await alice.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
    await alice.end();
    await held[0].end();
    await new Promise((r) => setTimeout(r, 200));
    const again = await open('bob');
    expect((await again.query('SELECT 1 AS one')).rowCount).toBe(1);
    await Promise.all([again, ...held.slice(1)].map((c) => c.end()));
    const audit = await h.gateway.audit.query({ kind: 'connection.refused', actor: 'bob', limit: 10 });
    expect(audit.map((r) => (r.data as { reason?: string }).reason)).toContain('too many sessions');
  });
});
