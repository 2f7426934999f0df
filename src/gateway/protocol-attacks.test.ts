import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rawClient, type GatewayHarness, type RawClient, type Upstream } from './harness.conformance.js';
import { frame } from './wire/encode.js';
import {
  bind, collect, describeMessage, errorsOf, execute, FLUSH, leaks, parseMessage, queryMessage, readyCount, rowValues, roundTrip, SYNC, type Message,
} from './wire-client.conformance.js';
import { grantAccess, shopResource, startGatewayTest, stopGatewayTest, upstreamSql } from '../../test/helpers/gateway.js';

/**
 * Regression tests for the ways around masking found in issue 15, each against real PostgreSQL
 * through the gateway, with a raw protocol client (pg and psql cannot send these sequences).
 * Every message the client receives is checked for raw values of the seeded table.
 */

let upstream: Upstream;
let h: GatewayHarness;

beforeAll(async () => {
  ({ upstream, h } = await startGatewayTest());
  await upstreamSql(upstream, `CREATE FUNCTION shout(t text) RETURNS int LANGUAGE plpgsql AS $$
    BEGIN RAISE NOTICE 'value %', t USING DETAIL = 'detail ' || t, HINT = 'hint ' || t; RETURN 1; END $$;
    CREATE TABLE copy_in (a int, b text)`);
  // A resource whose column rule follows lineage: whatever derives from `card` is masked whole.
  await shopResource(h, upstream, 'shop-rules', { masking: { columns: [{ name: 'card', mode: 'full' }] } });
  await grantAccess(h, h.users.alice, 'shop-rules', 'write');
  // The detectors alone (no column classified, masking/classify.ts): these tests are about the
  // second net, the content detectors on every channel and in every value form.
  await shopResource(h, upstream, 'shop-detect', { masking: { columns: [{ name: '*', mode: 'none' }] } });
  await grantAccess(h, h.users.alice, 'shop-detect', 'write');
});
afterAll(() => stopGatewayTest(h, upstream));

async function connect(): Promise<RawClient> {
  return rawClient(h.gateway.port ?? 0, h.users.alice, 'shop-detect');
}

function expectNoLeak(messages: Message[]): void {
  const found = messages.flatMap((m) => leaks(m).map((l) => `${m.type}: ${l}`));
  expect(found).toEqual([]);
}

function rows(messages: Message[], binary = false): (string | null)[][] {
  return messages.filter((m) => m.type === 'D').map((m) => rowValues(m.body, binary));
}

describe('class 1: the gateway follows the server through errors, skip-to-Sync and pipelines', () => {
  it('a Query sent while the server skips to Sync is not paired with a later answer', async () => {
    const raw = await connect();
    try {
      // Bind to a statement that does not exist; Flush makes the server answer at once.
      raw.send(bind('', 'nope'), FLUSH);
      const err = await collect(raw, (m) => m.some((x) => x.type === 'E'));
      expect(errorsOf(err.messages)[0].get('C')).toBe('26000');
      // The server discards this Query (it is skipping to Sync); only the Sync is answered.
      raw.send(queryMessage('SELECT email FROM customers'), SYNC);
      const skipped = await collect(raw, readyCount(1));
      expect(skipped.messages.map((m) => m.type).join('')).toBe('Z');
      const after = await roundTrip(raw, [queryMessage('SELECT email, phone, card, ssn FROM customers ORDER BY id')], 'm1');
      expect(after.ended).toBe(false);
      expectNoLeak(after.messages);
      expect(rows(after.messages)[0]).toEqual(['*****@******e.com', expect.stringMatching(/2671$/), '**** **** **** 1111', '***-**-6789']);
    } finally {
      raw.close();
    }
  });

  it('the same window within one batch, and a pipelined Query between extended messages', async () => {
    const raw = await connect();
    try {
      const r = await roundTrip(raw, [
        bind('', 'nope'), queryMessage('SELECT email FROM customers'), execute(''), SYNC,
        parseMessage('', 'SELECT email FROM customers WHERE id = 1'), bind('', ''), execute(''),
        queryMessage('SELECT card FROM customers WHERE id = 1'), bind('', ''), execute(''), SYNC,
      ], 'm2');
      expect(r.ended).toBe(false);
      expectNoLeak(r.messages);
      expect(r.messages.map((m) => m.type).join('')).toBe('EZ12DCTDCZEZTDCZ');
    } finally {
      raw.close();
    }
  });
});

