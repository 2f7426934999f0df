import { describe, expect, it } from 'vitest';
import { DetectorSet, ibanValid, luhnValid, Masker, DEFAULT_MASKING, type MaskCounts } from './masking/index.js';
import { decodeNumber, encodeNumber } from './masking/binary.js';
import { globMatches } from './masking/masker.js';
import { WITHHELD } from './masking/errors.js';
import { cstr, errorResponse, frame, int16, int32 } from './wire/encode.js';

const detectors = new DetectorSet();
const ids = (text: string): string[] => detectors.find(text).map((m) => m.id);

describe('content detectors and their validators', () => {
  it.each([
    ['alice@example.com', 'email'],
    ['call +1 415 555 2671 now', 'phone'],
    ['(212) 555-0187', 'phone'],
    ['4111 1111 1111 1111', 'credit-card'],
    ['5500-0000-0000-0004', 'credit-card'],
    ['DE89 3704 0044 0532 0130 00', 'iban'],
    ['GB82WEST12345698765432', 'iban'],
    ['ssn 078-05-1120', 'us-ssn'],
    ['from 203.0.113.7', 'ipv4'],
    ['2001:db8::1', 'ipv6'],
    ['eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U', 'jwt'],
    ['AKIAIOSFODNN7EXAMPLE', 'api-key'],
    ['sk_live_abcdefghijklmnop1234', 'api-key'],
    ['tl_0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefg', 'api-key'],
  ])('finds %s as %s', (text, id) => {
    expect(ids(text)).toEqual([id]);
  });

  it('validators reject look-alikes', () => {
    expect(luhnValid('4111111111111111')).toBe(true);
    expect(luhnValid('4111111111111112')).toBe(false);
    expect(ibanValid('DE89370400440532013000')).toBe(true);
    expect(ibanValid('DE89370400440532013001')).toBe(false);
    for (const text of [
      'order 1234567890123457', // fails Luhn
      '000-12-3456', // SSN area 000
      '1.2.3.4.5', // not an address
      '12:30:45', // a time, not IPv6
      'eyJub3QiOiJqd3QifQ.eyJhIjoxfQ.x', // JSON header without alg
      'version 2.10.300.4000',
      'short', '',
    ]) {
      expect(ids(text), text).toEqual([]);
    }
  });

  it('scans in linear time on hostile input', () => {
    const t = performance.now();
    detectors.find('a'.repeat(200_000));
    detectors.find('1'.repeat(200_000));
    detectors.find('a.'.repeat(100_000));
    expect(performance.now() - t).toBeLessThan(2_000);
  });
});

function dataRow(values: (string | null)[]): Buffer {
  const parts = values.map((v) => (v === null ? int32(-1) : Buffer.concat([int32(Buffer.byteLength(v)), Buffer.from(v)])));
  return frame('D', int16(values.length), ...parts);
}

function rowValues(msg: Buffer): (string | null)[] {
  const n = msg.readInt16BE(5);
  let off = 7;
  const out: (string | null)[] = [];
  for (let i = 0; i < n; i++) {
    const len = msg.readInt32BE(off);
    out.push(len < 0 ? null : msg.toString('utf8', off + 4, off + 4 + len));
    off += 4 + Math.max(len, 0);
  }
  expect(off).toBe(msg.length);
  expect(msg.readInt32BE(1)).toBe(msg.length - 1);
  return out;
}

const field = (name: string, typeOid = 25, format = 0) => ({ name, tableOid: 0, column: 0, typeOid, format });

