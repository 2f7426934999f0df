import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { failure, grantAccess, shopResource, startGatewayTest, stopGatewayTest, upstreamSql, type PgError } from '../../test/helpers/gateway.js';
import { asUser, type GatewayHarness, type Upstream } from './harness.conformance.js';
import { limitRefusal, startupLimits, timeoutMs } from './guardrails/session-limits.js';
import { auditVolume, judgingTime, TimeBucket } from './user-bucket.js';
import { eventually } from '../../test/helpers/server.js';

/**
 * Session resource limits (issue 15): the gateway sets statement_timeout, lock_timeout and
 * idle_in_transaction_session_timeout on each upstream session from the resource's policy, and
 * refuses every way a user could raise or clear them (42501, the session goes on); lowering
 * works. Real PostgreSQL through the gateway.
 */

let upstream: Upstream;
let h: GatewayHarness;
const LIMITS = { statementTimeoutMs: 1000, lockTimeoutMs: 500, idleInTransactionSessionTimeoutMs: 2000 };

beforeAll(async () => {
  ({ upstream, h } = await startGatewayTest({ ssl: false }));
  await shopResource(h, upstream, 'limited', { limits: LIMITS });
  await grantAccess(h, h.users.alice, 'limited', 'write');
  await grantAccess(h, h.users.bob, 'limited', 'read');
});
afterAll(async () => {
  await stopGatewayTest(h, upstream);
});

type Who = 'alice' | 'bob';

async function client(user: Who, extra: Partial<pg.ClientConfig> = {}): Promise<pg.Client> {
  const c = new pg.Client({ connectionString: h.url(h.users[user], 'limited'), ...extra });
  c.on('error', () => undefined); // the server ends sessions here on purpose (timeouts): the test reads the outcome
  await c.connect();
  return c;
}