describe('class 2: names redefined in SQL never reuse an old description', () => {
  it('Describe s1 harmless, DEALLOCATE + PREPARE s1 in SQL, binary Execute: masked', async () => {
    const raw = await connect();
    try {
      raw.send(parseMessage('s1', 'SELECT 1::int8 AS x'), describeMessage('S', 's1'), SYNC);
      await collect(raw, readyCount(1));
      raw.send(queryMessage('DEALLOCATE s1; PREPARE s1 AS SELECT email FROM customers ORDER BY id'));
      await collect(raw, readyCount(1));
      const r = await roundTrip(raw, [bind('', 's1', [], [1]), execute(''), SYNC], 'm3');
      expectNoLeak(r.messages);
      expect(rows(r.messages)[0]).toEqual(['*****@******e.com']);
    } finally {
      raw.close();
    }
  });

  it('a portal described, then closed and re-declared as a cursor in SQL: masked', async () => {
    const raw = await connect();
    try {
      raw.send(queryMessage('BEGIN'));
      await collect(raw, readyCount(1));
      // "now()" is a timestamptz: a type the masker never scans.
      raw.send(parseMessage('', 'SELECT now() AS t'), bind('c', ''), describeMessage('P', 'c'), FLUSH);
      await collect(raw, (m) => m.some((x) => x.type === 'T'));
      const r = await roundTrip(raw, [queryMessage('CLOSE c; DECLARE c CURSOR FOR SELECT email FROM customers ORDER BY id'), execute('c'), SYNC], 'm4');
      expectNoLeak(r.messages);
      expect(rows(r.messages)[0]).toEqual(['*****@******e.com']);
    } finally {
      raw.close();
    }
  });
});

describe('class 2 with lineage: a portal name redefined in SQL has no lineage from its old statement', () => {
  it('CLOSE c; DECLARE c CURSOR FOR SELECT reverse(card): the rows are masked as a whole', async () => {
    const raw = await rawClient(h.gateway.port ?? 0, h.users.alice, 'shop-rules');
    try {
      raw.send(queryMessage('BEGIN'), parseMessage('', 'SELECT now() AS t'), bind('c', ''), describeMessage('P', 'c'), FLUSH);
      await collect(raw, (m) => m.some((x) => x.type === 'T'));
      const r = await roundTrip(raw, [queryMessage('CLOSE c; DECLARE c CURSOR FOR SELECT reverse(card) AS x FROM customers ORDER BY id'), execute('c'), SYNC], 'm17');
      expectNoLeak(r.messages);
      const x = rows(r.messages)[0][0];
      expect(x).not.toBe('1111 1111 1111 1114');
      expect(x).not.toMatch(/\d/);
    } finally {
      raw.close();
    }
  });
});

