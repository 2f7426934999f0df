import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rawClient, startApi, type GatewayHarness, type Upstream } from './harness.conformance.js';
import { luhnValid } from './masking/index.js';
import { decodeErrorFields } from './wire/decode.js';
import { queryMessage } from './wire/encode.js';
import { grantAccess, shopResource, startGatewayTest, stopGatewayTest } from '../../test/helpers/gateway.js';

/**
 * Issue 15, class 6, through the gateway against real PostgreSQL: columns protected only by the
 * content detectors (no column rule) are classified from samples of their values, so any value
 * derived from them is masked although it no longer looks like PII; errors and notices keep no
 * value either; catalog statistics (pg_stats) hold no way around.
 */

let upstream: Upstream;
let h: GatewayHarness;

/** A Luhn-valid 16-digit number from a 15-digit prefix. */
function card(prefix: string): string {
  for (let d = 0; d <= 9; d++) if (luhnValid(prefix + String(d))) return prefix + String(d);
  throw new Error('unreachable');
}

const PEOPLE = [
  { id: 1, name: 'Ada Quimbleton', email: 'ada.quimbleton@zorpmail.com', phone: '+1 415 555 7301', card: card('453914880343646'), ssn: '219-09-9991' },
  { id: 2, name: 'Grace Vantorf', email: 'grace.vantorf@zorpmail.com', phone: '+1 212 555 7302', card: card('601100099013942'), ssn: '457-55-5462' },
  { id: 3, name: 'Linus Brekkard', email: 'linus.brekkard@zorpmail.com', phone: '+1 646 555 7303', card: card('510510510510510'), ssn: '323-45-6781' },
];
const spaced = (c: string): string => c.replace(/(\d{4})(?=\d)/g, '$1 ');

/** Fragments of PII that must never reach the client, in any (trivially reversible) form. */
const SECRETS: string[] = PEOPLE.flatMap((p) => [
  p.email.split('@')[0].split('.')[1], // quimbleton
  p.card.slice(4, 12),
  p.phone.replace(/\D/g, '').slice(-7),
  p.ssn.replace(/\D/g, ''),
  'zorpmail',
]);

/** Every form of a text the attack could have encoded it in. */
function forms(text: string): string[] {
  const out = [text, [...text].reverse().join('')];
  for (const tok of text.match(/[A-Za-z0-9+/=]{8,}/g) ?? []) out.push(Buffer.from(tok, 'base64').toString('latin1'));
  for (const tok of text.match(/(?:[0-9a-f]{2}){4,}/gi) ?? []) out.push(Buffer.from(tok, 'hex').toString('latin1'));
  out.push(text.replace(/\\\\?([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8))));
  // Characters shifted by one (chr(ascii(c) + 1)).
  out.push([...text].map((c) => String.fromCharCode(c.charCodeAt(0) - 1)).join(''));
  return out.flatMap((f) => [f.toLowerCase(), f.toLowerCase().replace(/[^a-z0-9]/g, '')]);
}

function leaks(text: string): string[] {
  const all = forms(text);
  return SECRETS.filter((s) => all.some((f) => f.includes(s)));
}

/** Rows, error fields and notices of one statement, as one text. */
async function observe(c: pg.Client, sql: string, notices: string[]): Promise<string> {
  notices.length = 0;
  try {
    const r = await c.query<Record<string, unknown>>(sql);
    // A string of several statements answers one result each (pg's types know only one).
    const results = Array.isArray(r) ? (r as pg.QueryResult<Record<string, unknown>>[]) : [r];
    return JSON.stringify(results.map((x) => x.rows)) + notices.join('\n');
  } catch (err) {
    const e = err as pg.DatabaseError;
    if (c.listenerCount('error') === 0) c.on('error', () => undefined);
    return [e.message, e.detail, e.hint, e.where, e.internalQuery, e.schema, e.table, e.column, e.constraint, ...notices].join('\n');
  }
}

