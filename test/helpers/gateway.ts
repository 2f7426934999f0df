/**
 * Set-up shared by the gateway's integration tests (src/gateway/*.test.ts): the upstream
 * PostgreSQL and the gateway harness of one test file, the resources its tests read through and
 * the grants they use. The harness itself is src/gateway/harness.conformance.ts.
 */
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

/** Stops what startGatewayTest started (either may be unset when its start failed). */
export async function stopGatewayTest(h: GatewayHarness | undefined, upstream: Upstream | undefined): Promise<void> {
  await h?.close();
  await upstream?.stop();
}

/** Runs `sql` on the upstream `shop` database as its superuser (set-up the gateway does not see). */
export async function upstreamSql(upstream: Upstream, sql: string): Promise<void> {
  const a = await upstream.admin();
  try {
    await a.query(sql);
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
