import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { asUser, rawClient, type GatewayHarness, type Upstream } from './harness.conformance.js';
import { frame, queryMessage } from './wire/encode.js';
import { MAX_VARIANTS } from './statement-log.js';
import { grantAccess, startGatewayTest, stopGatewayTest } from '../../test/helpers/gateway.js';
import { eventually } from '../../test/helpers/server.js';

/**
 * Attack round 8 G2, G3 and their neighbours: the audited session chose what its record dropped.
 * Sixteen decoy lookups filled a group's variant list and the seventeenth, the real guess at a
 * masked value, was only counted (`variantsOmitted`); a guess in the middle of a 16 KB statement
 * was between the kept head and tail and past the 256 listed constants; a bound parameter past
 * the 64th, or past a value's 1,024th character, was cut the same way. Now nothing a statement
 * sends is left out: a full group is written and a new one started, and text and parameters are
 * recorded whole. Real PostgreSQL; the statement log's window is long here, so that every
 * execution of a session falls in one window (as a pipelined burst does in the default 100 ms).
 */

let upstream: Upstream;
let h: GatewayHarness;

beforeAll(async () => {
  ({ upstream, h } = await startGatewayTest({ gateway: { auditWindowMs: 60_000 } }));
  await grantAccess(h, h.users.bob, 'shop', 'read');
});
afterAll(() => stopGatewayTest(h, upstream));

type Variant = { text: string; params?: (string | null)[]; executions: number };
type Data = { text?: string; params?: (string | null)[]; executions?: number; variants?: Variant[]; variantsOmitted?: number };

/** The session's statement records, once its end has written them (the log flushes at close). */
async function sessionRecords(marker: string): Promise<Data[]> {
  return eventually(async () => {
    await h.gateway.audit.flush();
    const recs = (await h.gateway.audit.query({ kind: 'statement', actor: 'bob', limit: 10_000 })).map((r) => r.data as Data);
    return recs.some((d) => JSON.stringify(d).includes(marker)) ? recs : undefined;
  }).catch(() => h.gateway.audit.query({ kind: 'statement', actor: 'bob', limit: 10_000 }).then((rs) => rs.map((r) => r.data as Data)));
}

/** Every execution a record accounts for is listed: executions = the sum over its variants. */
function expectNothingOmitted(recs: Data[]): void {
  for (const d of recs) {
    expect(d.variantsOmitted).toBeUndefined();
    if (d.variants !== undefined) expect(d.variants.reduce((n, v) => n + v.executions, 0)).toBe(d.executions);
  }
}