beforeAll(async () => {
  ({ upstream, h } = await startGatewayTest());
  const a = await upstream.admin();
  try {
    const rows = PEOPLE.map((p) => `(${p.id}, '${p.name}', '${p.email}', '${p.phone}', '${spaced(p.card)}', '${p.ssn}', 'likes tea')`);
    await a.query(`CREATE TABLE people (id int PRIMARY KEY, name text, email text, phone text, card_number text, ssn text, memo text);
      INSERT INTO people VALUES ${rows.join(', ')};
      INSERT INTO people SELECT i, 'n' || i, NULL, NULL, NULL, NULL, 'plain memo ' || i FROM generate_series(10, 200) i;
      UPDATE people SET memo = 'write to grace.vantorf@zorpmail.com' WHERE id = 180;
      CREATE VIEW people_v AS SELECT id, reverse(email) AS r, card_number AS k FROM people;
      ANALYZE people`);
  } finally {
    await a.end();
  }
  // The demo's policy shape: a column rule on the name only; e-mail, phone, card and SSN are left to the detectors.
  await shopResource(h, upstream, 'people-demo', { masking: { mode: 'partial', columns: [{ name: 'name', mode: 'hash' }] } });
  await grantAccess(h, h.users.bob, 'people-demo', 'read');
  await grantAccess(h, h.users.bob, 'shop', 'read');
  await grantAccess(h, h.users.alice, 'people-demo', 'write');
});
afterAll(() => stopGatewayTest(h, upstream));

