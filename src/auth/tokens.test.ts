import { createHash } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { ulid } from 'ulid';
import { AppError } from '../core/app-error.js';
import { toTimestamp } from '../state/index.js';
import type { Database, Role } from '../state/index.js';
import type { Kysely } from 'kysely';
import { stateTestDialects } from '../state/dialects.conformance.js';
import { TOKEN_PREFIX, VERIFICATION_CACHE_TTL_MS, createToken, revokeToken, verifyToken } from './index.js';

const dialects = stateTestDialects();
const sha256 = (s: string): string => createHash('sha256').update(s).digest('hex');

async function addUser(db: Kysely<Database>, name: string, role: Role = 'member'): Promise<string> {
  const id = ulid();
  await db.insertInto('users').values({ id, name, role, created_at: toTimestamp(Date.now()) }).execute();
  return id;
}

async function revokeBehindCache(db: Kysely<Database>, tokenId: string): Promise<void> {
  await db
    .updateTable('api_tokens')
    .set({ revoked_at: toTimestamp(Date.now()) })
    .where('id', '=', tokenId)
    .execute();
}

/** Flips the last character to another base62 character: same shape, different token. */
const tamper = (token: string): string => token.slice(0, -1) + (token.endsWith('a') ? 'b' : 'a');

async function expectAppError(p: Promise<unknown>, code: string): Promise<void> {
  const err: unknown = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(AppError);
  expect((err as AppError).code).toBe(code);
}

