import type { Insertable, Selectable, Updateable } from 'kysely';

/**
 * Table types of the state database. The same types serve SQLite and PostgreSQL, so every
 * column uses a type both dialects hand back unchanged:
 * - ids are ULIDs stored as text (sortable by creation time, generated in the app);
 * - timestamps are ISO-8601 UTC text from {@link toTimestamp}. One fixed-width format sorts
 *   and compares correctly as text in both databases, whereas a native `timestamptz` would come
 *   back as a `Date` from PostgreSQL and as a string from SQLite.
 */

/** ISO-8601 UTC timestamp with millisecond precision, e.g. `2025-01-31T09:15:00.000Z`. */
export type Timestamp = string;

export const ROLES = ['admin', 'member', 'viewer'] as const;
export type Role = (typeof ROLES)[number];

export interface UsersTable {
  id: string;
  name: string;
  role: Role;
  created_at: Timestamp;
}

export interface ApiTokensTable {
  id: string;
  user_id: string;
  /** Human label ("ci deploys"), not secret. */
  name: string;
  /** Lowercase hex SHA-256 of the full token; the plaintext is never stored. */
  token_hash: string;
  /** The first characters of the token, so a user can tell tokens apart in a list. */
  prefix: string;
  /** Space-separated scope names (OAuth style). */
  scopes: string;
  created_at: Timestamp;
  last_used_at: Timestamp | null;
  expires_at: Timestamp | null;
  revoked_at: Timestamp | null;
}

/** Small key/value facts about this installation (e.g. when it was bootstrapped). */
export interface MetaTable {
  key: string;
  value: string;
}

export interface Database {
  users: UsersTable;
  api_tokens: ApiTokensTable;
  meta: MetaTable;
}

export type User = Selectable<UsersTable>;
export type NewUser = Insertable<UsersTable>;
export type UserUpdate = Updateable<UsersTable>;
export type ApiToken = Selectable<ApiTokensTable>;
export type NewApiToken = Insertable<ApiTokensTable>;

/** The one way to turn a time into a stored {@link Timestamp}. */
export function toTimestamp(time: Date | number): Timestamp {
  return new Date(time).toISOString();
}