/** Rewrites of detector-only columns: every one returns (or errs with) something derived from PII. */
const REWRITES: string[] = [
  "SELECT card_number || 'x' AS v FROM people WHERE id < 10",
  "SELECT phone || 'x' AS v FROM people WHERE id < 10",
  "SELECT regexp_replace(card_number, '(\\d)', '\\1-', 'g') AS v FROM people WHERE id < 10",
  "SELECT translate(email, '@.', '#,') AS v FROM people WHERE id < 10",
  "SELECT split_part(email, '@', 1) AS v FROM people WHERE id < 10",
  "SELECT split_part(email, '@', 2) AS v FROM people WHERE id < 10",
  'SELECT left(email, 10) AS a, right(email, 12) AS b FROM people WHERE id < 10',
  'SELECT reverse(card_number) AS v FROM people WHERE id < 10',
  "SELECT encode(convert_to(email, 'UTF8'), 'base64') AS v FROM people WHERE id < 10",
  "SELECT encode(convert_to(email, 'UTF8'), 'hex') AS v FROM people WHERE id < 10",
  "SELECT encode(convert_to(email, 'UTF8'), 'escape') AS v FROM people WHERE id < 10",
  "SELECT convert_to(email, 'UTF8') AS v, email::bytea AS w FROM people WHERE id < 10",
  "SELECT substr(ssn, 1, 3) || '/' || substr(ssn, 5, 2) || '/' || substr(ssn, 8) AS v FROM people WHERE id < 10",
  'SELECT lower(email) AS a, upper(email) AS b FROM people WHERE id < 10',
  "SELECT concat(reverse(email), '!') AS v FROM people WHERE id < 10",
  "SELECT format('%s', reverse(email)) AS v FROM people WHERE id < 10",
  'SELECT array_agg(reverse(email))::text AS v FROM people WHERE id < 10',
  "SELECT string_agg(reverse(card_number), ';') AS v FROM people WHERE id < 10",
  'SELECT to_json(reverse(email))::text AS a, json_build_object(\'e\', reverse(phone))::text AS b FROM people WHERE id < 10',
  'SELECT row_to_json(p)::text AS v FROM people p WHERE id < 10',
  'SELECT md5(email) AS v FROM people WHERE id < 10',
  "SELECT overlay(email placing '#' from 1 for 1) AS v FROM people WHERE id < 10",
  'SELECT repeat(reverse(ssn), 2) AS v FROM people WHERE id < 10',
  "SELECT lpad(reverse(phone), 30, '*') AS v FROM people WHERE id < 10",
  'SELECT CASE WHEN id > 0 THEN reverse(email) END AS v FROM people WHERE id < 10',
  "SELECT id, string_agg(chr(ascii(substr(email, i, 1)) + 1), '' ORDER BY i) AS v FROM people, generate_series(1, 40) i WHERE id < 10 GROUP BY id",
  'SELECT i, ascii(substr(email, i, 1)) AS v FROM people, generate_series(1, 30) i WHERE id = 1',
  "SELECT strpos(email, 'q') AS a, position('@' in email) AS b FROM people WHERE id < 10",
  '(SELECT reverse(email) AS v FROM people WHERE id = 1)',
  'SELECT (SELECT reverse(email) FROM people WHERE id = 2) AS v',
  'WITH x AS (SELECT email FROM people WHERE id < 10) SELECT reverse(email) AS v FROM x',
  'SELECT l.v FROM people p, LATERAL (SELECT reverse(p.email) AS v) l WHERE p.id < 10',
  "SELECT replace(replace(card_number, ' ', ''), '1', 'one') AS v FROM people WHERE id < 10",
  "SELECT translate(ssn, '0123456789-', 'abcdefghij') AS v FROM people WHERE id < 10",
  'SELECT r AS a, reverse(k) AS b FROM people_v WHERE id < 10',
  'SELECT reverse(email) AS v FROM people WHERE id < 10 UNION ALL SELECT \'x\'',
  'SELECT v FROM (SELECT reverse(email) AS v FROM people WHERE id < 10) s',
  'SELECT reverse(email)::int AS v FROM people WHERE id = 1',
  "SELECT (split_part(email, '@', 1) || 'x')::int AS v FROM people WHERE id = 1",
  "SELECT replace(card_number, ' ', '')::int AS v FROM people WHERE id = 1",
  "SELECT ('\"' || reverse(email) || '\"')::int AS v FROM people WHERE id = 1",
  'SELECT reverse(email)::regclass AS v FROM people WHERE id = 1',
  'SELECT reverse(email)::date AS v FROM people WHERE id = 1',
  'SELECT reverse(email)::json AS v FROM people WHERE id = 1',
  "SELECT chr(ascii(substr(email, 3, 1)) + 1114112) AS v FROM people WHERE id = 1",
  'SELECT make_date(ascii(substr(email, 1, 1)), 13, 1) AS v FROM people WHERE id = 1',
  "SELECT to_date(reverse(email), 'YYYY') AS v FROM people WHERE id = 1",
  'SELECT histogram_bounds::text AS a, most_common_vals::text AS b FROM pg_stats WHERE tablename = \'people\'',
  'SELECT s::text AS v FROM pg_stats s WHERE tablename = \'people\'',
  // Statement texts of other sessions (an application's literals) are data too.
  "SELECT query AS v FROM pg_stat_activity WHERE query LIKE '%zorp%'",
];

