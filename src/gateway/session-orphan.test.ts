import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { queryMessage } from './wire/encode.js';
import { rawClient, startHarness, startUpstream, type GatewayHarness, type Upstream } from './harness.conformance.js';

/**
 * Attack round 7 F3 (points 2 and 4): a client that left while its statement ran upstream left
 * the backend running for minutes (an aggregate sends nothing by which a closed socket would be
 * noticed), out of the per-user session cap, and the audit said only "session-ended". The
 * gateway now cancels it upstream and closes the connection, keeping the slot until then.
 * Checked on real PostgreSQL through a direct (non-gateway) connection's pg_stat_activity.
 */

let upstream: Upstream;
let h: GatewayHarness;

beforeAll(async () => {
  upstream = await startUpstream();
  h = await startHarness(upstream, { maxSessionsPerUser: 2 });
  await h.gateway.access.grant({ userId: h.admin.id, userName: 'admin', role: 'admin' }, { subjectKind: 'user', subject: h.users.bob.id, resource: 'shop', mode: 'read' });
});
afterAll(async () => {
  await h?.close();
  await upstream?.stop();
});

/** Backends (direct view) whose query holds `marker`, polled until `want` or the deadline. */
async function backends(marker: string, want: (n: number) => boolean, deadlineMs: number): Promise<number> {
  const direct = await upstream.admin();
  try {
    const until = Date.now() + deadlineMs;
    for (;;) {
      const r = await direct.query<{ n: number }>("SELECT count(*)::int AS n FROM pg_stat_activity WHERE query LIKE '%' || $1 || '%' AND pid <> pg_backend_pid() AND state = 'active'", [marker]);
      const n = r.rows[0].n;
      if (want(n) || Date.now() > until) return n;
      await new Promise((res) => setTimeout(res, 200));
    }
  } finally {
    await direct.end();
  }
}

describe('a statement does not outlive its client (attack round 7 F3)', () => {
  it('the client leaves during a long aggregate: the backend is cancelled, the record says so, the slots are free again', async () => {
    const markers: string[] = [];
    for (let i = 0; i < 3; i++) {
      const marker = `orphan_marker_${i}`;
      markers.push(marker);
      const raw = await rawClient(h.gateway.port ?? 0, h.users.bob, 'shop');
      raw.send(queryMessage(`SELECT count(*) AS ${marker} FROM generate_series(1, 3000000000)`));
      expect(await backends(marker, (n) => n === 1, 10_000)).toBe(1);
      raw.close();
      // Gone within a few seconds (it would run for minutes).
      expect(await backends(marker, (n) => n === 0, 8_000)).toBe(0);
    }
    await h.gateway.audit.flush();
    const recs = (await h.gateway.audit.query({ kind: 'statement', actor: 'bob', limit: 100 })).map((r) => r.data as { text?: string; error?: string; cancelled?: boolean });
    for (const m of markers) expect(recs.find((d) => d.text?.includes(m))).toMatchObject({ error: 'session-ended', cancelled: true });
    // Both slots of the cap are free again.
    const a = await rawClient(h.gateway.port ?? 0, h.users.bob, 'shop');
    const b = await rawClient(h.gateway.port ?? 0, h.users.bob, 'shop');
    a.close();
    b.close();
  });
});
