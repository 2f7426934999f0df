import type { Kysely } from 'kysely';
import { ulid } from 'ulid';
import { badRequest, conflict, notFound } from '../core/app-error.js';
import { ROLES, toTimestamp } from '../state/index.js';
import type { Database, Role } from '../state/index.js';
import { clearTokenCache, createToken } from './tokens.js';

/**
 * People and their API tokens, as the API and the CLI show them. The plaintext of a token
 * leaves this module only in the answer to the call that created it; listings carry the
 * display prefix (`tl_abc123`), never the hash.
 */

/**
 * A user name is also the PostgreSQL user name clients give the gateway, so it keeps to what
 * works unquoted in a connection string: a letter first, then letters, digits, `.`, `_`, `-`;
 * at most 63 characters (PostgreSQL's NAMEDATALEN - 1).
 */
export const USER_NAME_PATTERN = /^[a-z][a-z0-9._-]{0,62}$/i;

export interface UserInfo {
  id: string;
  name: string;
  role: Role;
  createdAt: string;
}

export interface CreatedUser extends UserInfo {
  /** The user's first API token, shown once. */
  token: string;
  tokenId: string;
}

export interface TokenInfo {
  id: string;
  userId: string;
  name: string;
  /** The first characters of the token, to tell tokens apart. */
  prefix: string;
  scopes: string[];
  createdAt: string;
  expiresAt: string | null;
  lastUsedAt: string | null;
  revokedAt: string | null;
}

function isRole(role: string): role is Role {
  return (ROLES as readonly string[]).includes(role);
}

/** Throws `bad_request` unless `name` can be a tightloop (and gateway) user name. */
export function validateUserName(name: string): void {
  if (!USER_NAME_PATTERN.test(name)) {
    throw badRequest(`invalid user name '${name}': a letter, then up to 62 letters, digits, '.', '_' or '-'`);
  }
}

/** Unique-constraint violations of SQLite (better-sqlite3) and PostgreSQL (SQLSTATE 23505). */
function isUniqueViolation(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return code === 'SQLITE_CONSTRAINT_UNIQUE' || code === '23505';
}

const userInfo = (r: { id: string; name: string; role: Role; created_at: string }): UserInfo =>
  ({ id: r.id, name: r.name, role: r.role, createdAt: r.created_at });

export async function listUsers(db: Kysely<Database>): Promise<UserInfo[]> {
  const rows = await db.selectFrom('users').select(['id', 'name', 'role', 'created_at']).orderBy('name').execute();
  return rows.map(userInfo);
}

/**
 * A user by id or, failing that, by name; `not_found` if neither matches. The id wins: a name
 * that happens to look like someone else's id never shadows them.
 */
export async function findUser(db: Kysely<Database>, idOrName: string): Promise<UserInfo> {
  const cols = ['id', 'name', 'role', 'created_at'] as const;
  const row =
    (await db.selectFrom('users').select(cols).where('id', '=', idOrName).executeTakeFirst()) ??
    (await db.selectFrom('users').select(cols).where('name', '=', idOrName).executeTakeFirst());
  if (row === undefined) throw notFound(`user ${idOrName} not found`);
  return userInfo(row);
}

/**
 * Creates a user and their first token in one transaction, so a user never exists without a
 * way to log in. `conflict` if the name is taken (names are unique, case-sensitively, as
 * PostgreSQL user names are).
 */
export async function createUser(
  db: Kysely<Database>,
  input: { name: string; role: string; tokenName?: string },
): Promise<CreatedUser> {
  validateUserName(input.name);
  if (!isRole(input.role)) throw badRequest(`invalid role '${input.role}': one of ${ROLES.join(', ')}`);
  const role = input.role;
  const taken = await db.selectFrom('users').select('id').where('name', '=', input.name).executeTakeFirst();
  if (taken !== undefined) throw conflict(`user ${input.name} already exists`);

  const id = ulid();
  const createdAt = toTimestamp(Date.now());
  try {
    return await db.transaction().execute(async (trx) => {
      await trx.insertInto('users').values({ id, name: input.name, role, created_at: createdAt }).execute();
      const t = await createToken(trx, { userId: id, name: input.tokenName ?? 'personal token' });
      return { id, name: input.name, role, createdAt, token: t.token, tokenId: t.id };
    });
  } catch (err) {
    // Two creations of one name at once: the loser hits the unique index.
    if (isUniqueViolation(err)) throw conflict(`user ${input.name} already exists`);
    throw err;
  }
}

