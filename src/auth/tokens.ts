import { timingSafeEqual } from 'node:crypto';
import type { Kysely } from 'kysely';
import { ulid } from 'ulid';
import { badRequest, notFound } from '../core/app-error.js';
import { toTimestamp } from '../state/index.js';
import type { Database } from '../state/index.js';
import { displayPrefix, generateToken, hashToken, isWellFormedToken } from './token-format.js';
import { VERIFICATION_CACHE_TTL_MS, VerificationCache } from './verification-cache.js';
import type { VerifiedToken } from './verification-cache.js';

/** Scope every token gets unless told otherwise: whatever the user's role allows. */
export const DEFAULT_SCOPES: readonly string[] = ['*'];
const SCOPE_PATTERN = /^[A-Za-z0-9:._*-]{1,64}$/;
const MAX_SCOPES = 32;
const MAX_NAME_LENGTH = 100;
/** last_used_at is for humans ("used 3 min ago"); minute resolution spares a write per request. */
const LAST_USED_RESOLUTION_MS = 60_000;

export interface CreateTokenInput {
  userId: string;
  name: string;
  scopes?: readonly string[];
  expiresAt?: Date;
}

export interface CreatedToken {
  /** The plaintext token. Shown once; only its hash is stored. */
  token: string;
  id: string;
}

// One cache per database handle, so tests or embedders with several stores never share entries.
// Revocation must go through the same handle that verifies for the cache to be cleared.
const caches = new WeakMap<Kysely<Database>, VerificationCache>();

function cacheFor(db: Kysely<Database>): VerificationCache {
  let cache = caches.get(db);
  if (cache === undefined) {
    cache = new VerificationCache();
    caches.set(db, cache);
  }
  return cache;
}

function normaliseScopes(scopes: readonly string[]): string[] {
  const unique = [...new Set(scopes)];
  if (unique.length === 0 || unique.length > MAX_SCOPES) {
    throw badRequest(`a token needs between 1 and ${MAX_SCOPES} scopes`);
  }
  const bad = unique.filter((s) => !SCOPE_PATTERN.test(s));
  if (bad.length > 0) throw badRequest('invalid scope name', { scopes: bad });
  return unique;
}

/** Issues a new token for an existing user and returns the plaintext exactly once. */
export async function createToken(
  db: Kysely<Database>,
  input: CreateTokenInput,
): Promise<CreatedToken> {
  const name = input.name.trim();
  if (name.length === 0 || name.length > MAX_NAME_LENGTH) {
    throw badRequest(`token name must be 1-${MAX_NAME_LENGTH} characters`);
  }
  const scopes = normaliseScopes(input.scopes ?? DEFAULT_SCOPES);
  const now = Date.now();
  let expiresAt: string | null = null;
  if (input.expiresAt !== undefined) {
    const t = input.expiresAt.getTime();
    // The upper bound keeps toISOString in its fixed-width form, which stored timestamps rely on.
    if (!Number.isFinite(t) || t <= now || t >= Date.UTC(10_000, 0, 1)) {
      throw badRequest('expiresAt must be a valid time in the future');
    }
    expiresAt = toTimestamp(t);
  }

  const user = await db
    .selectFrom('users')
    .select('id')
    .where('id', '=', input.userId)
    .executeTakeFirst();
  if (user === undefined) throw notFound(`user ${input.userId} not found`);

  const token = generateToken();
  const id = ulid();
  await db
    .insertInto('api_tokens')
    .values({
      id,
      user_id: input.userId,
      name,
      token_hash: hashToken(token),
      prefix: displayPrefix(token),
      scopes: scopes.join(' '),
      created_at: toTimestamp(now),
      expires_at: expiresAt,
    })
    .execute();
  return { token, id };
}

/**
 * Resolves a presented token to its user, or null if it is unknown, malformed, revoked or
 * expired. Successful results are cached for {@link VERIFICATION_CACHE_TTL_MS} (never past the
 * token's expiry). Database failures propagate: an outage is not an authentication failure.
 */
