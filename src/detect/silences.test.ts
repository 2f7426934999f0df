import type { Kysely } from 'kysely';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { patternCompilations } from '../core/pattern.js';
import { describeEachStateDialect, stateTestDialects } from '../state/dialects.conformance.js';
import { SILENCE_RETENTION_MS, SilenceBook } from './silences.js';
import { detectDb, detectMigrations, type DetectDatabase } from './storage.js';

/**
 * Silences as Alertmanager keeps them (issue 21.7), on both state dialects: matchers compiled
 * once per silence, not per match; expired silences deleted after the retention period.
 */

const T0 = Date.parse('2026-11-26T10:00:00.000Z');
const HOUR = 3_600_000;

describeEachStateDialect('silences', (dialect) => {
  const dialects = stateTestDialects();
  beforeAll(() => dialects.start(dialect));
  afterAll(() => dialects.stop());

  async function book(clock: { now: number }): Promise<{ silences: SilenceBook; db: Kysely<DetectDatabase>; reopen: () => Promise<SilenceBook> }> {
    const store = await dialects.open(dialect, { migrations: { ...detectMigrations } });
    const db = detectDb(store.db);
    const silences = new SilenceBook(db, () => clock.now);
    await silences.load();
    return { silences, db, reopen: async () => { const b = new SilenceBook(db, () => clock.now); await b.load(); return b; } };
  }

  it('matching compiles no pattern: each silence compiled its matchers once, more silences than the pattern cache holds', async () => {
    const clock = { now: T0 };
    const { db, reopen } = await book(clock);
    // 600 distinct patterns: more than the 512 sources core/pattern.ts caches. Written in one
    // statement, as 600 adds would be (each add is a synced commit), then loaded.
    await db.insertInto('detect_silences').values(Array.from({ length: 600 }, (_, i) => ({
      id: `s${String(i).padStart(4, '0')}`, matchers: JSON.stringify([{ name: 'service', op: '=~', value: `svc-${i}|shop-${i}` }]),
      starts_at: new Date(T0).toISOString(), ends_at: new Date(T0 + HOUR).toISOString(), comment: '', created_by: 'test', created_at: new Date(T0).toISOString(),
    }))).execute();
    const silences = await reopen();
    await silences.add({ matchers: [{ name: 'service', op: '=~', value: 'added|by-api' }], duration: '1h' }, 'test');
    const before = patternCompilations();
    expect(silences.mutedBy({ service: 'none' })).toBeUndefined();
    expect(silences.mutedBy({ service: 'shop-599' })?.matchers[0].value).toBe('svc-599|shop-599');
    expect(silences.mutedBy({ service: 'svc-0' })?.matchers[0].value).toBe('svc-0|shop-0');
    expect(silences.mutedBy({ service: 'by-api' })?.matchers[0].value).toBe('added|by-api');
    expect(patternCompilations() - before).toBe(0);
  });

  it('an expired silence is listed for the retention period after its end, then deleted (memory and state store)', async () => {
    const clock = { now: T0 };
    const { silences, reopen } = await book(clock);
    const ended = await silences.add({ matchers: { service: 'checkout' }, duration: '1h', comment: 'deploy' }, 'test');
    const expired = await silences.add({ matchers: { service: 'cart' }, duration: '10h' }, 'test');
    await silences.expire(expired.id); // ends now, at T0
    const live = await silences.add({ matchers: { service: 'till' }, duration: `${200 * 3600}s` }, 'test');

    clock.now = T0 + HOUR + SILENCE_RETENTION_MS - 1000;
    expect(await silences.gc()).toBe(1); // the one expired at T0
    expect(silences.list(true).map((s) => s.id)).toEqual([ended.id, live.id]);
    expect((await reopen()).list(true).map((s) => s.id)).toEqual([ended.id, live.id]);

    clock.now = T0 + HOUR + SILENCE_RETENTION_MS + 1000;
    expect(await silences.gc()).toBe(1);
    expect(silences.list(true).map((s) => [s.id, s.state])).toEqual([[live.id, 'active']]);
    // Gone from the state store too: a restart (load) does not bring it back.
    expect((await reopen()).list(true).map((s) => s.id)).toEqual([live.id]);
    expect(await silences.gc()).toBe(0);
  });
});
