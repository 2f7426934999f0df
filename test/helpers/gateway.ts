/**
 * Set-up shared by the gateway's integration tests (src/gateway/*.test.ts): the upstream
 * PostgreSQL and the gateway harness of one test file, the resources its tests read through and
 * the grants they use. The harness itself is src/gateway/harness.conformance.ts.
 */
import type pg from 'pg';
import { expect } from 'vitest';
import type { AccessMode } from '../../src/gateway/schema.js';
import {
  startHarness, startUpstream, UPSTREAM, type GatewayHarness, type TestUser, type Upstream,
} from '../../src/gateway/harness.conformance.js';
import type { GatewayOptions } from '../../src/gateway/index.js';

export interface GatewayTestEnv {
  upstream: Upstream;
  h: GatewayHarness;
}

/** An upstream PostgreSQL (SSL on unless `ssl: false`) and a gateway in front of it. */
export async function startGatewayTest(opts: { ssl?: boolean; gateway?: Partial<GatewayOptions> } = {}): Promise<GatewayTestEnv> {
  const upstream = await startUpstream(opts.ssl === undefined ? {} : { ssl: opts.ssl });
  const h = await startHarness(upstream, opts.gateway);
  return { upstream, h };
}

/** The column rules most masking tests read `shop` through: name hashed, e-mail partial, card whole. */
export const SHOP_MASKING = { masking: { columns: [{ name: 'name', mode: 'hash' }, { name: 'email', mode: 'partial' }, { name: 'card', mode: 'full' }] } };

/**
 * An upstream and a gateway with one resource `name` on `shop` under `policy` (SHOP_MASKING unless
 * given), bob granted read and, with `aliceWrites`, alice write.
 */
export async function startMaskedShop(name: string, opts: { policy?: object; aliceWrites?: boolean } = {}): Promise<GatewayTestEnv> {
  const env = await startGatewayTest();
  try {
    await shopResource(env.h, env.upstream, name, opts.policy ?? SHOP_MASKING);
    await grantAccess(env.h, env.h.users.bob, name, 'read');
    if (opts.aliceWrites === true) await grantAccess(env.h, env.h.users.alice, name, 'write');
  } catch (err) {
    await stopGatewayTest(env.h, env.upstream);
    throw err;
  }
  return env;
}

/** Stops what startGatewayTest started (either may be unset when its start failed). */
export async function stopGatewayTest(h: GatewayHarness | undefined, upstream: Upstream | undefined): Promise<void> {
  await h?.close();
  await upstream?.stop();
}

/** Runs `sql` on the upstream `shop` database as its superuser (set-up the gateway does not see). */
export async function upstreamSql(upstream: Upstream, sql: string): Promise<void> {
  await upstreamRows(upstream, sql);
}

/** The rows of `sql` on the upstream `shop` database, read as its superuser (what the gateway would mask). */
export async function upstreamRows<R extends object>(upstream: Upstream, sql: string): Promise<R[]> {
  const a = await upstream.admin();
  try {
    return (await a.query<R>(sql)).rows;
  } finally {
    await a.end();
  }
}

/**
 * A gateway resource on the upstream `shop` database, logged in as the SCRAM role without TLS,
 * with the given policy (masking, guardrails).
 */
export async function shopResource(h: GatewayHarness, upstream: Upstream, name: string, policy: object): Promise<void> {
  await h.gateway.resources.create({
    name, host: '127.0.0.1', port: upstream.port, database: 'shop', user: UPSTREAM.scram.user,
    credential: 'env:TIGHTLOOP_TEST_PG_SCRAM', tls: { mode: 'disable' }, policy,
  });
}

/** The harness admin grants `user` access to `resource`. */
export async function grantAccess(h: GatewayHarness, user: TestUser, resource: string, mode: AccessMode): Promise<void> {
  await h.gateway.access.grant({ userId: h.admin.id, userName: 'admin', role: 'admin' }, { subjectKind: 'user', subject: user.id, resource, mode });
}

/** An error the gateway or PostgreSQL answered with; `code` is its SQLSTATE. */
export type PgError = Error & { code?: string };

/** How `p` failed (null when it did not); a rejection that is not an Error is rethrown. */
export function failure(p: Promise<unknown>): Promise<PgError | null> {
  return p.then(() => null, (e: unknown) => {
    if (e instanceof Error) return e;
    throw e;
  });
}

/** Expects each statement refused on `c` by guardrail `rule` with 42501; a mismatch names the statement. */
export async function expectRefused(c: pg.Client, statements: readonly string[], rule = 'masking-bypass'): Promise<void> {
  for (const sql of statements) {
    const e = await failure(c.query(sql));
    expect({ sql, code: e?.code, rule: e?.message.includes(`"${rule}"`) }).toEqual({ sql, code: '42501', rule: true });
  }
}

/** SQL testing bit `i` of a 7-bit ASCII value of `col` (characters from 1): the side-channel tests' probe. */
export const bit = (col: string, i: number): string => `ascii(substr(${col}, ${1 + Math.floor(i / 7)}, 1)) & ${1 << (i % 7)} > 0`;

/** The text spelt by bits (7 per character); bits a statement did not tell are 0. */
export function decode(bits: ReadonlySet<number>, n: number): string {
  let out = '';
  for (let c = 0; c < n / 7; c++) {
    let v = 0;
    for (let b = 0; b < 7; b++) if (bits.has(c * 7 + b)) v |= 1 << b;
    out += String.fromCharCode(v);
  }
  return out;
}
