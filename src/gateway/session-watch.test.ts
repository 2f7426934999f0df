import type { Kysely } from 'kysely';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deleteUser, revokeToken } from '../auth/index.js';
import { setUserRole } from '../auth/users.js';
import type { Database } from '../state/index.js';
import { type GatewayHarness, type TestUser, type Upstream } from './harness.conformance.js';
import { gatewayDb } from './schema.js';
import { startGatewayTest, stopGatewayTest } from '../../test/helpers/gateway.js';

/**
 * Live sessions follow revocation: revoking the token a session logged in with, letting it
 * expire, removing the user, changing the user's role or revoking the grant behind their
 * back (straight in the state database, as another process would) ends that user's open
 * sessions — and only theirs.
 */

let upstream: Upstream;
let h: GatewayHarness;
let db: Kysely<Database>;

beforeAll(async () => {
  ({ upstream, h } = await startGatewayTest());
  db = h.state.db;
});
afterAll(() => stopGatewayTest(h, upstream));

interface Live {
  user: TestUser;
  client: pg.Client;
  /** Resolves with the error that ended the session (or 'timeout' after 5 s). */
  ended(): Promise<string>;
}

async function connect(name: string, role: 'member' | 'admin' = 'member'): Promise<Live> {
  const user = await h.addUser(name, role);
  await h.gateway.access.grant({ userId: h.admin.id, userName: 'admin', role: 'admin' }, { subjectKind: 'user', subject: user.id, resource: 'shop', mode: 'read' });
  const client = new pg.Client({ connectionString: h.url(user, 'shop') });
  let reason: string | undefined;
  let wake: (() => void) | undefined;
  client.on('error', (err) => {
    reason = `${(err as { code?: string }).code ?? ''} ${err.message}`;
    wake?.();
  });
  client.on('end', () => {
    reason ??= 'closed';
    wake?.();
  });
  await client.connect();
  expect((await client.query<{ one: number }>('SELECT 1 AS one')).rows[0].one).toBe(1);
  return {
    user, client,
    ended: () => new Promise((resolve) => {
      if (reason !== undefined) return resolve(reason);
      const timer = setTimeout(() => resolve('timeout'), 5_000);
      wake = () => {
        clearTimeout(timer);
        resolve(reason ?? 'closed');
      };
    }),
  };
}

async function tokenId(user: TestUser): Promise<string> {
  return (await db.selectFrom('api_tokens').select('id').where('user_id', '=', user.id).executeTakeFirstOrThrow()).id;
}

describe('live sessions follow their login', () => {
  const cases: Record<string, (u: TestUser) => Promise<unknown>> = {
    'token revoked': async (u) => revokeToken(db, await tokenId(u)),
    'token expired': async (u) => db.updateTable('api_tokens').set({ expires_at: new Date(Date.now() - 1000).toISOString() }).where('user_id', '=', u.id).execute(),
    'user removed': async (u) => deleteUser(db, u.id),
    'role changed': async (u) => setUserRole(db, u.id, 'viewer'),
    'grant revoked behind the gateway\'s back': async (u) =>
      gatewayDb(db).updateTable('gateway_grants').set({ revoked_at: new Date().toISOString(), revoked_by: 'someone' }).where('subject', '=', u.id).execute(),
  };
  for (const [name, change] of Object.entries(cases)) {
    it(`${name}: the session ends (57P01), a bystander's does not`, async () => {
      const slug = name.split(' ')[0].replace(/\W/g, '');
      const target = await connect(`t${slug}${Date.now() % 100000}`);
      const bystander = await connect(`b${slug}${Date.now() % 100000}`);
      await change(target.user);
      const why = await target.ended();
      expect(why).toMatch(/^57P01 terminating connection/);
      expect((await bystander.client.query<{ two: number }>('SELECT 2 AS two')).rows[0].two).toBe(2);
      await bystander.client.end();
      const audit = await h.gateway.audit.query({ kind: 'session.terminated', actor: target.user.name, limit: 10 });
      expect(audit).toHaveLength(1);
    });
  }
});
