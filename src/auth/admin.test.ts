import { createHash } from 'node:crypto';
import { readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stateTestDialects } from '../state/dialects.conformance.js';
import { ADMIN_TOKEN_FILE, ensureAdmin, verifyToken } from './index.js';

const dialects = stateTestDialects();

describe.each(dialects.names)('ensureAdmin on %s', (dialect) => {
  beforeAll(() => dialects.start(dialect));
  afterAll(() => dialects.stop());

  it('creates the admin and a 0600 token file exactly once', async () => {
    const { db, scratchDir: dataDir } = await dialects.open(dialect);
    // With no umask to narrow it, the file mode shows exactly what the code asked for.
    const umask = process.umask(0);
    let first;
    try {
      first = await ensureAdmin(db, dataDir);
    } finally {
      process.umask(umask);
    }
    if (!first.created) throw new Error('expected the first start to create the admin');

    const path = join(dataDir, ADMIN_TOKEN_FILE);
    expect(first.tokenPath).toBe(path);
    expect(readFileSync(path, 'utf8')).toBe(`${first.token}\n`);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(readdirSync(dataDir).filter((f) => f.endsWith('.tmp'))).toEqual([]);

    const who = await verifyToken(db, first.token);
    expect(who).toMatchObject({ userName: 'admin', role: 'admin' });

    expect(await ensureAdmin(db, dataDir)).toEqual({ created: false });
    expect(readFileSync(path, 'utf8')).toBe(`${first.token}\n`);
    expect(await db.selectFrom('users').select('name').execute()).toEqual([{ name: 'admin' }]);
    const tokens = await db.selectFrom('api_tokens').select('token_hash').execute();
    expect(tokens).toEqual([{ token_hash: createHash('sha256').update(first.token).digest('hex') }]);
  });

  it('never re-creates after the token file is deleted', async () => {
    const { db, scratchDir: dataDir } = await dialects.open(dialect);
    const first = await ensureAdmin(db, dataDir);
    expect(first.created).toBe(true);
    rmSync(join(dataDir, ADMIN_TOKEN_FILE));

    expect(await ensureAdmin(db, dataDir)).toEqual({ created: false });
    expect(readdirSync(dataDir)).not.toContain(ADMIN_TOKEN_FILE);
    expect(await db.selectFrom('api_tokens').select('id').execute()).toHaveLength(1);
  });

  it('concurrent first starts create exactly one admin', async () => {
    const { db, scratchDir: dataDir } = await dialects.open(dialect);
    const starts = [1, 2, 3].map(() => ensureAdmin(db, dataDir));
    const results = await Promise.all(starts);
    expect(results.filter((r) => r.created)).toHaveLength(1);
    expect(await db.selectFrom('users').select('id').execute()).toHaveLength(1);
    expect(await db.selectFrom('api_tokens').select('id').execute()).toHaveLength(1);
  });

  it('replaces a stale token file left with loose permissions', async () => {
    const { db, scratchDir: dataDir } = await dialects.open(dialect);
    const path = join(dataDir, ADMIN_TOKEN_FILE);
    writeFileSync(path, 'stale\n', { mode: 0o644 });
    const result = await ensureAdmin(db, dataDir);
    if (!result.created) throw new Error('expected creation');
    expect(readFileSync(path, 'utf8')).toBe(`${result.token}\n`);
    expect(statSync(path).mode & 0o777).toBe(0o600);
  });
});

describe('ensureAdmin on sqlite: the plaintext never reaches the database files', () => {
  afterAll(() => dialects.stop());

  it('holds only the hash, in the main file and the WAL alike', async () => {
    const store = await dialects.open('sqlite');
    const result = await ensureAdmin(store.db, store.scratchDir);
    if (!result.created) throw new Error('expected creation');
    const body = result.token.slice(3);
    const hash = createHash('sha256').update(result.token).digest('hex');

    const dbFiles = (): string[] =>
      readdirSync(store.scratchDir)
        .filter((f) => f.startsWith('state.db'))
        .map((f) => join(store.scratchDir, f));
    const assertOnlyHash = (): void => {
      const bytes = Buffer.concat(dbFiles().map((f) => readFileSync(f)));
      expect(bytes.includes(hash)).toBe(true);
      expect(bytes.includes(result.token)).toBe(false);
      expect(bytes.includes(body)).toBe(false);
    };

    expect(dbFiles().some((f) => f.endsWith('-wal'))).toBe(true);
    assertOnlyHash(); // while open: the write sits in the WAL
    await store.close();
    assertOnlyHash(); // after close: checkpointed into the main file
  });
});