describe.each(dialects.names)('tokens on %s', (dialect) => {
  beforeAll(() => dialects.start(dialect));
  afterAll(() => dialects.stop());
  afterEach(() => {
    vi.useRealTimers();
  });

  it('issues tl_ tokens and stores only their hash and display prefix', async () => {
    const { db } = await dialects.open(dialect);
    const userId = await addUser(db, 'alice');
    const a = await createToken(db, { userId, name: 'laptop', scopes: ['read', 'write'] });
    const b = await createToken(db, { userId, name: 'ci' });
    expect(a.token).toMatch(new RegExp(`^${TOKEN_PREFIX}[0-9A-Za-z]{43}$`));
    expect(a.token).not.toBe(b.token);

    const row = await db
      .selectFrom('api_tokens')
      .selectAll()
      .where('id', '=', a.id)
      .executeTakeFirstOrThrow();
    expect(row.token_hash).toBe(sha256(a.token));
    expect(row.prefix).toBe(a.token.slice(0, 9));
    expect(row.scopes).toBe('read write');
    expect(Object.values(row)).not.toContain(a.token);
    const other = await db.selectFrom('api_tokens').select('scopes').where('id', '=', b.id).execute();
    expect(other).toEqual([{ scopes: '*' }]);
  });

  it('accepts the right token and rejects wrong or malformed ones', async () => {
    const { db } = await dialects.open(dialect);
    const userId = await addUser(db, 'bob', 'viewer');
    const { token, id } = await createToken(db, { userId, name: 't', scopes: ['read'] });

    expect(await verifyToken(db, token)).toEqual({
      userId,
      userName: 'bob',
      role: 'viewer',
      tokenId: id,
      scopes: ['read'],
    });
    const wrongs = [tamper(token), `${token}x`, token.slice(0, -1), '', 'tl_', `Bearer ${token}`];
    for (const wrong of [...wrongs, token.toLowerCase()]) {
      expect(await verifyToken(db, wrong), wrong).toBeNull();
    }
  });

  it('rejects a revoked token; revoking twice reports false; unknown ids are not_found', async () => {
    const { db } = await dialects.open(dialect);
    const userId = await addUser(db, 'carol');
    const { token, id } = await createToken(db, { userId, name: 't' });
    expect(await revokeToken(db, id)).toBe(true);
    expect(await verifyToken(db, token)).toBeNull();
    expect(await revokeToken(db, id)).toBe(false);
    await expectAppError(revokeToken(db, ulid()), 'not_found');
  });

  it('rejects an expired token, and a cached verification never outlives the expiry', async () => {
    const { db } = await dialects.open(dialect);
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(Date.UTC(2030, 0, 1));
    const userId = await addUser(db, 'dave');
    const expiresAt = new Date(Date.now() + 5_000);
    const { token } = await createToken(db, { userId, name: 't', expiresAt });
    expect(await verifyToken(db, token)).not.toBeNull(); // now cached
    vi.setSystemTime(Date.now() + 5_000);
    expect(await verifyToken(db, token)).toBeNull();
  });

  it('validates input with typed errors', async () => {
    const { db } = await dialects.open(dialect);
    const userId = await addUser(db, 'erin');
    await expectAppError(createToken(db, { userId: ulid(), name: 't' }), 'not_found');
    await expectAppError(createToken(db, { userId, name: '  ' }), 'bad_request');
    await expectAppError(createToken(db, { userId, name: 't', scopes: [] }), 'bad_request');
    await expectAppError(createToken(db, { userId, name: 't', scopes: ['has space'] }), 'bad_request');
    for (const expiresAt of [new Date(Date.now() - 1), new Date(NaN)]) {
      await expectAppError(createToken(db, { userId, name: 't', expiresAt }), 'bad_request');
    }
  });

  it('serves repeat verifications from the cache, and revokeToken clears the entry', async () => {
    const { db } = await dialects.open(dialect);
    const userId = await addUser(db, 'frank');
    const { token, id } = await createToken(db, { userId, name: 't' });
    expect(await verifyToken(db, token)).not.toBeNull();

    // Revoke behind the cache's back: the cached success is still served…
    await revokeBehindCache(db, id);
    expect(await verifyToken(db, token)).not.toBeNull();
    // …whereas revokeToken invalidates it at once.
    await revokeToken(db, id);
    expect(await verifyToken(db, token)).toBeNull();
  });

  it('re-reads the database once the cache entry is older than the TTL', async () => {
    const { db } = await dialects.open(dialect);
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(Date.UTC(2030, 0, 1));
    const userId = await addUser(db, 'grace');
    const { token, id } = await createToken(db, { userId, name: 't' });
    expect(await verifyToken(db, token)).not.toBeNull();
    await revokeBehindCache(db, id);
    vi.setSystemTime(Date.now() + VERIFICATION_CACHE_TTL_MS);
    expect(await verifyToken(db, token)).toBeNull();
  });

  it('writes last_used_at at most once a minute', async () => {
    const { db } = await dialects.open(dialect);
    vi.useFakeTimers({ toFake: ['Date'] });
    const t0 = Date.UTC(2030, 0, 1);
    vi.setSystemTime(t0);
    const userId = await addUser(db, 'heidi');
    const { token, id } = await createToken(db, { userId, name: 't' });
    const lastUsed = async (): Promise<string | null> => {
      const q = db.selectFrom('api_tokens').select('last_used_at').where('id', '=', id);
      return (await q.executeTakeFirstOrThrow()).last_used_at;
    };

    expect(await lastUsed()).toBeNull();
    await verifyToken(db, token);
    expect(await lastUsed()).toBe(toTimestamp(t0));

    // Past the cache TTL, so the database is read again, but within the minute: no write.
    vi.setSystemTime(t0 + 30_000);
    expect(await verifyToken(db, token)).not.toBeNull();
    expect(await lastUsed()).toBe(toTimestamp(t0));

    vi.setSystemTime(t0 + 61_000);
    expect(await verifyToken(db, token)).not.toBeNull();
    expect(await lastUsed()).toBe(toTimestamp(t0 + 61_000));
  });

  it('tokens of a deleted user stop working (cascade)', async () => {
    const { db } = await dialects.open(dialect);
    const userId = await addUser(db, 'ivan');
    const { token } = await createToken(db, { userId, name: 't' });
    await db.deleteFrom('users').where('id', '=', userId).execute();
    expect(await verifyToken(db, token)).toBeNull();
  });
});
