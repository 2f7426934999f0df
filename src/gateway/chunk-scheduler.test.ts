import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually } from '../../test/helpers/server.js';
import { grantAccess, shopResource, startGatewayTest, stopGatewayTest, upstreamSql } from '../../test/helpers/gateway.js';
import { ChunkScheduler, type ChunkQueue } from './chunk-scheduler.js';
import type { GatewayHarness, TestUser, Upstream } from './harness.conformance.js';

/**
 * Finding F5: the work on server data (framing, attribution, masking) ran as each chunk arrived,
 * one chunk per session per turn of the event loop, so a user with 8 sessions got 8 times the
 * thread of a user with one (another user's p95 rose 7.3×). The gateway now serves waiting
 * chunks one per user per round (chunk-scheduler.ts). Here the test runs the rounds itself: it
 * waits until all 9 sessions (8 of `heavy`, 1 of `light`) have a chunk waiting, runs one round,
 * and counts whose chunks were served. Real PostgreSQL; no timing.
 */

/** Rows of light's result (~2.3 MB: over 30 chunks) and of each heavy result (over 8 chunks). */
const ROWS = 20_000;
const HEAVY_ROWS = 5_000;
const HEAVY_SESSIONS = 8;
const ROUNDS = 2 * HEAVY_SESSIONS;
const query = (rows: number): string => `SELECT id, email, note FROM fair_rows WHERE id <= ${rows} ORDER BY id`;

let upstream: Upstream;
let h: GatewayHarness;
let heavy: TestUser;
let light: TestUser;
/** The scheduler's next round, held until the test runs it (`auto` lets rounds run as usual). */
let nextRound: (() => void) | undefined;
let auto = false;
const served: { user: string; queue: ChunkQueue }[] = [];
const scheduler = new ChunkScheduler({
  defer: (round) => {
    if (auto) setImmediate(round);
    else nextRound = round;
  },
  onServe: (user, queue) => served.push({ user, queue }),
});

beforeAll(async () => {
  ({ upstream, h } = await startGatewayTest({ ssl: false, gateway: { chunkScheduler: scheduler, maxSessionsPerUser: 0 } }));
  await upstreamSql(upstream, `CREATE TABLE fair_rows AS SELECT i AS id, 'user' || i || '.name@example.com' AS email, repeat('plain words ', 5) || i AS note FROM generate_series(1, ${ROWS}) i`);
  await shopResource(h, upstream, 'shop-fair', { masking: { columns: [{ name: 'email', mode: 'partial' }] } });
  heavy = await h.addUser('heavy');
  light = await h.addUser('light');
  await grantAccess(h, heavy, 'shop-fair', 'read');
  await grantAccess(h, light, 'shop-fair', 'read');
});
afterAll(async () => {
  auto = true;
  nextRound?.();
  await stopGatewayTest(h, upstream);
});

async function open(user: TestUser): Promise<pg.Client> {
  const c = new pg.Client({ connectionString: h.url(user, 'shop-fair') });
  c.on('error', () => undefined); // a failed run's sessions end with the gateway: the assertions report it
  await c.connect();
  return c;
}

describe('server data is worked on in fair shares per user (finding F5)', () => {
  it('a user with 8 sessions is served one chunk per round, as is a user with one; every row arrives masked', async () => {
    const heavies = await Promise.all(Array.from({ length: HEAVY_SESSIONS }, () => open(heavy)));
    const lightClient = await open(light);
    const clients = [...heavies, lightClient];
    const results = clients.map((c) => c.query<{ id: number; email: string }>(query(c === lightClient ? ROWS : HEAVY_ROWS)));
    for (let round = 0; round < ROUNDS; round++) {
      // Every session has a chunk waiting: its server is read no further until it is served.
      await eventually(() => {
        const w = scheduler.waiting();
        return w.get(heavy.id) === HEAVY_SESSIONS && w.get(light.id) === 1 && nextRound !== undefined ? true : undefined;
      });
      const start = served.length;
      const run = nextRound as () => void;
      nextRound = undefined;
      run();
      const users = served.slice(start).map((s) => s.user);
      expect(users.filter((u) => u === heavy.id)).toHaveLength(1);
      expect(users.filter((u) => u === light.id)).toHaveLength(1);
      // light had nothing waiting at the round before (its one chunk was served): it goes first.
      if (round > 0) expect(users[0]).toBe(light.id);
    }
    // The heavy user's sessions took turns: each was served in every 8 rounds.
    const heavyTurns = served.filter((s) => s.user === heavy.id).map((s) => s.queue);
    expect(new Set(heavyTurns.slice(0, HEAVY_SESSIONS)).size).toBe(HEAVY_SESSIONS);
    expect(heavyTurns.slice(HEAVY_SESSIONS, 2 * HEAVY_SESSIONS)).toEqual(heavyTurns.slice(0, HEAVY_SESSIONS));

    // Rounds run on their own again: every result arrives whole, masked.
    auto = true;
    const run = nextRound;
    nextRound = undefined;
    run?.();
    const done = await Promise.all(results);
    done.forEach((r, i) => {
      const rows = clients[i] === lightClient ? ROWS : HEAVY_ROWS;
      expect(r.rows).toHaveLength(rows);
      expect(r.rows[rows - 1].id).toBe(rows);
      expect(r.rows.filter((row) => row.email.includes('.name@example'))).toEqual([]);
    });
    await Promise.all(clients.map((c) => c.end()));
    auto = false;
  });
});