describe('the audited session cannot choose what its record leaves out (attack round 8)', () => {
  it('G2: sixteen decoy variants do not push the seventeenth statement out of the trail', async () => {
    await as(async (c) => {
      for (let i = 1; i <= MAX_VARIANTS; i++) await c.query(`select id, name from customers where email = 'g2decoy${i}@x.io'`);
      await c.query("select id, name from customers where email = 'G2-SECRET-TARGET-grace@example.com'");
    });
    const recs = await sessionRecords('G2-SECRET-TARGET');
    const texts = recs.flatMap((d) => d.variants?.map((v) => v.text) ?? [d.text]);
    expect(texts).toContain("select id, name from customers where email = 'G2-SECRET-TARGET-grace@example.com'");
    for (let i = 1; i <= MAX_VARIANTS; i++) expect(texts).toContain(`select id, name from customers where email = 'g2decoy${i}@x.io'`);
    expectNothingOmitted(recs);
    expect((await h.gateway.audit.verify()).ok).toBe(true);
  });

  it('G3: a guess in the middle of a 16 KB statement is in its record, with the whole text', async () => {
    const pad = Array.from({ length: 700 }, (_, i) => `${i}=${i}`).join(' and ');
    const q = `select id from customers where ${pad} and email like 'G3-HIDDENGUESS-grace%' and ${pad}`;
    await as((c) => c.query(q));
    const recs = await sessionRecords('G3-HIDDENGUESS');
    const texts = recs.flatMap((d) => d.variants?.map((v) => v.text) ?? [d.text]);
    expect(texts).toContain(q);
  });

  it('bound parameters: the 70th value and a value past its 1,024th character are recorded', async () => {
    const many = Array.from({ length: 70 }, (_, i) => (i === 69 ? 'P70-SECRET@example.com' : `p${i}@x.io`));
    const long = `${'x'.repeat(2_000)},P-LONG-SECRET@example.com`;
    await as(async (c) => {
      await c.query(`select id from customers where email in (${many.map((_, i) => `$${i + 1}`).join(', ')})`, many);
      await c.query("select id from customers where email = any(string_to_array($1, ','))", [long]);
    });
    const recs = await sessionRecords('P-LONG-SECRET');
    const params = recs.flatMap((d) => d.variants?.map((v) => v.params) ?? [d.params]);
    expect(params).toContainEqual(many);
    expect(params).toContainEqual([long]);
  });

  it('a group over its size starts a new record: every large variant is listed', async () => {
    const values = Array.from({ length: 5 }, (_, i) => `G4-${i}-${'v'.repeat(30_000)}`);
    await as(async (c) => {
      for (const v of values) await c.query('select count(*) from customers where note = $1', [v]);
    });
    const recs = await sessionRecords('G4-4-');
    const mine = recs.filter((d) => d.variants?.some((v) => v.params?.[0]?.startsWith('G4-')));
    expect(mine.length).toBeGreaterThan(1);
    expect(mine.flatMap((d) => d.variants?.map((v) => v.params?.[0]) ?? [])).toEqual(values);
    expectNothingOmitted(mine);
  });

  it('COPY FROM STDIN: every row the client sends is in the trail, in parts after the COPY\'s start record', async () => {
    const rows = [1, 2, 3].map((i) => `${9000 + i}\t${'n'.repeat(40_000)}\tG5-COPY-SECRET-${i}@example.com\n`);
    const raw = await rawClient(h.gateway.port ?? 0, h.users.alice, 'shop');
    try {
      raw.send(queryMessage('COPY customers (id, name, email) FROM STDIN'));
      await raw.until('G');
      raw.send(...rows.map((r) => frame('d', Buffer.from(r))), frame('c'));
      const done = await raw.until('Z');
      expect(done.map((m) => m.type)).toContain('C');
    } finally {
      raw.close();
    }
    const parts = await eventually(async () => {
      await h.gateway.audit.flush();
      const recs = (await h.gateway.audit.query({ kind: 'statement.copy_data', actor: 'alice', limit: 100 })).map((r) => r.data as { n: number; part: number; data: string; end?: true });
      return recs.some((d) => d.end === true) ? recs : undefined;
    });
    expect(parts.length).toBeGreaterThan(1);
    expect(parts.map((d) => d.part)).toEqual(parts.map((_, i) => i + 1));
    expect(parts.map((d) => d.data).join('')).toBe(rows.join(''));
  });

  it('a guess carried in application_name, read back by the statement, is in connection.open whole', async () => {
    const app = `${'a'.repeat(300)}G6-APP-SECRET@example.com`;
    const c = new pg.Client({ connectionString: h.url(h.users.bob, 'shop'), application_name: app });
    await c.connect();
    try {
      await c.query("select id from customers where email = substr(current_setting('application_name'), 301)");
    } finally {
      await c.end();
    }
    await h.gateway.audit.flush();
    const opens = (await h.gateway.audit.query({ kind: 'connection.open', actor: 'bob', limit: 1000 })).map((r) => r.data as { application?: string; settings?: Record<string, string> });
    const open = opens.find((d) => d.application?.startsWith('aaa'));
    expect(open?.application).toBe(app);
    expect(open?.settings?.application_name).toBe(app);
  });
});

function as<T>(fn: (c: pg.Client) => Promise<T>): Promise<T> {
  return asUser(h, h.users.bob, 'shop', fn);
}
