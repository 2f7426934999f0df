import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { describeStateLocation, parseStateLocation } from './location.js';

describe('state location (--state / TIGHTLOOP_STATE_URL)', () => {
  it('defaults to the SQLite file in the data directory', () => {
    expect(parseStateLocation(undefined, '/data')).toEqual({ dialect: 'sqlite', path: '/data/state.db' });
    expect(parseStateLocation('  ', '/data')).toEqual({ dialect: 'sqlite', path: '/data/state.db' });
  });

  it('takes postgres:// and postgresql:// URLs', () => {
    for (const url of ['postgres://tl:pw@db.internal:5432/tightloop', 'postgresql://tl@10.0.0.5/tightloop?sslmode=require']) {
      expect(parseStateLocation(url, '/data')).toEqual({ dialect: 'postgres', connectionString: url });
    }
  });

  it('refuses anything else with a precise error, never falling back to a local file', () => {
    for (const [url, why] of [
      ['state.db', /not a URL/], ['sqlite:///x/state.db', /unsupported scheme "sqlite"/], ['mysql://h/db', /unsupported scheme "mysql"/],
      ['postgres://db.internal:5432/', /no database name/], ['postgres:///tightloop', /no host/],
    ] as const) {
      expect(() => parseStateLocation(url, '/data')).toThrow(why);
      try { parseStateLocation(url, '/data'); } catch (err) { expect((err as { code: string }).code).toBe('state_url_invalid'); }
    }
  });

  it('never shows the password', () => {
    const shown = describeStateLocation(parseStateLocation('postgres://tl:s3cret@db:5432/tightloop?password=s3cret', '/d'));
    expect(shown).not.toContain('s3cret');
    expect(shown).toContain('db:5432/tightloop');
    expect(describeStateLocation(parseStateLocation(undefined, '/d'))).toBe('sqlite /d/state.db');
  });
});

describe('tightloop up --state', () => {
  async function up(args: string[], env?: string): Promise<{ code: number; err: string }> {
    const { run } = await import('../cli/main.js');
    let err = '';
    const spy = vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => { err += String(chunk); return true; });
    const before = process.env.TIGHTLOOP_STATE_URL;
    if (env !== undefined) process.env.TIGHTLOOP_STATE_URL = env;
    const dataDir = mkdtempSync(join(tmpdir(), 'tightloop-state-flag-'));
    try {
      return { code: await run(['node', 'tightloop', 'up', '--data-dir', dataDir, ...args]), err };
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
      spy.mockRestore();
      if (before === undefined) delete process.env.TIGHTLOOP_STATE_URL; else process.env.TIGHTLOOP_STATE_URL = before;
    }
  }

  it('refuses a bad URL from the flag or the environment with exit 2, before starting anything', async () => {
    expect(await up(['--state', 'mysql://h/db'])).toEqual({ code: 2, err: expect.stringMatching(/--state \/ TIGHTLOOP_STATE_URL: invalid state URL: unsupported scheme "mysql"/) as unknown });
    expect(await up([], 'state.db')).toEqual({ code: 2, err: expect.stringMatching(/invalid state URL: not a URL/) as unknown });
  });

  it('a PostgreSQL that cannot be reached stops the start with exit 2, without the password', async () => {
    const r = await up(['--state', 'postgres://tl:s3cret@127.0.0.1:1/tightloop', '--port', '0']);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/cannot reach the PostgreSQL state database/);
    expect(r.err).not.toContain('s3cret');
  });
});
