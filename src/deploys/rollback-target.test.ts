import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ulid } from 'ulid';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StateStore } from '../state/index.js';
import { openTestStateStore } from '../state/dialects.conformance.js';
import { DeployService } from './service.js';
import { deploysDb, type DeploysTable } from './storage.js';
import { deploysMigrations } from './storage.js';

/**
 * DeployService.rollbackTarget on the real SQLite state store: which earlier version a rollback
 * may restore. Rows are written directly (statuses a verification would have set), so each rule
 * is checked on its own.
 */

let dir: string;
let state: StateStore;
let deploys: DeployService;
let t = Date.parse('2026-01-01T00:00:00Z');

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tightloop-rollback-target-'));
  state = await openTestStateStore({ path: join(dir, 'state.db'), migrations: deploysMigrations });
  deploys = new DeployService({ db: state.db, source: { onCommittedRollups: () => () => undefined }, tickMs: 0 });
});

afterAll(async () => {
  await state.close();
  rmSync(dir, { recursive: true, force: true });
});

async function row(service: string, version: string, status: string, source: string, finished = false): Promise<DeploysTable> {
  t += 60_000;
  const at = new Date(t).toISOString();
  const r: DeploysTable = {
    id: ulid(), service, version, environment: 'production', previous_version: null, status, source, commit_sha: null, commit_time: null,
    url: null, actor: null, rollback_of: null, started_at: at, finished_at: finished ? at : null, decided_at: null, verification_id: null, updated_at: at,
  };
  await deploysDb(state.db).insertInto('deploys').values(r).execute();
  return r;
}

const target = (r: DeploysTable): Promise<string | null> =>
  deploys.rollbackTarget({ id: r.id, service: r.service, environment: r.environment, version: r.version, startedAt: r.started_at });

describe('rollback target', () => {
  it('is the latest earlier explicit version whose verification passed', async () => {
    await row('a', '1', 'passed', 'cli');
    await row('a', '2', 'passed', 'api');
    const bad = await row('a', '3', 'failed', 'api');
    expect(await target(bad)).toBe('2');
  });

  it('skips versions known only from telemetry, even when they passed', async () => {
    await row('b', '1', 'passed', 'api');
    await row('b', 'evil', 'passed', 'implicit');
    const bad = await row('b', '2', 'failed', 'api');
    expect(await target(bad)).toBe('1');
  });

  it('skips failed, rolled back, still verifying and unverified versions, and the bad version itself', async () => {
    await row('c', '1', 'passed', 'api');
    await row('c', '2', 'failed', 'api');
    await row('c', '3', 'rolled_back', 'rollout');
    await row('c', '4', 'verifying', 'api');
    await row('c', '5', 'started', 'cli');
    await row('c', '6', 'inconclusive', 'api');
    await row('c', '7', 'passed', 'api');
    const bad = await row('c', '7', 'failed', 'api');
    expect(await target(bad)).toBe('1');
  });

  it('counts a rollout or rollback tightloop finished without a failed verdict; not one after the bad deploy', async () => {
    await row('d', '1', 'passed', 'api');
    await row('d', '2', 'inconclusive', 'rollout', true);
    await row('d', '2.5', 'inconclusive', 'rollout'); // held: stopped at a step, never finished
    const bad = await row('d', '3', 'failed', 'api');
    await row('d', '4', 'passed', 'api');
    expect(await target(bad)).toBe('2');
  });

  it('is null when nothing was seen serving healthily, and never crosses services or environments', async () => {
    await row('e', '1', 'inconclusive', 'implicit');
    await row('f', '1', 'passed', 'api');
    const bad = await row('e', '2', 'failed', 'api');
    expect(await target(bad)).toBeNull();
  });
});