/** Runs `fn` on a session of `user` to the limited resource, ended afterwards. */
async function session<T>(user: Who, fn: (c: pg.Client) => Promise<T>, extra: Partial<pg.ClientConfig> = {}): Promise<T> {
  const c = await client(user, extra);
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

async function settings(c: pg.Client): Promise<string[]> {
  const r = await c.query<{ s: string; l: string; i: string }>("SELECT current_setting('statement_timeout') AS s, current_setting('lock_timeout') AS l, current_setting('idle_in_transaction_session_timeout') AS i");
  return [r.rows[0].s, r.rows[0].l, r.rows[0].i];
}
const AT_LIMITS = ['1s', '500ms', '2s'];

describe('session limits are set upstream at login', () => {
  it('a statement over the limit is cancelled by the server (57014) and the session goes on', async () => {
    await session('alice', async (c) => {
      expect(await settings(c)).toEqual(AT_LIMITS);
      const err = await failure(c.query('SELECT pg_sleep(5)'));
      expect(err?.code).toBe('57014');
      expect(err?.message).toMatch(/statement timeout/);
      expect((await c.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
    });
  });

  it('a lock wait over lock_timeout fails with 55P03', async () => {
    const holder = await upstream.admin();
    const c = await client('alice');
    try {
      await holder.query('BEGIN');
      await holder.query('SELECT * FROM orders WHERE id = 1 FOR UPDATE');
      const err = await failure(c.query('UPDATE orders SET total = total WHERE id = 1'));
      expect(err?.code).toBe('55P03');
      expect((await c.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
    } finally {
      await holder.query('ROLLBACK');
      await holder.end();
      await c.end();
    }
  });

  it('a transaction left idle is ended by the server', async () => {
    const c = await client('alice');
    const ended = new Promise<void>((resolve) => c.once('end', () => resolve()));
    await c.query('BEGIN');
    await c.query('SELECT 1');
    await ended;
    await c.end().catch(() => undefined); // the server has ended it already: nothing left to close
  });

  it('under a default policy the defaults apply', async () => {
    await asUser(h, h.users.alice, 'shop', async (c) => {
      expect(await settings(c)).toEqual(['1min', '5s', '5min']);
    });
  });
});

describe('a user cannot raise or clear a limit', () => {
  const RAISES = [
    'SET statement_timeout = 0',
    "SET statement_timeout = '2s'",
    'SET SESSION statement_timeout TO 5000',
    "SET statement_timeout = '100us'",
    "SET statement_timeout = '0x7fffffff'",
    'SET statement_timeout = 1.5e3',
    "SET lock_timeout = '1min'",
    'SET idle_in_transaction_session_timeout = 0',
    "SELECT set_config('statement_timeout', '0', false)",
    "SELECT 1 AS one WHERE set_config('lock_timeout', '10s', true) IS NOT NULL",
    "SELECT * FROM pg_catalog.set_config('idle_in_transaction_session_timeout', '1h', false)",
    "SELECT set_config('statement_timeout', repeat('9', 6), false)",
    "SELECT set_config(s, '0', false) FROM (VALUES ('statement_timeout')) v(s)",
    "UPDATE pg_settings SET setting = '0' WHERE name = 'statement_timeout'",
    "PREPARE p AS SELECT set_config('statement_timeout', '0', false)",
    'ALTER ROLE CURRENT_USER SET statement_timeout = 0',
    'ALTER DATABASE shop SET lock_timeout = 0',
    "CREATE FUNCTION lift() RETURNS int LANGUAGE sql SET statement_timeout = 0 AS 'SELECT 1'",
    'SELECT 1; SET statement_timeout = 0',
  ];

  /** Each way in: as whom, and what it sends; the error it got (null when it ran). */
  const WAYS: { way: string; user: Who; raise: (c: pg.Client) => Promise<PgError | null> }[] = [
    ...RAISES.map((sql) => ({ way: sql, user: 'alice' as const, raise: (c: pg.Client) => failure(c.query(sql)) })),
    {
      way: 'SET LOCAL inside a transaction (and the limit holds in it)', user: 'alice',
      raise: async (c) => {
        await c.query('BEGIN');
        const err = await failure(c.query('SET LOCAL statement_timeout = 0'));
        await c.query('ROLLBACK');
        await c.query('BEGIN');
        expect((await failure(c.query('SELECT pg_sleep(5)')))?.code).toBe('57014');
        await c.query('ROLLBACK');
        return err;
      },
    },
    // The gateway cannot read a parameter's value: refused whatever it is.
    { way: 'a parameter as the value (extended protocol)', user: 'alice', raise: (c) => failure(c.query({ text: "SELECT set_config('statement_timeout', $1, false)", values: ['0'] })) },
    { way: 'SET under a read grant', user: 'bob', raise: (c) => failure(c.query('SET statement_timeout = 0')) },
  ];

  it.each(WAYS)('$way: refused with 42501, the session goes on at the limits', async ({ user, raise }) => {
    await session(user, async (c) => {
      const err = await raise(c);
      expect(err?.code).toBe('42501');
      expect(err?.message).toMatch(/guardrail "session-limit"/);
      expect(await settings(c)).toEqual(AT_LIMITS);
    });
  });

  const STARTUPS: Partial<pg.ClientConfig>[] = [{ statement_timeout: 10_000 }, { options: '-c statement_timeout=0' }, { options: '--lock-timeout=1h' }];
  it.each(STARTUPS)('a higher limit in the startup packet (%o) refuses the login with 42501', async (extra) => {
    const err = await failure(client('alice', extra));
    expect(err?.code).toBe('42501');
    expect(err?.message).toMatch(/session-limit/);
  });
});

describe('lowering a limit works, and going back lands on the limit', () => {
  it('SET, SET LOCAL and set_config with lower values run and take effect', async () => {
    await session('alice', async (c) => {
      await c.query("SET statement_timeout = '200ms'");
      expect((await failure(c.query('SELECT pg_sleep(0.6)')))?.code).toBe('57014');
      await c.query("SELECT set_config('lock_timeout', '100ms', false)");
      await c.query('BEGIN');
      await c.query('SET LOCAL idle_in_transaction_session_timeout = 1500');
      expect(await settings(c)).toEqual(['200ms', '100ms', '1500ms']);
      await c.query('COMMIT');
    });
  });

  it('RESET, RESET ALL, SET ... DEFAULT and DISCARD ALL return to the limits, not to the server default', async () => {
    await upstreamSql(upstream, 'ALTER DATABASE shop SET statement_timeout = 0');
    try {
      await session('alice', async (c) => {
        for (const back of ['RESET statement_timeout', 'RESET ALL', 'SET statement_timeout TO DEFAULT', 'DISCARD ALL']) {
          await c.query("SET statement_timeout = '300ms'");
          await c.query(back);
          expect((await settings(c))[0]).toBe('1s');
        }
        expect((await failure(c.query('SELECT pg_sleep(5)')))?.code).toBe('57014');
      });
    } finally {
      await upstreamSql(upstream, 'ALTER DATABASE shop RESET statement_timeout');
    }
  });

  it('lower limits in the startup packet are applied', async () => {
    await session('alice', async (c) => {
      expect(await settings(c)).toEqual(['200ms', '100ms', '2s']);
      expect((await failure(c.query('SELECT pg_sleep(0.6)')))?.code).toBe('57014');
    }, { statement_timeout: 200, options: '-c lock_timeout=100ms' });
  });
});

describe('reading timeouts as the server does', () => {
  it('units, rounding under 1 ms to 0 (no limit), and values the gateway will not guess', () => {
    expect(timeoutMs('1500')).toBe(1500);
    expect(timeoutMs(' 2 s ')).toBe(2000);
    expect(timeoutMs('1.5min')).toBe(90_000);
    expect(timeoutMs('1e3')).toBe(1000);
    expect(timeoutMs('100us')).toBe(0);
    expect(timeoutMs('0.4')).toBe(0);
    expect(timeoutMs('010')).toBeUndefined();
    expect(timeoutMs('0x10')).toBeUndefined();
    expect(timeoutMs('5 MIN')).toBeUndefined();
    expect(timeoutMs('-1')).toBeUndefined();
  });

  it('a limit of 0 is off: anything goes for that setting', () => {
    const limits = { statementTimeoutMs: 0, lockTimeoutMs: 100, idleInTransactionSessionTimeoutMs: 0 };
    expect(limitRefusal({ setting: 'statement_timeout', ms: 0, via: 'SET statement_timeout' }, limits)).toBeUndefined();
    expect(limitRefusal({ setting: 'lock_timeout', ms: 101, via: 'SET lock_timeout' }, limits)).toMatch(/over this resource's limit of 100 ms/);
    expect(startupLimits(new Map([['options', '-c statement_timeout=9 -cstatement_timeout=7 --lock_timeout=50']]), limits)).toEqual({ values: { statement_timeout: 7, lock_timeout: 50 } });
  });
});

describe('judging time is bounded per user (attack round 8 G1)', () => {
  it("a user whose judging time is spent waits for it to refill; another user's statements go on", async () => {
    const bob = await client('bob');
    const alice = await client('alice');
    try {
      // As if bob's sessions had just spent 3 s of the gateway's thread judging statements:
      // at 200 ms regained per second, his next statement waits ~15 s; alice's does not.
      judgingTime.of(h.users.bob.id).spend(3_000);
      let bobAnswered = false;
      const bobs = bob.query<{ one: number }>('SELECT 1 AS one').then((r) => {
        bobAnswered = true;
        return r.rows;
      });
      expect((await alice.query('SELECT 2 AS two')).rows).toEqual([{ two: 2 }]);
      expect(bobAnswered).toBe(false);
      // Held, not refused: it runs once the bucket refilled.
      expect(await bobs).toEqual([{ one: 1 }]);
    } finally {
      await bob.end();
      await alice.end();
    }
  });
});


describe('audit volume is bounded per user (attack round 9 H2)', () => {
  const KIB = 1024;

  /**
   * alice gets a small audit volume (64 KiB, refilled at 256 KiB per second) and a statement of
   * hers with a 1 MiB value runs: its record is charged whole, and her volume is ~1 MiB in debt,
   * ~4 s to refill. Her next statement, `next`, is held; bob's statement answers while it waits,
   * and `next` runs once the volume refilled.
   */
  async function heldWhileInDebt(first: (c: pg.Client) => Promise<unknown>, next: (c: pg.Client) => Promise<pg.QueryResult<{ one: number }>>): Promise<void> {
    const volume = new TimeBucket(64 * KIB, 256 * KIB);
    auditVolume.set(h.users.alice.id, volume);
    const alice = await client('alice');
    const bob = await client('bob');
    try {
      expect(volume.msUntilAvailable()).toBe(0);
      await first(alice);
      // Nothing cut: charged for what was recorded, so the volume is in debt.
      expect(volume.msUntilAvailable()).toBeGreaterThan(0);
      let aliceAnswered = false;
      const alices = next(alice).then((r) => {
        aliceAnswered = true;
        return r.rows;
      });
      // Her session's relay holds the statement (a condition, not a time: not held, it answers
      // and the relay never holds).
      const held = await eventually(() => h.gateway.registry.sessions().find((s) => s.who?.userId === h.users.alice.id && s.relay?.holding === true));
      expect((await bob.query('SELECT 2 AS two')).rows).toEqual([{ two: 2 }]);
      expect(aliceAnswered).toBe(false);
      expect(held.relay?.holding).toBe(true);
      // Held, not refused: it runs once the volume refilled.
      expect(await alices).toEqual([{ one: 1 }]);
    } finally {
      await alice.end();
      await bob.end();
      auditVolume.set(h.users.alice.id, undefined);
    }
  }

  it("a user whose audit volume is in debt waits for it to refill; another user's statements go on", async () => {
    await heldWhileInDebt(
      async (c) => expect((await c.query<{ n: number }>('SELECT length($1) AS n', ['x'.repeat(1024 * KIB)])).rows).toEqual([{ n: 1024 * KIB }]),
      (c) => c.query<{ one: number }>('SELECT 1 AS one'),
    );
  });

  it('a prepared statement bound again (no Parse, so not judged again) is held at its Bind', async () => {
    const text = 'SELECT length($1)::int / length($1)::int AS one';
    await heldWhileInDebt(
      async (c) => expect((await c.query<{ one: number }>({ name: 'big', text, values: ['x'.repeat(1024 * KIB)] })).rows).toEqual([{ one: 1 }]),
      (c) => c.query<{ one: number }>({ name: 'big', text, values: ['x'] }),
    );
  });
});
