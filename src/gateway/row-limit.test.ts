import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, startUpstream, type GatewayHarness, type Upstream } from './harness.conformance.js';

/**
 * Attack round 7 F6: one 100 MB row took ~4.5 times its size in gateway memory (framed whole,
 * masked, sent). A result row over gateway.maxRowBytes now ends the session with 54000 as soon
 * as its header arrives; nothing of it is held or forwarded. Real PostgreSQL.
 */

let upstream: Upstream;
let h: GatewayHarness;
const LIMIT = 1024 * 1024;

beforeAll(async () => {
  upstream = await startUpstream();
  h = await startHarness(upstream, { maxRowBytes: LIMIT });
  await h.gateway.access.grant({ userId: h.admin.id, userName: 'admin', role: 'admin' }, { subjectKind: 'user', subject: h.users.bob.id, resource: 'shop', mode: 'read' });
});
afterAll(async () => {
  await h?.close();
  await upstream?.stop();
});

describe('result rows are bounded (attack round 7 F6)', () => {
  it('a row under the limit arrives whole; one over it is refused with 54000 and never forwarded', async () => {
    const c = new pg.Client({ connectionString: h.url(h.users.bob, 'shop') });
    c.on('error', () => undefined);
    await c.connect();
    const ok = await c.query<{ n: number; x: string }>(`SELECT length(x) AS n, x FROM (SELECT repeat('a', ${LIMIT - 1000}) x) s`);
    expect(ok.rows[0].n).toBe(LIMIT - 1000);
    expect(ok.rows[0].x.length).toBe(LIMIT - 1000);
    const err = await c.query(`SELECT length(x) AS n, x FROM (SELECT repeat('b', ${LIMIT + 10}) x) s`).then(() => null, (e: Error & { code?: string }) => e);
    expect(err?.code).toBe('54000');
    expect(err?.message).toMatch(/a result row is over the gateway's limit of 1048576 bytes \(gateway\.maxRowBytes\)/);
    await c.end().catch(() => undefined);
  });
});