describe('Masker', () => {
  const masker = new Masker({ ...DEFAULT_MASKING, columns: [{ name: '*secret*', mode: 'full' }, { name: 'born', mode: 'full' }] }, Buffer.alloc(32, 1));

  it('rewrites DataRows with recomputed lengths; untouched rows stay the same object', () => {
    const plan = masker.plan([field('id', 23), field('contact'), field('my_secret_note'), field('born', 1082)]);
    const counts: MaskCounts = {};
    const row = dataRow(['7', 'mail alice@example.com', 'top', '1990-01-01']);
    const out = masker.maskDataRow(row, 0, row.length, plan, counts);
    expect(out).toBeDefined();
    expect(rowValues(out as Buffer)).toEqual(['7', 'mail *****@******e.com', '********', null]);
    expect(counts).toEqual({ email: 1, 'column:my_secret_note': 1, 'column:born': 1 });
    const clean = new Masker({ ...DEFAULT_MASKING }, Buffer.alloc(32));
    const plain = dataRow(['7', 'nothing here']);
    expect(clean.maskDataRow(plain, 0, plain.length, clean.plan([field('id', 23), field('t')]), {})).toBeUndefined();
  });

  it('keeps values parseable as their type: numbers stay digits, JSON stays JSON, inet stays an address', () => {
    const plan = masker.plan([field('n', 20), field('j', 114), field('ip', 869)]);
    const row = dataRow(['4111111111111111', '{"card":4111111111111111,"mail":"bob@example.org"}', '203.0.113.7']);
    const [n, j, ip] = rowValues(masker.maskDataRow(row, 0, row.length, plan, {}) as Buffer);
    expect(n).toMatch(/^10+1111$/);
    const json = JSON.parse(j ?? '') as { card: number; mail: string };
    expect(json.mail).toBe('***@******e.org');
    expect(String(json.card)).toMatch(/1111$/);
    expect(ip).toBe('0.0.0.7');
  });

  it('deterministic hash mode gives the same token for the same value', () => {
    const h = new Masker({ ...DEFAULT_MASKING, mode: 'hash' }, Buffer.alloc(32, 9));
    const plan = h.plan([field('a'), field('b')]);
    const row = dataRow(['alice@example.com', 'alice@example.com']);
    const [a, b] = rowValues(h.maskDataRow(row, 0, row.length, plan, {}) as Buffer);
    expect(a).toMatch(/^email_[0-9a-f]{12}$/);
    expect(a).toBe(b);
  });

  it('masks COPY OUT lines without breaking their delimiters', () => {
    const line = frame('d', Buffer.from('1\talice@example.com\t4111 1111 1111 1111\n'));
    const out = masker.maskCopyData(line, 0, line.length, {}) as Buffer;
    expect(out.toString('utf8', 5)).toBe('1\t*****@******e.com\t**** **** **** 1111\n');
    expect(out.readInt32BE(1)).toBe(out.length - 1);
  });

  it('binary numbers and dates under a column rule become NULL (a masked number would look real)', () => {
    const plan = masker.plan([field('secret_num', 23, 1), field('born', 1082, 1)]);
    const row = frame('D', int16(2), int32(4), int32(987654), int32(4), int32(7000));
    const out = masker.maskDataRow(row, 0, row.length, plan, {}) as Buffer;
    expect(out.readInt32BE(7)).toBe(-1);
    expect(out.readInt32BE(11)).toBe(-1);
    expect(cstr('x').length).toBe(2);
  });
});

describe('binary codecs', () => {
  it('numeric: encode and decode are inverse, with PostgreSQL weights and scales', () => {
    for (const v of ['0', '-12.50', '0.0001', '10000', '123456789012345678901234567890.123', '-0.5', '4111111111111111']) {
      const b = encodeNumber('numeric', v) as Buffer;
      expect(decodeNumber('numeric', b, 0, b.length), v).toBe(v);
    }
    const tenThousand = encodeNumber('numeric', '10000') as Buffer;
    expect(tenThousand.toString('hex')).toBe('0001000100000000' + '0001'); // one digit, weight 1
    const small = encodeNumber('numeric', '0.0001') as Buffer;
    expect([small.readInt16BE(2), small.readInt16BE(6)]).toEqual([-1, 4]);
  });

  it('integers that no longer fit their type after masking become NULL; floats keep integral digits', () => {
    expect(encodeNumber('int2', '40000')).toBeNull();
    expect((encodeNumber('int4', '-2147483648') as Buffer).readInt32BE(0)).toBe(-2147483648);
    const f = Buffer.alloc(8);
    f.writeDoubleBE(4111111111111111);
    expect(decodeNumber('float8', f, 0, 8)).toBe('4111111111111111');
  });
});

