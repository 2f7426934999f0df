import { join } from 'node:path';
import { apiError, AppError } from '../core/app-error.js';

/**
 * Where the state database lives, as `tightloop up --state` / `TIGHTLOOP_STATE_URL` says:
 * nothing (the default) is the SQLite file `<data dir>/state.db`; `postgres://…` or
 * `postgresql://…` is a PostgreSQL database that several tightloop nodes may share. Anything
 * else is refused: a typo must not silently fall back to a local file that one node alone sees.
 */
export type StateLocation =
  | { dialect: 'sqlite'; path: string }
  | { dialect: 'postgres'; connectionString: string };

export function parseStateLocation(url: string | undefined, dataDir: string): StateLocation {
  if (url === undefined || url.trim() === '') return { dialect: 'sqlite', path: join(dataDir, 'state.db') };
  const value = url.trim();
  let parsed: URL;
  try {
    parsed = new URL(value);
  } catch {
    throw invalid('not a URL (expected postgres://user:password@host:5432/database)');
  }
  if (parsed.protocol !== 'postgres:' && parsed.protocol !== 'postgresql:') {
    throw invalid(`unsupported scheme ${JSON.stringify(parsed.protocol.replace(/:$/, ''))} (expected postgres:// or postgresql://; omit it for the embedded SQLite file)`);
  }
  if (parsed.hostname === '' && !parsed.searchParams.has('host')) throw invalid('no host');
  if (parsed.pathname.replace(/^\//, '') === '') throw invalid('no database name (postgres://…/<database>)');
  return { dialect: 'postgres', connectionString: value };
}

/** The location for logs and banners: the password never leaves the process. */
export function describeStateLocation(loc: StateLocation): string {
  if (loc.dialect === 'sqlite') return `sqlite ${loc.path}`;
  const u = new URL(loc.connectionString);
  if (u.password !== '') u.password = '***';
  for (const key of ['password', 'sslpassword']) if (u.searchParams.has(key)) u.searchParams.set(key, '***');
  return u.toString();
}

function invalid(why: string): AppError {
  return apiError('state_url_invalid', `invalid state URL: ${why}`);
}
