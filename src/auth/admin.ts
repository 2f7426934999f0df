import { randomBytes } from 'node:crypto';
import { mkdir, open, rename, unlink } from 'node:fs/promises';
import { isAbsolute, join, relative, resolve, sep } from 'node:path';
import type { Kysely } from 'kysely';
import { ulid } from 'ulid';
import { toTimestamp } from '../state/index.js';
import type { Database } from '../state/index.js';
import { createToken } from './tokens.js';

export const ADMIN_USER_NAME = 'admin';
export const ADMIN_TOKEN_FILE = 'admin.token';
/**
 * The admin token file as a path relative to `cwd`, for a public hint (the console's login page):
 * only when the data dir lies under `cwd`, so no absolute path (home dir, user name) is disclosed.
 * Undefined otherwise; the page then names `<data-dir>/admin.token`.
 */
export function adminTokenHint(dataDir: string, cwd: string = process.cwd()): string | undefined {
  const rel = relative(cwd, resolve(cwd, dataDir, ADMIN_TOKEN_FILE));
  if (rel === '' || isAbsolute(rel) || rel === '..' || rel.startsWith('..' + sep)) return undefined;
  return rel.split(sep).join('/');
}

/** meta key whose presence means "this installation has been bootstrapped". */
const BOOTSTRAP_KEY = 'admin_bootstrapped_at';

export type EnsureAdminResult =
  | { created: true; token: string; tokenPath: string }
  | { created: false };

/**
 * First start: creates the 'admin' user and an admin token, stores the token in
 * `<dataDir>/admin.token` (mode 0600) and returns it so the caller can print it once.
 * Later starts return `{created: false}` and never re-create anything, even if the file was
 * deleted: the database keeps only the hash, and a silently minted second admin token would be
 * a backdoor. Recovery from a lost token is an explicit operator action, not a restart.
 *
 * The bootstrap marker, the user and the token commit in one transaction and the file is
 * written inside it, so a failed write leaves nothing behind and the next start tries again.
 * Two processes starting at once serialise on the marker row; the loser sees `created: false`.
 */
export async function ensureAdmin(
  db: Kysely<Database>,
  dataDir: string,
): Promise<EnsureAdminResult> {
  // Fast path for every later start: a read, no write lock.
  const done = await db
    .selectFrom('meta')
    .select('key')
    .where('key', '=', BOOTSTRAP_KEY)
    .executeTakeFirst();
  if (done !== undefined) return { created: false };

  return db.transaction().execute(async (trx): Promise<EnsureAdminResult> => {
    const now = toTimestamp(Date.now());
    const marked = await trx
      .insertInto('meta')
      .values({ key: BOOTSTRAP_KEY, value: now })
      .onConflict((oc) => oc.column('key').doNothing())
      .executeTakeFirst();
    if (marked.numInsertedOrUpdatedRows === 0n) return { created: false };

    const userId = ulid();
    await trx
      .insertInto('users')
      .values({ id: userId, name: ADMIN_USER_NAME, role: 'admin', created_at: now })
      .execute();
    const { token } = await createToken(trx, { userId, name: 'bootstrap admin token' });
    const tokenPath = await writeSecretFile(dataDir, ADMIN_TOKEN_FILE, `${token}\n`);
    return { created: true, token, tokenPath };
  });
}

/**
 * Writes a file readable by the owner only. It is created with mode 0600 from the start (a
 * chmod afterwards leaves a window where the secret is world-readable), under a temporary name
 * and renamed into place, so a crash never leaves a truncated token file and a stale file with
 * looser permissions is replaced rather than reused.
 */
async function writeSecretFile(dir: string, name: string, content: string): Promise<string> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const finalPath = join(dir, name);
  const tmpPath = join(dir, `.${name}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    const file = await open(tmpPath, 'wx', 0o600);
    try {
      await file.writeFile(content, 'utf8');
      await file.sync();
    } finally {
      await file.close();
    }
    await rename(tmpPath, finalPath);
  } catch (err) {
    await unlink(tmpPath).catch(() => undefined); // may not exist (the open failed); err below is the cause
    throw err;
  }
  await syncDir(dir);
  return finalPath;
}

/** Makes the rename itself durable; best effort, as some platforms cannot fsync a directory. */
async function syncDir(dir: string): Promise<void> {
  try {
    const handle = await open(dir, 'r');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  } catch {
    // Not supported here (e.g. Windows); the file itself is already synced.
  }
}
