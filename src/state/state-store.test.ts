import Database from 'better-sqlite3';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ulid } from 'ulid';
import { MIGRATION_NAMES, migrateToLatest, openStateStore, toTimestamp } from './index.js';
import type { NewUser } from './index.js';
import { stateTestDialects } from './dialects.conformance.js';

const dialects = stateTestDialects();

const newUser = (name: string, role: NewUser['role'] = 'member'): NewUser => ({
  id: ulid(),
  name,
  role,
  created_at: toTimestamp(Date.now()),
});

describe.each(dialects.names)('state store on %s', (dialect) => {
  beforeAll(() => dialects.start(dialect));
  afterAll(() => dialects.stop());

  it('migrates a fresh database to the latest schema', async () => {
    const store = await dialects.open(dialect, { migrate: false });
    expect(await migrateToLatest(store.db)).toEqual(MIGRATION_NAMES);
    const tables = (await store.db.introspection.getTables()).map((t) => t.name);
    expect(tables).toEqual(expect.arrayContaining(['users', 'api_tokens', 'meta']));
  });

  it('running migrations again is a no-op', async () => {
    const store = await dialects.open(dialect); // already migrated by open()
    await store.db.insertInto('users').values(newUser('keeps')).execute();
    expect(await migrateToLatest(store.db)).toEqual([]);
    expect(await migrateToLatest(store.db)).toEqual([]);
    const rows = await store.db.selectFrom('users').select('name').execute();
    expect(rows).toEqual([{ name: 'keeps' }]);
  });

  it('enforces unique user names and the role check', async () => {
    const { db } = await dialects.open(dialect);
    await db.insertInto('users').values(newUser('alice')).execute();
    await expect(db.insertInto('users').values(newUser('alice')).execute()).rejects.toThrow();
    await expect(
      db
        .insertInto('users')
        .values({ ...newUser('bob'), role: 'root' as NewUser['role'] })
        .execute(),
    ).rejects.toThrow();
  });

  it('enforces the token → user foreign key and cascades deletes', async () => {
    const { db } = await dialects.open(dialect);
    const token = (userId: string, hash: string) => ({
      id: ulid(),
      user_id: userId,
      name: 't',
      token_hash: hash,
      prefix: 'tl_x',
      scopes: '*',
      created_at: toTimestamp(Date.now()),
    });
    await expect(db.insertInto('api_tokens').values(token(ulid(), 'aa')).execute()).rejects.toThrow();

    const user = newUser('carol');
    await db.insertInto('users').values(user).execute();
    await db.insertInto('api_tokens').values(token(user.id, 'bb')).execute();
    await expect(db.insertInto('api_tokens').values(token(user.id, 'bb')).execute()).rejects.toThrow();

    await db.deleteFrom('users').where('id', '=', user.id).execute();
    const left = await db.selectFrom('api_tokens').select('id').execute();
    expect(left).toEqual([]);
  });

  it('reads back nullable timestamps as null and set ones as the same text', async () => {
    const { db } = await dialects.open(dialect);
    const user = newUser('dave');
    await db.insertInto('users').values(user).execute();
    const expires = toTimestamp(Date.UTC(2031, 0, 2, 3, 4, 5, 6));
    await db
      .insertInto('api_tokens')
      .values({
        id: ulid(),
        user_id: user.id,
        name: 'n',
        token_hash: 'cc',
        prefix: 'tl_y',
        scopes: 'a b',
        created_at: user.created_at,
        expires_at: expires,
      })
      .execute();
    const row = await db.selectFrom('api_tokens').selectAll().executeTakeFirstOrThrow();
    expect(row.expires_at).toBe(expires);
    expect(row.last_used_at).toBeNull();
    expect(row.revoked_at).toBeNull();
  });
});

describe('sqlite specifics', () => {
  afterAll(() => dialects.stop());

  it('opens with WAL, synchronous=FULL, foreign keys, a busy timeout and the shared checkpoint limit', async () => {
    const { db } = await dialects.open('sqlite');
    const pragma = async (name: string): Promise<unknown> => {
      const query = sql<Record<string, unknown>>`select * from ${sql.raw(`pragma_${name}`)}`;
      const { rows } = await query.execute(db);
      return Object.values(rows[0] ?? {})[0];
    };
    expect(await pragma('journal_mode')).toBe('wal');
    expect(await pragma('synchronous')).toBe(2); // FULL
    expect(await pragma('foreign_keys')).toBe(1);
    expect(await pragma('busy_timeout')).toBe(5000);
    // As the errors commit worker's connection (not a table-valued pragma: the statement form).
    expect((await sql<{ wal_autocheckpoint: number }>`pragma wal_autocheckpoint`.execute(db)).rows[0]?.wal_autocheckpoint).toBe(4000);
  });

  it('a transaction holds the write lock from its start: one that reads, then writes, never fails on another writer', async () => {
    const { db, sqlitePath } = await dialects.open('sqlite');
    const other = new Database(sqlitePath ?? '', { timeout: 0 });
    try {
      await db.transaction().execute(async (trx) => {
        await trx.selectFrom('meta').selectAll().execute();
        // Another connection (the errors commit worker, the audit writer) writes meanwhile: it
        // must wait for this transaction (here: fail at once, its busy timeout is 0) …
        expect(() => other.prepare("insert into meta (key, value) values ('other', 'x')").run()).toThrow(/locked|busy/i);
        // … and this transaction's own write, after its read, then goes through.
        await trx.insertInto('meta').values({ key: 'mine', value: 'y' }).execute();
      });
      expect((await db.selectFrom('meta').select('key').where('key', 'in', ['mine', 'other']).execute()).map((r) => r.key)).toEqual(['mine']);
    } finally {
      other.close();
    }
  });

  it('keeps data across close and reopen of the same file', async () => {
    const first = await dialects.open('sqlite');
    const path = first.sqlitePath ?? '';
    await first.db.insertInto('meta').values({ key: 'k', value: 'v' }).execute();
    await first.close();
    await first.close(); // idempotent

    const again = await openStateStore({ dialect: 'sqlite', path });
    try {
      const row = await again.db.selectFrom('meta').selectAll().executeTakeFirst();
      expect(row).toEqual({ key: 'k', value: 'v' });
    } finally {
      await again.close();
    }
  });
});