describe('detector-only columns are classified and followed by lineage (class 6)', () => {
  it.each(REWRITES)('%s leaks no PII (simple and extended protocol)', async (sql) => {
    for (const resource of ['people-demo', 'shop']) {
      const c = new pg.Client({ connectionString: h.url(h.users.bob, resource) });
      const notices: string[] = [];
      c.on('notice', (n) => notices.push([n.message, n.detail, n.hint, n.where].join('\n')));
      await c.connect();
      try {
        for (const q of [sql, { text: sql, name: 'p' }]) {
          const seen = await observe(c, q as string, notices);
          expect(leaks(seen), `${resource}: ${sql} → ${seen.slice(0, 400)}`).toEqual([]);
        }
      } finally {
        await c.end().catch(() => undefined);
      }
    }
  });

  it('a bijective rewrite into punctuation keeps nothing: a full mask is a fixed token, not the shape', async () => {
    const c = new pg.Client({ connectionString: h.url(h.users.bob, 'people-demo') });
    await c.connect();
    try {
      const from = 'abcdefghijklmnopqrstuvwxyz0123456789';
      const to = '!"#$%&()*+,-./:;<=>?[]^_{|}~!"#$%&()*+'.slice(0, from.length);
      for (const col of ['email', 'card_number', 'phone']) {
        const r = (await c.query(`SELECT translate(lower(${col}), '${from}', '${to.replace(/'/g, "''")}') AS v FROM people WHERE id < 4 ORDER BY id`)).rows as { v: string }[];
        for (const { v } of r) expect(v, col).toBe('********');
      }
    } finally {
      await c.end().catch(() => undefined);
    }
  });

  it('plain references stay useful: masked in the policy mode, other columns as they were', async () => {
    const c = new pg.Client({ connectionString: h.url(h.users.bob, 'people-demo') });
    await c.connect();
    try {
      const r = (await c.query('SELECT id, email, card_number, memo, length(memo) AS n FROM people WHERE id IN (1, 10) ORDER BY id')).rows as Record<string, unknown>[];
      expect(r[0].email).not.toContain('quimbleton');
      expect(String(r[0].email).endsWith('.com')).toBe(true); // partial: the last four letters or digits
      expect(String(r[0].card_number).endsWith(PEOPLE[0].card.slice(-4))).toBe(true);
      expect(r[1]).toMatchObject({ id: 10, memo: 'plain memo 10', n: 13 });
      // Tables without PII: derived values are not masked.
      const o = (await c.query<{ s: string; m: number }>('SELECT sum(total)::text AS s, max(customer) + 1 AS m FROM orders')).rows[0];
      expect(o).toEqual({ s: '5050', m: 3 });
    } finally {
      await c.end();
    }
  });

  it('a value a detector matches in a column not yet classified classifies it from then on (seen)', async () => {
    const c = new pg.Client({ connectionString: h.url(h.users.bob, 'people-demo') });
    await c.connect();
    try {
      // Row 180 lies past the sample: memo is not classified, so a rewrite would still leak...
      const plain = (await c.query<{ memo: string }>('SELECT memo FROM people WHERE id = 180')).rows[0].memo;
      expect(plain).not.toContain('vantorf'); // the detector masks the plain value, and memo is classified from now on
      const r = (await c.query<{ v: string }>('SELECT reverse(memo) AS v FROM people WHERE id = 180')).rows[0].v;
      expect(leaks(r)).toEqual([]);
      expect(r).not.toContain('ftronav');
    } finally {
      await c.end();
    }
  });

  it('values a client supplies never classify a column for everyone: literals, parameters and expressions are not learnt', async () => {
    const bob = new pg.Client({ connectionString: h.url(h.users.bob, 'people-demo') });
    await bob.connect();
    const alice = new pg.Client({ connectionString: h.url(h.users.alice, 'people-demo') });
    await alice.connect();
    try {
      // Each output is named after a real, unclassified column and holds an SSN of bob's own.
      await bob.query("SELECT '078-05-1120'::text AS id");
      await bob.query('SELECT $1::text AS id', ['078-05-1120']);
      await bob.query("SELECT '078-05-1120 ' || id AS id FROM people WHERE id = 1");
      await bob.query("SELECT id, '078-05-1120' AS memo FROM people WHERE id = 1");
      // alice's ordinary queries on id are unaffected.
      const r = (await alice.query<{ n: number; t: string }>('SELECT id + 1 AS n, id::text AS t FROM people WHERE id = 1')).rows[0];
      expect(r).toEqual({ n: 2, t: '1' });
    } finally {
      await bob.end();
      await alice.end();
    }
  });

  it('a table created after the catalog was read is treated as classified until it is sampled', async () => {
    const c = new pg.Client({ connectionString: h.url(h.users.bob, 'people-demo') });
    await c.connect();
    await new Promise((r) => setTimeout(r, 2_000)); // a background catalog refresh the connect started has ended
    const a = await upstream.admin();
    try {
      await a.query("CREATE TABLE late_contacts (id int, contact text); INSERT INTO late_contacts VALUES (1, 'linus.brekkard@zorpmail.com')");
      const r = (await c.query<{ v: string; n: number }>("SELECT translate(contact, '@.', '  ') AS v, id + 1 AS n FROM late_contacts")).rows[0];
      expect(leaks(r.v), r.v).toEqual([]);
      const plain = (await c.query<{ contact: string }>('SELECT contact FROM late_contacts')).rows[0].contact;
      expect(plain).not.toContain('brekkard'); // the detectors still read plain references
    } finally {
      await a.end();
      await c.end();
    }
  });

  it('COPY of derived PII is refused; a cursor and RETURNING are traced; RAISE texts are withheld', async () => {
    const raw = await rawClient(h.gateway.port ?? 0, h.users.bob, 'people-demo');
    try {
      raw.send(queryMessage('COPY (SELECT reverse(email) FROM people) TO STDOUT'));
      const err = (await raw.until('Z')).find((m) => m.type === 'E');
      expect(decodeErrorFields(err?.body ?? Buffer.alloc(0)).get('M')).toContain('"masking-bypass"');
    } finally {
      raw.close();
    }
    const c = new pg.Client({ connectionString: h.url(h.users.alice, 'people-demo') });
    const notices: string[] = [];
    c.on('notice', (n) => notices.push([n.message, n.detail, n.hint, n.where].join('\n')));
    await c.connect();
    try {
      const cursor = await observe(c, 'BEGIN; DECLARE k CURSOR FOR SELECT reverse(email) AS v FROM people WHERE id < 10; FETCH ALL FROM k; COMMIT', notices);
      expect(leaks(cursor), cursor).toEqual([]);
      const returning = await observe(c, 'UPDATE people SET id = id WHERE id = 1 RETURNING reverse(email) AS v, split_part(email, \'@\', 2) AS w', notices);
      expect(leaks(returning), returning).toEqual([]);
      const raise = await observe(c, "DO $$ DECLARE e text; BEGIN SELECT reverse(email) INTO e FROM people WHERE id = 1; RAISE NOTICE 'v=%', e; RAISE EXCEPTION 'x=%', e USING DETAIL = e, HINT = e; END $$", notices);
      expect(leaks(raise), raise).toEqual([]);
    } finally {
      await c.end();
    }
  });

  it('the policy view shows classified columns; explicit rules win and mode none exempts', async () => {
    const api = await startApi(h);
    try {
      const get = async (): Promise<{ classification: { columns: { column: string; source: string; mode: string; overriddenBy?: string }[] } }> =>
        (await fetch(`${api.url}/api/resources/people-demo`, { headers: { authorization: `Bearer ${h.admin.token}` } })).json() as never;
      const cols = (await get()).classification.columns;
      const by = (n: string) => cols.find((x) => x.column === n);
      expect(by('email')).toMatchObject({ source: 'sample', mode: 'partial' });
      expect(by('card_number')).toMatchObject({ source: 'sample' });
      expect(by('ssn')).toBeDefined();
      expect(by('name')).toBeUndefined();
      expect(by('id')).toBeUndefined();
      // Exempt memo from classification: a rewrite of it is then only scanned by the detectors.
      await h.gateway.resources.setPolicy('people-demo', { masking: { mode: 'partial', columns: [{ name: 'name', mode: 'hash' }, { name: 'ssn', mode: 'none' }] } });
      const c = new pg.Client({ connectionString: h.url(h.users.bob, 'people-demo') });
      await c.connect();
      try {
        const v = (await c.query<{ v: string }>("SELECT translate(ssn, '0123456789-', 'abcdefghij') AS v FROM people WHERE id = 1")).rows[0].v;
        expect(v).toBe('cbjajjjjb'); // what the admin chose: no longer masked by lineage (219-09-9991, letter for digit)
      } finally {
        await c.end();
      }
      expect((await get()).classification.columns.find((x) => x.column === 'ssn')).toMatchObject({ mode: 'none', overriddenBy: 'ssn' });
    } finally {
      await api.close();
    }
  });
});