export async function verifyToken(
  db: Kysely<Database>,
  token: string,
): Promise<VerifiedToken | null> {
  if (!isWellFormedToken(token)) return null;
  const hash = hashToken(token);
  const cache = cacheFor(db);
  const now = Date.now();
  const cached = cache.get(hash, now);
  if (cached !== undefined) return cached;

  const generation = cache.generation;
  const row = await db
    .selectFrom('api_tokens as t')
    .innerJoin('users as u', 'u.id', 't.user_id')
    .select([
      't.id as tokenId',
      't.token_hash as tokenHash',
      't.scopes',
      't.expires_at as expiresAt',
      't.revoked_at as revokedAt',
      't.last_used_at as lastUsedAt',
      'u.id as userId',
      'u.name as userName',
      'u.role',
    ])
    .where('t.token_hash', '=', hash)
    .executeTakeFirst();
  if (row === undefined) return null;

  // The indexed lookup already matched, so this compare is defence in depth: it keeps the
  // final accept/reject decision constant-time even if a database ever matched loosely.
  const stored = Buffer.from(row.tokenHash, 'hex');
  const presented = Buffer.from(hash, 'hex');
  if (stored.length !== presented.length || !timingSafeEqual(stored, presented)) return null;

  if (row.revokedAt !== null) return null;
  const expiresMs = row.expiresAt === null ? Infinity : Date.parse(row.expiresAt);
  if (!(now < expiresMs)) return null;

  if (row.lastUsedAt === null || now - Date.parse(row.lastUsedAt) >= LAST_USED_RESOLUTION_MS) {
    await touchLastUsed(db, row.tokenId, now);
  }

  // Frozen because the same object is handed to every request the cache serves.
  const verified: VerifiedToken = Object.freeze({
    userId: row.userId,
    userName: row.userName,
    role: row.role,
    tokenId: row.tokenId,
    scopes: Object.freeze(row.scopes.split(' ').filter((s) => s.length > 0)),
  });
  cache.set(hash, verified, Math.min(now + VERIFICATION_CACHE_TTL_MS, expiresMs), generation);
  return verified;
}

/**
 * Best effort: last_used_at is informational, so a busy or read-only database must not turn a
 * valid request into an error. The condition keeps concurrent verifiers (or nodes) from all
 * writing in the same minute.
 */
async function touchLastUsed(db: Kysely<Database>, tokenId: string, now: number): Promise<void> {
  try {
    await db
      .updateTable('api_tokens')
      .set({ last_used_at: toTimestamp(now) })
      .where('id', '=', tokenId)
      .where((eb) =>
        eb.or([
          eb('last_used_at', 'is', null),
          eb('last_used_at', '<=', toTimestamp(now - LAST_USED_RESOLUTION_MS)),
        ]),
      )
      .execute();
  } catch {
    // Deliberately ignored; see above.
  }
}

/**
 * Revokes a token and drops it from the verification cache at once. Returns true if this call
 * revoked it, false if it already was revoked. Throws `not_found` for an unknown id.
 */
export async function revokeToken(db: Kysely<Database>, tokenId: string): Promise<boolean> {
  const row = await db
    .selectFrom('api_tokens')
    .select('token_hash')
    .where('id', '=', tokenId)
    .executeTakeFirst();
  if (row === undefined) throw notFound(`token ${tokenId} not found`);
  const result = await db
    .updateTable('api_tokens')
    .set({ revoked_at: toTimestamp(Date.now()) })
    .where('id', '=', tokenId)
    .where('revoked_at', 'is', null)
    .executeTakeFirst();
  cacheFor(db).delete(row.token_hash);
  return result.numUpdatedRows > 0n;
}

/**
 * Forgets every cached verification for this database handle. For changes that alter what a
 * token means without revoking it (a user's role changed, a user was deleted).
 */
export function clearTokenCache(db: Kysely<Database>): void {
  cacheFor(db).clear();
}