/**
 * Deletes a user; their tokens go with them (api_tokens.user_id cascades). The verification
 * cache is cleared, so their tokens stop working at once on this node.
 */
export async function deleteUser(db: Kysely<Database>, userId: string): Promise<UserInfo> {
  const row = await db.selectFrom('users').select(['id', 'name', 'role', 'created_at']).where('id', '=', userId).executeTakeFirst();
  if (row === undefined) throw notFound(`user ${userId} not found`);
  await db.deleteFrom('users').where('id', '=', userId).execute();
  clearTokenCache(db);
  return userInfo(row);
}

/**
 * Gives a user another role. Their tokens carry the new role from the next request on (the
 * verification cache is cleared). `conflict` when it would leave no admin: nobody could manage
 * users any more.
 */
export async function setUserRole(db: Kysely<Database>, userId: string, role: string): Promise<{ before: UserInfo; after: UserInfo }> {
  if (!isRole(role)) throw badRequest(`invalid role '${role}': one of ${ROLES.join(', ')}`);
  return db.transaction().execute(async (trx) => {
    const row = await trx.selectFrom('users').select(['id', 'name', 'role', 'created_at']).where('id', '=', userId).executeTakeFirst();
    if (row === undefined) throw notFound(`user ${userId} not found`);
    const before = userInfo(row);
    if (before.role === 'admin' && role !== 'admin') {
      const admins = await trx.selectFrom('users').select((eb) => eb.fn.countAll<number>().as('n')).where('role', '=', 'admin').executeTakeFirstOrThrow();
      if (Number(admins.n) <= 1) throw conflict(`${before.name} is the only admin: make another user admin first`);
    }
    await trx.updateTable('users').set({ role }).where('id', '=', userId).execute();
    clearTokenCache(db);
    return { before, after: { ...before, role } };
  });
}

const TOKEN_COLUMNS = ['id', 'user_id', 'name', 'prefix', 'scopes', 'created_at', 'expires_at', 'last_used_at', 'revoked_at'] as const;

function tokenInfo(r: {
  id: string; user_id: string; name: string; prefix: string; scopes: string;
  created_at: string; expires_at: string | null; last_used_at: string | null; revoked_at: string | null;
}): TokenInfo {
  return {
    id: r.id,
    userId: r.user_id,
    name: r.name,
    prefix: r.prefix,
    scopes: r.scopes.split(' ').filter((s) => s.length > 0),
    createdAt: r.created_at,
    expiresAt: r.expires_at,
    lastUsedAt: r.last_used_at,
    revokedAt: r.revoked_at,
  };
}

/** A user's tokens, newest first; revoked ones only when asked. */
export async function listTokens(
  db: Kysely<Database>,
  userId: string,
  opts: { includeRevoked?: boolean } = {},
): Promise<TokenInfo[]> {
  let q = db.selectFrom('api_tokens').select(TOKEN_COLUMNS).where('user_id', '=', userId);
  if (opts.includeRevoked !== true) q = q.where('revoked_at', 'is', null);
  return (await q.orderBy('id', 'desc').execute()).map(tokenInfo);
}

/** One token's public fields; `not_found` for an unknown id. */
export async function getToken(db: Kysely<Database>, tokenId: string): Promise<TokenInfo> {
  const row = await db.selectFrom('api_tokens').select(TOKEN_COLUMNS).where('id', '=', tokenId).executeTakeFirst();
  if (row === undefined) throw notFound(`token ${tokenId} not found`);
  return tokenInfo(row);
}
