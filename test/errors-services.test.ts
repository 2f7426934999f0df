import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ERRORS_MIGRATIONS, type ErrorGroup } from '../src/errors/index.js';
import { GroupStore } from '../src/errors/groups.js';
import { errorsDb } from '../src/errors/tables.js';
import { openStateStore } from '../src/state/index.js';
import { testStateDialect } from '../src/state/dialects.conformance.js';
import { createTestDatabase } from '../src/state/pg-cluster.conformance.js';
import { eventually } from './helpers/server.js';
import { startErrorsServer, type ErrorsTestServer } from './helpers/errors.js';

/**
 * One error group raised by several services (a shared library): found under every service that
 * produced its events, with counts per service; groups stored before that get their services
 * from their events when the state database is migrated.
 */

let t: ErrorsTestServer;
let key = '';
beforeAll(async () => { t = await startErrorsServer(); key = new URL(t.server.defaultDsn).username; });
afterAll(async () => { await t.close(); });

async function send(service: string, n: number): Promise<void> {
  for (let i = 0; i < n; i++) {
    const ev = { message: 'shared-lib: token cache corrupted', level: 'error', fingerprint: ['shared-token-cache'],
      contexts: { otel: { resource: { 'service.name': service } } }, timestamp: Date.now() / 1000 };
    const res = await fetch(`${t.url}/api/1/store/?sentry_key=${key}`, { method: 'POST', body: JSON.stringify(ev), headers: { 'content-type': 'application/json' } });
    expect(res.status).toBe(200);
  }
}

describe('an error group raised by several services', () => {
  it('is found under each service, with counts per service', async () => {
    await send('checkout', 2);
    await send('billing', 3);
    const list = async (service: string) => (await t.api<{ groups: ErrorGroup[] }>(`/api/errors?service=${service}&q=token%20cache`)).body.groups;
    const [g] = await eventually(async () => { const gs = await list('billing'); return gs.length === 1 && gs[0].count === 5 ? gs : undefined; });
    expect((await list('checkout')).map((x) => x.id)).toEqual([g.id]);
    expect(await list('nobody')).toEqual([]);
    const detail = await t.api<{ services: Record<string, number> }>(`/api/errors/${g.id}`);
    expect(detail.body.services).toEqual({ checkout: 2, billing: 3 });
  });
});

describe('migration errors_0003_group_services', () => {
  it('fills the services of existing groups from their events', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tightloop-errmig-'));
    // The file, or a database on the test PostgreSQL in the `postgres` project (STATE_SUITES).
    const pgDb = testStateDialect() === 'postgres' ? await createTestDatabase({ migrate: false }) : undefined;
    const where = pgDb === undefined ? { dialect: 'sqlite' as const, path: join(dir, 'state.db') } : { dialect: 'postgres' as const, connectionString: pgDb.connectionString };
    try {
      const { errors_0003_group_services: _later, ...before } = ERRORS_MIGRATIONS;
      const old = await openStateStore({ ...where, migrations: before });
      const ts = new Date().toISOString();
      await sql`INSERT INTO errors_groups (id, project_id, service, title, culprit, level, grouping_version, components, first_seen, last_seen, count,
          first_release, last_release, status, latest_event_id, latest_trace_id)
        VALUES ('g1', 1, 'api', 't', 'c', 'error', 1, '[]', ${ts}, ${ts}, 3, '', '', 'unresolved', 'e', ''),
               ('g2', 1, 'web', 't', 'c', 'error', 1, '[]', ${ts}, ${ts}, 4, '', '', 'unresolved', 'e', '')`.execute(old.db);
      for (const [i, service] of ['api', 'api', 'worker'].entries()) {
        await sql`INSERT INTO errors_events (event_id, project_id, group_id, time_us, received_us, service, release, environment, level, trace_id, span_id,
            title, user_json, tags_json, request_json, source, payload_encoding, payload)
          VALUES (${`e${i}`}, 1, 'g1', 1, 1, ${service}, '', '', 'error', '', '', 't', '{}', '{}', '{}', 'sentry', 'none', ${Buffer.from('{}')})`.execute(old.db);
      }
      await old.close();
      const state = await openStateStore({ ...where, migrations: ERRORS_MIGRATIONS });
      try {
        const groups = new GroupStore(errorsDb(state.db));
        expect((await groups.counts('g1')).services).toEqual({ api: 2, worker: 1 });
        expect((await groups.counts('g2')).services).toEqual({ web: 4 });
        expect((await groups.list({ service: 'worker', limit: 10 })).map((g) => g.id)).toEqual(['g1']);
      } finally {
        await state.close();
      }
    } finally {
      await pgDb?.drop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
