import { describe, expect, it } from 'vitest';
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