describe('class 3: errors, notices, parameters, notifications and COPY options', () => {
  it('masks values echoed in ErrorResponse, NoticeResponse, ParameterStatus and NotificationResponse', async () => {
    const raw = await connect();
    try {
      const r = await roundTrip(raw, [
        queryMessage('SELECT email::int FROM customers WHERE id = 1'),
        parseMessage('', 'SELECT $1::int'), bind('', '', ['bob@example.org']), execute(''), SYNC,
        queryMessage('SELECT shout(email) FROM customers WHERE id = 1'),
        // Computed values into settings and notifications are refused under masking (guardrails);
        // the detectors still read what comes back as ParameterStatus and NotificationResponse.
        queryMessage("SELECT set_config('application_name', email || ' ' || card, false) FROM customers WHERE id = 1"),
        queryMessage("LISTEN ch; SELECT pg_notify('ch', email || ' ' || ssn) FROM customers WHERE id = 1"),
        queryMessage('LISTEN ch'),
        queryMessage("SET application_name = 'alice@example.com 4111 1111 1111 1111'"),
        queryMessage("NOTIFY ch, 'alice@example.com 123-45-6789'"),
      ], 'm5');
      expectNoLeak(r.messages);
      const errors = errorsOf(r.messages);
      // Errors keep only what the statement contained (masking/errors.ts): the echoed value is withheld.
      expect(errors[0].get('M')).toBe('invalid input syntax for type integer: "…"');
      expect(errors[1].get('M')).toBe('invalid input syntax for type integer: "…"');
      const notice = r.messages.find((m) => m.type === 'N');
      expect(notice?.body.toString()).toContain('value …'); // the detector masked it, then the token was withheld
      expect(notice?.body.toString()).toContain('[withheld by tightloop: masking is on]'); // detail
      expect(errors.filter((e) => /masking-bypass/.test(e.get('M') ?? '')).length).toBe(2);
      expect(r.messages.some((m) => m.type === 'S' && m.body.toString().startsWith('application_name\0*****@'))).toBe(true);
      expect(r.messages.some((m) => m.type === 'A' && m.body.includes(Buffer.from('***-**-6789')))).toBe(true);
    } finally {
      raw.close();
    }
  });

  it('refuses COPY OUT options that would escape characters inside values past the detectors', async () => {
    const raw = await connect();
    try {
      for (const opts of ["DELIMITER '@'", "DELIMITER ' '", "FORMAT csv, QUOTE '@'", "FORMAT csv, ESCAPE '@'", "DELIMITER '-'", "ENCODING 'LATIN1', DELIMITER '.'"]) {
        const r = await roundTrip(raw, [queryMessage(`COPY (SELECT id, email, card, ssn FROM customers) TO STDOUT (${opts})`)], 'm6');
        expect(r.ended).toBe(false);
        expectNoLeak(r.messages);
        expect(errorsOf(r.messages)[0]?.get('M'), opts).toMatch(/masking-bypass/);
      }
      const ok = await roundTrip(raw, [queryMessage("COPY (SELECT id, email FROM customers ORDER BY id) TO STDOUT (FORMAT csv, DELIMITER ';')")], 'm7');
      expectNoLeak(ok.messages);
      expect(ok.messages.filter((m) => m.type === 'd').map((m) => m.body.toString())).toEqual(['1;*****@******e.com\n', '2;***@******e.org\n']);
    } finally {
      raw.close();
    }
  });
});