describe('column name globs', () => {
  it('match case-insensitively with * wildcards, in linear work (a RegExp backtracks on many stars)', () => {
    expect(globMatches('*secret*', 'API_SECRET_KEY')).toBe(true);
    expect(globMatches('born', 'born')).toBe(true);
    expect(globMatches('born', 'reborn')).toBe(false);
    expect(globMatches('a*b*c', 'abc')).toBe(true);
    expect(globMatches('a*b*c', 'aXbYc')).toBe(true);
    expect(globMatches('a*b*c', 'aXbYcZ')).toBe(false);
    expect(globMatches('*', '')).toBe(true);
    expect(globMatches('a.b', 'aXb')).toBe(false);
    expect(globMatches(`${'*a'.repeat(30)}*b`, 'a'.repeat(5000))).toBe(false);
  });
});

describe('errors and notices while masking is on', () => {
  const msgOf = (fields: Parameters<typeof errorResponse>[0]): Buffer => errorResponse(fields);
  const text = (m: Masker, msg: Buffer, sql?: string, counts: MaskCounts = {}): string => (m.maskErrorMessage(msg, 0, msg.length, counts, sql) ?? msg).toString('utf8');

  it('withholds quoted values and echoing fields, with column rules or with the detectors alone', () => {
    const msg = msgOf({ severity: 'ERROR', code: '22P02', message: 'invalid input syntax for type integer: "Grace Lovelace"', detail: 'Failing row contains (1, Grace Lovelace).' });
    for (const policy of [{ ...DEFAULT_MASKING, columns: [{ name: 'name', mode: 'hash' as const }] }, { ...DEFAULT_MASKING }]) {
      const counts: MaskCounts = {};
      const out = text(new Masker(policy, Buffer.alloc(32, 3)), msg, 'SELECT name::int FROM customers', counts);
      expect(out).not.toContain('Grace');
      expect(out).toContain('22P02');
      // With a column rule the message is withheld whole (no heuristic over the server's words
      // holds: `operator does not exist: Margaret_Lovelace`); with the detectors alone it is scrubbed.
      if (policy.columns.length > 0) expect(out).toContain(`${WITHHELD} (SQLSTATE 22P02)`);
      else expect(out).toContain('invalid input syntax for type integer: "…"');
      expect(counts['error:withheld']).toBeGreaterThan(0);
    }
    const regoper = msgOf({ severity: 'ERROR', code: '42883', message: 'operator does not exist: Margaret_Lovelace' });
    const ruled = new Masker({ ...DEFAULT_MASKING, columns: [{ name: 'name', mode: 'hash' }] }, Buffer.alloc(32, 3));
    expect(text(ruled, regoper, "SELECT replace(name, ' ', '_')::regoper FROM customers")).not.toContain('Lovelace');
    // The server's fixed words (cancel, aborted transaction, deadlock) stay readable.
    const cancel = msgOf({ severity: 'ERROR', code: '57014', message: 'canceling statement due to user request' });
    expect(text(ruled, cancel, 'SELECT pg_sleep(10)')).toContain('canceling statement due to user request');
    // Nothing to mask (no detectors, no rules): left alone.
    const off = new Masker({ ...DEFAULT_MASKING, detectors: [] }, Buffer.alloc(32, 3));
    expect(off.maskErrorMessage(msg, 0, msg.length, {}, 'SELECT 1')).toBeUndefined();
  });

  it('keeps what the statement itself contains, withholds the rest, also outside quotes', () => {
    const m = new Masker({ ...DEFAULT_MASKING }, Buffer.alloc(32, 3));
    const cases: [string, string, string][] = [
      ['column "emial" does not exist', 'SELECT emial FROM customers', 'column "emial" does not exist'],
      ['relation "Customers2" does not exist', 'select * from customers2', 'relation "Customers2" does not exist'],
      ['invalid input syntax for type integer: "moc.elpmaxe@ada"', 'SELECT reverse(email)::int FROM customers', 'invalid input syntax for type integer: "…"'],
      // The server does not escape quotes inside a value: quote tricks keep nothing.
      ['invalid input syntax for type integer: ""ada" secret "x""', `SELECT ('"' || email)::int FROM customers -- "ada" "x"`, 'invalid input syntax for type integer: ""ada"…"x""'],
      ['invalid input syntax for type integer: "x" of relation "secret"', `SELECT email::int -- "x"`, 'invalid input syntax for type integer: "x" of relation "…"'],
      ['unterminated "ada.lovelace', 'SELECT 1', 'unterminated "…'],
      ['requested character too large for encoding: 1114209', 'SELECT chr(ascii(email) + 1114112) FROM customers', 'requested character too large for encoding: …'],
      ['invalid byte sequence for encoding "UTF8": 0xc0 0x6a', "SELECT convert_from('\\xc0'::bytea || convert_to(email, 'UTF8'), 'UTF8') FROM customers", 'invalid byte sequence for encoding "UTF8": … …'],
      ['cross-database references are not implemented: moc.elpmaxe@1ecalevol.ada', 'SELECT reverse(email)::regclass FROM customers', 'cross-database references are not implemented: …'],
      ['No function matches the given name and argument types. You might need to add explicit type casts.', 'SELECT f(1)', 'No function matches the given name and argument types. You might need to add explicit type casts.'],
    ];
    for (const [message, sql, want] of cases) expect(text(m, msgOf({ severity: 'ERROR', code: 'XX000', message }), sql), message).toContain(want);
    // Without the statement (an asynchronous notice), nothing quoted is known to the client.
    expect(text(m, msgOf({ severity: 'NOTICE', code: '00000', message: 'relation "customers" does not exist' }))).toContain('relation "…"');
  });

  it('withholds RAISE texts whole while anything is ruled or classified: a routine computed them', () => {
    const m = new Masker({ ...DEFAULT_MASKING, columns: [{ name: 'email', mode: 'partial' }] }, Buffer.alloc(32, 3));
    const raise = Buffer.concat([msgOf({ severity: 'NOTICE', code: '00000', message: 'moc elpmaxe ada' }).subarray(0, -1), Buffer.from('Fpl_exec.c\0Rexec_stmt_raise\0\0')]);
    raise.writeInt32BE(raise.length - 1, 1);
    const out = text(m, raise, 'DO $$ BEGIN RAISE NOTICE $$');
    expect(out).not.toContain('elpmaxe');
    expect(out).toContain('withheld');
  });
});

