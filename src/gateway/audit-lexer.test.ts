import { createHash } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AUDIT_TEXT_CHARS } from './audit-text.js';
import { asUser, cli, startApi, startHarness, startUpstream, type GatewayHarness, type Upstream } from './harness.conformance.js';

/**
 * Attack round 7 F4 and F7. A text over AUDIT_TEXT_CHARS is recorded without its comments; a
 * hand-written stripper did not nest block comments as PostgreSQL does and read `--` inside a
 * block comment as a line comment, so `/* /* *\/ -- *\/ CODE` ran CODE and the record dropped it
 * (also for an approved UPDATE). Comments are now removed by the server's own lexer. Checked
 * against real PostgreSQL: the recorded text, run directly, gives exactly the rows the statement
 * gave. And the normalised `sql` is shortened when long (its `text` is whole); an approver sees
 * the statement without its comments.
 */

let upstream: Upstream;
let h: GatewayHarness;
const sys = (): { userId: string; userName: string; role: string } => ({ userId: h.admin.id, userName: 'admin', role: 'admin' });

beforeAll(async () => {
  upstream = await startUpstream();
  h = await startHarness(upstream);
  await h.gateway.access.grant(sys(), { subjectKind: 'user', subject: h.users.bob.id, resource: 'shop', mode: 'read' });
  // DDL held for a reviewer.
  await h.gateway.resources.create({
    name: 'shop-review', host: '127.0.0.1', port: upstream.port, database: 'shop', user: 'app_scram',
    credential: 'env:TIGHTLOOP_TEST_PG_SCRAM', tls: { mode: 'disable' },
    policy: { guardrails: { rules: { ddl: 'approve' } } },
  });
  await h.gateway.access.grant(sys(), { subjectKind: 'user', subject: h.users.alice.id, resource: 'shop-review', mode: 'write' });
});
afterAll(async () => {
  await h?.close();
  await upstream?.stop();
});

type Data = { sql?: string | null; sqlChars?: number; sqlSha256?: string; text?: string; textChars?: number; textSha256?: string; constants?: string[]; decision?: string; request?: string; variants?: Data[] };

async function records(actor: string, kind = 'statement'): Promise<Data[]> {
  await new Promise((r) => setTimeout(r, 400)); // the statement log's window
  await h.gateway.audit.flush();
  return (await h.gateway.audit.query({ kind, actor, limit: 1000 })).flatMap((r) => {
    const d = r.data as Data;
    return d.variants === undefined ? [d] : d.variants.map((v) => ({ ...d, ...v }));
  });
}

const sha = (s: string): string => createHash('sha256').update(s).digest('hex');
const PAD = `/*${'p'.repeat(AUDIT_TEXT_CHARS + 800)}*/ `;

/** Each ends in a way a stripper that differs from PostgreSQL's lexer would get wrong. */
const TRICKY = [
  // Nested block comment with `--` inside: the server runs the columns after it.
  "select 1 as a /* /* */ -- */ , 'hidden-7' as h, 3 as who\n",
  // The opposite: what looks like code inside a nested comment never runs.
  "select 1 as a /* /* */ , 'never' as h /* */ */ , 2 as b",
  // A dollar quote holding comment openers.
  'select $q$ /* -- $q$ as a, 4 as b /* x */',
  // An E'' string with `--` and an escaped quote.
  "select E'--\\' /*' as a, 5 as b -- tail\n, 6 as c",
  // A U& identifier and a quoted identifier holding comment characters.
  'select 7 as U&"d\\0061t/*", 8 as "x--y" /* c */, 9 as z',
  // Standard strings ending in a backslash, then a comment opener in the next one.
  "select 'a\\' as a, '/*' as b, 10 as c -- */ , 11 as d\n",
];