describe('class 4: binary results', () => {
  it('int8, numeric, float8 and text in binary (Bind result formats) are masked', async () => {
    const raw = await connect();
    try {
      const sql = "SELECT replace(card, ' ', '')::int8 AS a, replace(card, ' ', '')::numeric AS b, replace(card, ' ', '')::float8 AS c, email FROM customers WHERE id = 1";
      const r = await roundTrip(raw, [parseMessage('', sql), bind('', '', [], [1]), execute(''), SYNC], 'm8');
      expectNoLeak(r.messages);
      const row = r.messages.find((m) => m.type === 'D') as Message;
      const [a, b, c, email] = rowValues(row.body, true);
      expect(Buffer.from(a ?? '', 'hex').readBigInt64BE()).toBe(1000000000001111n);
      expect(b).toBe('000400030000000003e8000000000457'); // numeric 1000000000001111
      expect(Buffer.from(c ?? '', 'hex').readDoubleBE()).toBe(1000000000001111);
      expect(Buffer.from(email ?? '', 'hex').toString()).toBe('*****@******e.com');
    } finally {
      raw.close();
    }
  });

  it('binary arrays of judged types are masked element by element', async () => {
    const raw = await connect();
    try {
      const sql = "SELECT ARRAY[regexp_replace(card, '[^0-9]', '', 'g')::int8, 7] AS a, ARRAY[[email, NULL], [ssn, 'x']] AS b FROM customers WHERE id = 1";
      const r = await roundTrip(raw, [parseMessage('', sql), bind('', '', [], [1]), execute(''), SYNC], 'm15');
      expectNoLeak(r.messages);
      const [a, b] = rowValues((r.messages.find((m) => m.type === 'D') as Message).body, true).map((x) => Buffer.from(x ?? '', 'hex'));
      // int8[]: 1 dimension, no nulls, oid 20, 2 elements from 1, then (8, value) twice.
      expect(a.readInt32BE(0)).toBe(1);
      expect(a.readBigInt64BE(24)).toBe(1000000000001111n);
      expect(a.readBigInt64BE(36)).toBe(7n);
      expect(b.toString('latin1')).toContain('*****@******e.com');
      expect(b.toString('latin1')).toContain('***-**-6789');
    } finally {
      raw.close();
    }
  });

  it('DECLARE ... BINARY CURSOR and FETCH in SQL: masked', async () => {
    const raw = await connect();
    try {
      const r = await roundTrip(raw, [queryMessage("BEGIN; DECLARE bc BINARY CURSOR FOR SELECT regexp_replace(card, '[^0-9]', '', 'g')::int8 AS a, ssn FROM customers ORDER BY id; FETCH ALL bc; COMMIT")], 'm9');
      expectNoLeak(r.messages);
      const [first, second] = rows(r.messages, true);
      expect(Buffer.from(first[0] ?? '', 'hex').readBigInt64BE()).toBe(1000000000001111n);
      expect(Buffer.from(first[1] ?? '', 'hex').toString()).toBe('***-**-6789');
      expect(Buffer.from(second[0] ?? '', 'hex').readBigInt64BE()).toBe(1000000000000004n);
    } finally {
      raw.close();
    }
  });

  it('a binary column of a type the masker cannot read ends the session before any row', async () => {
    const raw = await connect();
    try {
      const r = await roundTrip(raw, [parseMessage('', 'SELECT ROW(email, card) AS r FROM customers'), bind('', '', [], [1]), execute(''), SYNC], 'm10');
      expect(r.ended).toBe(true);
      expectNoLeak(r.messages);
      expect(r.messages.some((m) => m.type === 'D')).toBe(false);
      const fatal = errorsOf(r.messages).at(-1);
      expect(fatal?.get('S')).toBe('FATAL');
      expect(fatal?.get('C')).toBe('0A000');
    } finally {
      raw.close();
    }
  });
});

describe('next classes: value forms the detectors could not read, COPY FROM STDIN windows', () => {
  it('float8 in exponent form, bytea (hex and escape output) and tsvector are read decoded and masked', async () => {
    const raw = await connect();
    try {
      const sql = "SELECT regexp_replace(card, '[^0-9]', '', 'g')::float8 AS f, convert_to(email, 'UTF8') AS b, to_tsvector('simple', email) AS v FROM customers WHERE id = 1";
      const r = await roundTrip(raw, [queryMessage(sql), queryMessage("SET bytea_output = 'escape'"), queryMessage(sql)], 'm11');
      expectNoLeak(r.messages);
      const [hex, escape] = rows(r.messages).slice(0, 2);
      expect(hex[0]).toBe('1000000000001111');
      expect(Buffer.from((hex[1] ?? '').slice(2), 'hex').toString()).toBe('*****@******e.com');
      expect(hex[2]).toBe("'*****@******e.com':1");
      expect(escape[1]).toBe('*****@******e.com');
    } finally {
      raw.close();
    }
  });

  it('COPY FROM STDIN in the extended protocol: the Sync inside the COPY window is ignored, as the server does', async () => {
    const raw = await connect();
    try {
      raw.send(parseMessage('', 'COPY copy_in (a, b) FROM STDIN'), bind('', ''), describeMessage('P', ''), execute(''), SYNC);
      const started = await collect(raw, (m) => m.some((x) => x.type === 'G'));
      expect(started.messages.map((m) => m.type).join('')).toBe('12nG');
      const r = await roundTrip(raw, [frame('d', Buffer.from('1\tone\n2\ttwo\n')), frame('c'), SYNC], 'm12');
      expect(r.ended).toBe(false);
      expect(r.messages.map((m) => m.type).join('')).toBe('CZTDCZ');
      // Bad data: the server's error ends the COPY, and the client's next Query is an ordinary one.
      raw.send(queryMessage('COPY copy_in (a, b) FROM STDIN'));
      await collect(raw, (m) => m.some((x) => x.type === 'G'));
      raw.send(frame('d', Buffer.from('not-a-number\tx\n')));
      const failed = await collect(raw, readyCount(1));
      expect(errorsOf(failed.messages)[0]?.get('C')).toBe('22P02');
      expect((await roundTrip(raw, [], 'm16')).ended).toBe(false);
      const inside = await connect();
      inside.send(queryMessage('COPY copy_in (a, b) FROM STDIN'));
      await collect(inside, (m) => m.some((x) => x.type === 'G'));
      // A request inside the COPY window: the gateway cannot follow it, so the session ends.
      const bad = await roundTrip(inside, [frame('d', Buffer.from('3\tthree\n'))], 'm13');
      expect(bad.ended).toBe(true);
      expect(errorsOf(bad.messages).at(-1)?.get('S')).toBe('FATAL');
      inside.close();
    } finally {
      raw.close();
    }
  });

  it('Execute with a row limit: every PortalSuspended re-Execute is masked', async () => {
    const raw = await connect();
    try {
      const r = await roundTrip(raw, [queryMessage('BEGIN'), parseMessage('', 'SELECT email, card FROM customers ORDER BY id'), bind('p', '', [], [1]), execute('p', 1), execute('p', 1), execute('p', 1), SYNC, queryMessage('COMMIT')], 'm14');
      expectNoLeak(r.messages);
      expect(r.messages.map((m) => m.type).join('')).toBe('CZ12DsDsCZCZTDCZ');
    } finally {
      raw.close();
    }
  });
});

