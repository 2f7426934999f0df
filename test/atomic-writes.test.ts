import { sql, type Kysely } from 'kysely';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { DeployService } from '../src/deploys/service.js';
import { deploysDb, deploysMigrations } from '../src/deploys/storage.js';
import { DetectEvents, type AlertEvent } from '../src/detect/index.js';
import { IncidentService } from '../src/incidents/service.js';
import { incidentsDb, incidentsMigrations } from '../src/incidents/storage.js';
import { describeEachStateDialect, stateTestDialects } from '../src/state/dialects.conformance.js';
import type { Database, StateDialectName } from '../src/state/index.js';

/**
 * Writes that belong together commit together (issue 21.3), on both state dialects. A trigger
 * makes one statement of a logical write fail — after the statements before it ran — and the
 * write must leave nothing half-done: neither an incident acknowledged without its timeline
 * entry, nor an incident opened without its alert, nor a verification a deploy does not point
 * at, nor a deploy marked rolled back with its verification still running.
 */

const T0 = Date.parse('2026-11-26T10:00:00.000Z');

/** Makes every `op` on `table` fail (a real statement error from the database), until undone. */
async function injectFailure(db: Kysely<Database>, dialect: StateDialectName, table: string, op: 'INSERT' | 'UPDATE'): Promise<() => Promise<void>> {
  const name = sql.raw(`fail_${table}_${op.toLowerCase()}`);
  if (dialect === 'sqlite') {
    await sql`CREATE TRIGGER ${name} BEFORE ${sql.raw(op)} ON ${sql.table(table)} BEGIN SELECT RAISE(ABORT, 'injected failure'); END`.execute(db);
    return async () => { await sql`DROP TRIGGER ${name}`.execute(db); };
  }
  await sql`CREATE OR REPLACE FUNCTION fail_injected() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'injected failure'; END $$`.execute(db);
  await sql`CREATE TRIGGER ${name} BEFORE ${sql.raw(op)} ON ${sql.table(table)} FOR EACH ROW EXECUTE FUNCTION fail_injected()`.execute(db);
  return async () => { await sql`DROP TRIGGER ${name} ON ${sql.table(table)}`.execute(db); };
}

function alert(id: string, firedMs: number): AlertEvent {
  const series = { service: 'checkout', environment: 'prod' };
  return {
    at: new Date(firedMs).toISOString(),
    alert: {
      id, status: 'firing', rule: { id: 'file:errors', name: 'errors', type: 'threshold' }, series, labels: { ...series, alertname: 'errors' },
      value: 0.5, values: {}, threshold: { signal: 'error_rate', threshold: 0.2 }, startsAt: new Date(firedMs).toISOString(), endsAt: null,
      links: { console: '', traces: '' },
    },
  };
}

const flat = { red: () => Promise.resolve([]), searchTraces: () => Promise.resolve([]) };

describeEachStateDialect('writes that belong together', (dialect) => {
  const dialects = stateTestDialects();
  beforeAll(() => dialects.start(dialect));
  afterAll(() => dialects.stop());

  it('incidents: a failed timeline write undoes the acknowledgement and the incident it would have opened', async () => {
    const store = await dialects.open(dialect, { migrations: { ...incidentsMigrations } });
    const events = new DetectEvents();
    const warnings: string[] = [];
    const svc = new IncidentService({ db: store.db, telemetry: flat, detectEvents: events, nowMs: () => T0, log: { warn: (_o, msg) => warnings.push(msg) } });
    svc.start();
    events.emit('alert.fired', alert('a1', T0));
    await svc.idle();
    const [inc] = await svc.list();
    expect(inc.status).toBe('open');

    const undo = await injectFailure(store.db, dialect, 'incident_events', 'INSERT');
    await expect(svc.acknowledge(inc.id, 'ann')).rejects.toThrow(/injected failure/);
    // Not acknowledged: the row's update was rolled back with the failed timeline entry.
    expect(await svc.get(inc.id)).toMatchObject({ status: 'open', acknowledgedAt: null, acknowledgedBy: null });
    await expect(svc.assign(inc.id, 'bob', 'ann')).rejects.toThrow(/injected failure/);
    expect((await svc.get(inc.id)).assignee).toBeNull();
    await expect(svc.resolve(inc.id, 'ann')).rejects.toThrow(/injected failure/);
    expect((await svc.get(inc.id)).status).toBe('open');

    // An alert of another service: no incident, no alert row without its timeline entry.
    const other = alert('b1', T0);
    other.alert.series = { service: 'cart', environment: 'prod' };
    events.emit('alert.fired', other);
    await svc.idle();
    expect(warnings).toContain('incidents: alert.fired failed');
    const db = incidentsDb(store.db);
    expect(await db.selectFrom('incidents').select('id').where('service', '=', 'cart').execute()).toEqual([]);
    expect(await db.selectFrom('incident_alerts').select('alert_id').where('alert_id', '=', 'b1').execute()).toEqual([]);

    await undo();
    expect((await svc.acknowledge(inc.id, 'ann')).status).toBe('acknowledged');
    expect((await svc.events(inc.id)).map((e) => e.kind)).toEqual(['alert.fired', 'acknowledged']);
    await svc.stop();
  });

  it('deploys: a verification is stored with the deploy pointing at it, or not at all', async () => {
    const store = await dialects.open(dialect, { migrations: { ...deploysMigrations } });
    const deploys = new DeployService({ db: store.db, source: { onCommittedRollups: () => () => undefined }, tickMs: 0, nowMs: () => T0 });
    const d = await deploys.record({ service: 'checkout', version: '2.0.0', environment: 'prod', verify: false });
    const db = deploysDb(store.db);

    const undo = await injectFailure(store.db, dialect, 'deploys', 'UPDATE');
    await expect(deploys.startVerification(d, 60)).rejects.toThrow(/injected failure/);
    expect(await db.selectFrom('deploy_verifications').select('id').where('deploy_id', '=', d.id).execute()).toEqual([]);
    expect(await deploys.get(d.id)).toMatchObject({ status: 'started', verificationId: null });
    await undo();

    const v = await deploys.startVerification(d, 60);
    expect(await deploys.get(d.id)).toMatchObject({ status: 'verifying', verificationId: v.id });
    const fix = await deploys.record({ service: 'checkout', version: '1.0.0', environment: 'prod', verify: false });

    // Rolled back before a verdict: the status and the stopped verification go together.
    const undo2 = await injectFailure(store.db, dialect, 'deploy_verifications', 'UPDATE');
    await expect(deploys.markRolledBack(d.id, fix.id)).rejects.toThrow(/injected failure/);
    expect((await deploys.get(d.id)).status).toBe('verifying');
    await undo2();
    await deploys.stop();
  });
});
