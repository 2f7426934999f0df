import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AppError } from '../core/app-error.js';
import { stateTestDialects } from '../state/dialects.conformance.js';
import { parseDuration } from '../core/duration.js';
import { createToken, createUser, deleteUser, findUser, getToken, listTokens, listUsers, revokeToken, verifyToken } from './index.js';

const dialects = stateTestDialects();

async function codeOf(p: Promise<unknown>): Promise<string | undefined> {
  const err: unknown = await p.then(() => undefined, (e: unknown) => e);
  if (err === undefined) return undefined;
  expect(err).toBeInstanceOf(AppError);
  return (err as AppError).code;
}

describe.each(dialects.names)('users on %s', (dialect) => {
  beforeAll(() => dialects.start(dialect));
  afterAll(() => dialects.stop());

  it('creates a user with a working first token; names are unique, even under a race', async () => {
    const { db } = await dialects.open(dialect);
    const alice = await createUser(db, { name: 'alice', role: 'member' });
    expect(await verifyToken(db, alice.token)).toMatchObject({ userId: alice.id, userName: 'alice', role: 'member', tokenId: alice.tokenId });
    expect(await codeOf(createUser(db, { name: 'alice', role: 'viewer' }))).toBe('conflict');

    const race = await Promise.allSettled([1, 2, 3].map(() => createUser(db, { name: 'bob', role: 'member' })));
    expect(race.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    for (const r of race) if (r.status === 'rejected') expect((r.reason as AppError).code).toBe('conflict');
    expect((await listUsers(db)).map((u) => u.name)).toEqual(['alice', 'bob']);
    // A refused creation leaves no token behind.
    expect(await db.selectFrom('api_tokens').select('id').execute()).toHaveLength(2);
  });

  it('validates names and roles', async () => {
    const { db } = await dialects.open(dialect);
    for (const name of ['', '9lives', 'a b', "o'neil", 'x'.repeat(64), 'é']) {
      expect(await codeOf(createUser(db, { name, role: 'member' })), name).toBe('bad_request');
    }
    expect(await codeOf(createUser(db, { name: 'ok', role: 'root' }))).toBe('bad_request');
    expect(await codeOf(createUser(db, { name: 'Ops.Bot_1-x', role: 'viewer' }))).toBeUndefined();
    expect(await listUsers(db)).toHaveLength(1);
  });

  it('finds by id before name, and deleting drops the tokens at once despite the cache', async () => {
    const { db } = await dialects.open(dialect);
    const carol = await createUser(db, { name: 'carol', role: 'member' });
    expect((await findUser(db, carol.id)).name).toBe('carol');
    expect((await findUser(db, 'carol')).id).toBe(carol.id);
    // A user whose name is carol's id is found by name only when no id matches.
    const twin = await createUser(db, { name: `X${carol.id.slice(1)}`, role: 'viewer' });
    expect((await findUser(db, twin.name)).id).toBe(twin.id);

    const extra = await createToken(db, { userId: carol.id, name: 'laptop' });
    expect(await verifyToken(db, extra.token)).not.toBeNull(); // now cached
    expect(await deleteUser(db, carol.id)).toMatchObject({ id: carol.id, name: 'carol' });
    expect(await verifyToken(db, extra.token)).toBeNull();
    expect(await verifyToken(db, carol.token)).toBeNull();
    expect(await listTokens(db, carol.id, { includeRevoked: true })).toEqual([]);
    expect(await codeOf(deleteUser(db, carol.id))).toBe('not_found');
    expect(await codeOf(findUser(db, 'carol'))).toBe('not_found');
  });

  it('lists tokens without secrets, revoked ones only when asked', async () => {
    const { db } = await dialects.open(dialect);
    const dan = await createUser(db, { name: 'dan', role: 'member', tokenName: 'first' });
    const later = await createToken(db, { userId: dan.id, name: 'second', expiresAt: new Date(Date.now() + 3_600_000) });
    await revokeToken(db, dan.tokenId);
    const live = await listTokens(db, dan.id);
    expect(live.map((t) => t.name)).toEqual(['second']);
    expect(live[0]).toMatchObject({ id: later.id, userId: dan.id, prefix: later.token.slice(0, 9), scopes: ['*'], revokedAt: null, lastUsedAt: null });
    expect(Object.keys(live[0])).not.toContain('tokenHash');
    expect((await listTokens(db, dan.id, { includeRevoked: true })).map((t) => t.name).sort()).toEqual(['first', 'second']);
    expect((await getToken(db, dan.tokenId)).revokedAt).not.toBeNull();
    expect(await codeOf(getToken(db, 'nope'))).toBe('not_found');
  });
});

describe('parseDuration (core)', () => {
  it('reads seconds and s/m/h/d/w, and nothing else', () => {
    expect(['90', '90s', '30m', '12h', '30d', '4w', ' 2D '].map(parseDuration)).toEqual([90, 90, 1800, 43_200, 2_592_000, 2_419_200, 172_800]);
    expect(['', '0', '0d', '-1h', '1.5h', 'soon', '1y', '9'.repeat(20)].map(parseDuration)).toEqual(Array(8).fill(undefined));
  });
});