describe('a PostgreSQL 18.4 crash the gateway keeps out of reach', () => {
  it('FETCH/MOVE in any extended-protocol Parse is refused (a Describe of it after the cursor closed kills the backend)', async () => {
    const raw = await connect();
    const bystander = await connect();
    try {
      const named = await roundTrip(raw, [
        queryMessage('DECLARE c1 CURSOR WITH HOLD FOR SELECT 1 AS x'),
        parseMessage('s1', 'FETCH 1 FROM c1'), SYNC,
        queryMessage('CLOSE c1'),
        describeMessage('S', 's1'), SYNC,
      ], 'm20');
      expect(named.ended).toBe(false);
      const errors = errorsOf(named.messages);
      expect(errors[0]?.get('C')).toBe('42501');
      expect(errors[0]?.get('M')).toMatch(/FETCH or MOVE/);
      // The Describe names a statement that was never made: an ordinary error, the server lives.
      expect(errors[1]?.get('C')).toBe('26000');
      // Attack round 3 #9: the unnamed statement survives a CLOSE run through a named statement.
      const unnamed = await roundTrip(raw, [
        queryMessage('DECLARE c2 CURSOR WITH HOLD FOR SELECT 7 AS x'),
        parseMessage('', 'FETCH 1 FROM c2'), SYNC,
        parseMessage('s2', 'CLOSE c2'), bind('', 's2'), execute(''), SYNC,
        describeMessage('S', ''), SYNC,
        parseMessage('', 'MOVE 1 IN c2'), SYNC,
      ], 'm21');
      expect(unnamed.ended).toBe(false);
      const refused = errorsOf(unnamed.messages);
      expect(refused[0]?.get('C')).toBe('42501');
      expect(refused[0]?.get('M')).toMatch(/FETCH or MOVE/);
      expect(refused.at(-1)?.get('M')).toMatch(/FETCH or MOVE/);
      // Another session of the cluster lives on; FETCH in a simple Query works as before.
      const other = await roundTrip(bystander, [
        queryMessage('DECLARE c3 CURSOR WITH HOLD FOR SELECT 8 AS x'), queryMessage('FETCH 1 FROM c3'), queryMessage('CLOSE c3'),
      ], 'm22');
      expect(other.ended).toBe(false);
      expect(errorsOf(other.messages)).toEqual([]);
      expect(rows(other.messages)).toContainEqual(['8']);
    } finally {
      raw.close();
      bystander.close();
    }
  });
});