describe('name-lookup errors that only name the client\'s own identifiers (attack round 6 §3)', () => {
  const ruled = new Masker({ ...DEFAULT_MASKING, columns: [{ name: 'email', mode: 'partial' }] }, Buffer.alloc(32, 3));
  const out = (fields: Parameters<typeof errorResponse>[0], sql: string, extra: Record<string, string> = {}): string => {
    let msg = errorResponse(fields);
    const more = Object.entries(extra).map(([k, v]) => Buffer.concat([Buffer.from(k), Buffer.from(`${v}\0`)]));
    if (more.length > 0) {
      msg = Buffer.concat([msg.subarray(0, -1), ...more, Buffer.of(0)]);
      msg.writeInt32BE(msg.length - 1, 1);
    }
    return (ruled.maskErrorMessage(msg, 0, msg.length, {}, sql) ?? msg).toString('utf8');
  };
  const col = { severity: 'ERROR' as const, code: '42703', message: 'column "status" does not exist' };

  it('keeps them with a position in the statement, no nested-statement fields and every name in the statement', () => {
    expect(out(col, 'SELECT status FROM orders', { P: '8' })).toContain('column "status" does not exist');
    expect(out({ ...col, code: '42P05', message: 'prepared statement "u1" already exists' }, 'PREPARE u1 AS SELECT 2')).toContain('prepared statement "u1" already exists');
  });

  it('withholds them without a position, from a statement inside a function, or naming what the statement lacks', () => {
    expect(out(col, 'SELECT has_column_privilege($1, email, $2) FROM customers -- status')).not.toContain('status" does');
    expect(out(col, 'SELECT dyn(email) FROM customers -- status', { P: '8', W: 'PL/pgSQL function dyn(text) line 1 at EXECUTE' })).not.toContain('status" does');
    expect(out(col, 'SELECT f(x) FROM customers', { P: '8', q: 'SELECT status FROM orders', p: '8' })).not.toContain('status" does');
    expect(out(col, 'SELECT statu FROM orders', { P: '8' })).not.toContain('status" does');
    // Other SQLSTATEs with the same words, and other words under these SQLSTATEs.
    expect(out({ ...col, code: '22P02' }, 'SELECT status FROM orders', { P: '8' })).toContain('[withheld by tightloop');
    expect(out({ ...col, message: 'column "status" does not exist: alice' }, 'SELECT status FROM orders -- alice', { P: '8' })).toContain('[withheld by tightloop');
  });
});