describe('the audit text is what ran, lexed as the server lexes (attack round 7 F4)', () => {
  it('the recorded text of each long statement, run directly, gives the same rows', async () => {
    const got = new Map<string, unknown[]>();
    await asUser(h, h.users.bob, 'shop', async (c) => {
      for (const t of TRICKY) got.set(t, (await c.query({ text: PAD + t, rowMode: 'array' })).rows);
    });
    const recs = await records('bob');
    const direct = await upstream.admin();
    try {
      for (const t of TRICKY) {
        const rec = recs.find((d) => d.textSha256 === sha(PAD + t));
        expect(rec?.textChars, t).toBe((PAD + t).length);
        expect(rec?.text, t).not.toContain('ppp');
        const again = (await direct.query({ text: rec?.text ?? '', rowMode: 'array' })).rows;
        expect({ t, rows: again }).toEqual({ t, rows: got.get(t) });
      }
    } finally {
      await direct.end();
    }
    const hidden = recs.find((d) => d.textSha256 === sha(PAD + TRICKY[0]));
    expect(hidden?.text).toBe("select 1 as a , 'hidden-7' as h, 3 as who");
  });

  it('a held write shows the approver, the request record and the approved run\'s audit the code after a nested comment', async () => {
    const sql = `${PAD}CREATE TABLE f4_held (a int /* /* */ -- */ , hidden_f4 int\n)`;
    const c = new pg.Client({ connectionString: h.url(h.users.alice, 'shop-review') });
    await c.connect();
    try {
      const held = await c.query(sql).then(() => null, (e: Error) => e);
      const id = /request (\w+)\)/.exec(held?.message ?? '')?.[1] ?? '';
      expect(id).not.toBe('');
      const req = await h.gateway.access.get(id);
      expect(req.statement).toBe('CREATE TABLE f4_held (a int   , hidden_f4 int\n)');
      const created = (await records('alice', 'request.created')).find((d) => d.sql?.includes('f4_held'));
      expect(created?.sql).toBe('CREATE TABLE f4_held (a int , hidden_f4 int )');
      const api = await startApi(h);
      try {
        const shown = await cli(['access', 'approve', id, '--url', api.url, '--token', h.admin.token]);
        expect(shown.stdout).toContain('hidden_f4 int');
        expect(shown.stdout).not.toContain('ppp');
      } finally {
        await api.close();
      }
      await h.gateway.access.approve(sys(), id);
      await c.query(sql);
    } finally {
      await c.end();
    }
    const starts = await records('alice', 'statement.start');
    expect(starts.find((d) => d.textSha256 === sha(sql))?.text).toBe('CREATE TABLE f4_held (a int , hidden_f4 int )');
  });
});

describe('the normalised sql is bounded like the text (attack round 7 F7)', () => {
  it('a 1 MB comment does not reach the record; a long statement\'s sql keeps head, tail and a hash, its text is whole', async () => {
    const big = `select 12 as n /* ${'z'.repeat(1_000_000)} */`;
    const long = `select ${Array.from({ length: 1000 }, (_, i) => `${i} as column_with_a_long_alias_${i}`).join(', ')}`;
    await asUser(h, h.users.bob, 'shop', async (c) => {
      await c.query(big);
      await c.query(long);
    });
    const recs = await records('bob');
    const b = recs.find((d) => d.textSha256 === sha(big));
    expect(b?.sql).toBe('select $1 as n');
    expect(b?.sqlChars).toBeGreaterThan(1_000_000);
    expect(b?.sqlSha256).toMatch(/^[0-9a-f]{64}$/);
    const l = recs.find((d) => d.text === long); // whole, without a hash (attack round 8 G3)
    expect(l?.textSha256).toBeUndefined();
    expect(l?.sql?.length).toBe(AUDIT_TEXT_CHARS + 1);
    expect(l?.sql?.startsWith('select $1 as column_with_a_long_alias_0, $2')).toBe(true);
    expect(l?.sql?.endsWith('$1000 as column_with_a_long_alias_999')).toBe(true);
    // The 1 MB comment makes no 1 MB record (a long statement's record grows with its text).
    expect(JSON.stringify(b).length).toBeLessThan(64 * 1024);
  });

  it('names a failed login chooses (user, database) are cut in the record; a session\'s application_name is whole', async () => {
    const app = `app-${'a'.repeat(5_000)}`; // PostgreSQL's startup packet holds 10,000 bytes
    const c = new pg.Client({ connectionString: h.url(h.users.bob, 'shop'), application_name: app });
    await c.connect();
    await c.end();
    const user = `u${'x'.repeat(20_000)}`;
    const bad = new pg.Client({ host: '127.0.0.1', port: h.gateway.port ?? 0, user, password: 'nope', database: `d${'y'.repeat(20_000)}` });
    await expect(bad.connect()).rejects.toThrow();
    await h.gateway.audit.flush();
    const open = (await h.gateway.audit.query({ kind: 'connection.open', actor: 'bob', limit: 100 })).find((r) => String((r.data as { application?: string }).application).startsWith('app-'));
    // A logged-in session's settings reach the server and can be read back: recorded whole (attack round 8).
    expect((open?.data as { application: string }).application).toBe(app);
    const failed = (await h.gateway.audit.query({ kind: 'auth.failed', limit: 100 })).find((r) => r.actor?.startsWith('uxxx'));
    expect(failed?.actor).toBe(`${user.slice(0, 128)}…`);
    expect(failed?.resource).toBe(`d${'y'.repeat(127)}…`);
  });
});
