import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { appendSources, ChunkPool, columnDdl, type ColumnSpec, type RowSource } from './duckdb-chunks.js';
import { WriteConnection } from './duckdb-write.js';

const SPECS: ColumnSpec[] = [
  { name: 'i', kind: 'i64', field: 'i' },
  { name: 'f', kind: 'f64', field: 'f' },
  { name: 'b', kind: 'bool', field: 'b' },
  { name: 'u', kind: 'u8', field: 'u' },
  { name: 'w', kind: 'u32', field: 'w' },
  { name: 'h64', kind: 'hex64', field: 'h64' },
  { name: 'h128', kind: 'hex128', field: 'h128' },
  { name: 's', kind: 'str', field: 's' },
  { name: 'low', kind: 'strLow', field: 'low' },
  { name: 'k', kind: 'i16list', field: 'k' },
  { name: 'c', kind: 'i32list', field: 'c' },
];

let instance: DuckDBInstance;
let con: DuckDBConnection;

beforeAll(async () => {
  instance = await DuckDBInstance.create(':memory:');
  con = await instance.connect();
});
afterAll(() => {
  con.closeSync();
  instance.closeSync();
});

async function roundTrip(sources: RowSource[]): Promise<Record<string, unknown>[]> {
  await con.run(`CREATE OR REPLACE TABLE t (${columnDdl(SPECS)})`);
  const appender = await con.createAppender('t');
  appendSources(appender, SPECS, sources);
  appender.closeSync();
  return (await con.runAndReadAll('SELECT * FROM t')).getRowObjectsJS();
}

function source(rows: Array<Record<string, unknown>>): RowSource {
  const cols: Record<string, unknown[]> = {};
  for (const s of SPECS) cols[s.field] = rows.map((r) => r[s.field]);
  return { length: rows.length, cols };
}

const row = (over: Record<string, unknown> = {}): Record<string, unknown> => ({
  i: 0, f: 0, b: false, u: 0, w: 0, h64: '', h128: '', s: '', low: '', k: [], c: [], ...over,
});

describe('appendSources', () => {
  it('writes every column kind exactly', async () => {
    const strings = ['', 'a', 'exactly12chr', 'thirteen char', 'ünïcödé', 'x'.repeat(5000), 'nul\u0000inside', '😀 emoji', '{"k":"v"}'];
    const rows = strings.map((s, n) => row({
      i: [0, -1, 2 ** 53 - 1, -(2 ** 53 - 1), 1_714_557_600_000_000, 4294967296, -4294967297, NaN, 12.9][n],
      f: [0, -1.5, NaN, Infinity, 1e300, 5e-324, 3, 4, 5][n],
      b: n % 2 === 1, u: n * 30, w: 4_000_000_000 + n,
      h64: ['', 'ffffffffffffffff', '0000000000000001', 'ABCDEF0123456789', 'zz', '123', '8000000000000000', '', ''][n],
      h128: ['', 'ffffffffffffffffffffffffffffffff', '0123456789abcdef0123456789abcdef', '', '', '', '', '', ''][n],
      s, low: strings[strings.length - 1 - n], k: Array.from({ length: n }, (_, j) => j - 3), c: n === 5 ? Array.from({ length: 3000 }, (_, j) => j * 1000) : [n],
    }));
    const got = await roundTrip([source(rows)]);
    expect(got.map((r) => r.s)).toEqual(strings);
    expect(got.map((r) => r.low)).toEqual([...strings].reverse());
    expect(got.map((r) => r.i)).toEqual([0n, -1n, 2n ** 53n - 1n, -(2n ** 53n - 1n), 1_714_557_600_000_000n, 4294967296n, -4294967297n, 0n, 12n]);
    expect(got.map((r) => r.f)).toEqual([0, -1.5, NaN, Infinity, 1e300, 5e-324, 3, 4, 5]);
    expect(got.map((r) => r.b)).toEqual(rows.map((r) => r.b));
    expect(got.map((r) => r.u)).toEqual(rows.map((r) => r.u));
    expect(got.map((r) => r.w)).toEqual(rows.map((r) => r.w));
    expect(got.map((r) => r.h64)).toEqual([0n, 2n ** 64n - 1n, 1n, 0xabcdef0123456789n, 0n, 0n, 2n ** 63n, 0n, 0n]);
    expect(got[1].h128).toBe(2n ** 128n - 1n);
    expect(got[2].h128).toBe(0x0123456789abcdef0123456789abcdefn);
    expect(got.map((r) => r.k)).toEqual(rows.map((r) => r.k));
    expect(got.map((r) => r.c)).toEqual(rows.map((r) => r.c));
  });

  it('packs many small sources into shared chunks and keeps repeats right across chunk edges', async () => {
    const names = ['GET /api/orders/{id}', 'POST /api/checkout/{cart}', 'short', 'GET /api/orders/{id}'];
    const sources: RowSource[] = [];
    let n = 0;
    for (let b = 0; b < 37; b++) {
      const rows = Array.from({ length: 1 + ((b * 97) % 300) }, () => {
        n++;
        return row({ i: n, s: `unique attrs ${n} ${'y'.repeat(n % 20)}`, low: names[Math.floor(n / 3) % names.length] });
      });
      sources.push(source(rows));
    }
    const got = await roundTrip(sources);
    expect(got).toHaveLength(n);
    got.forEach((r, idx) => {
      const k = idx + 1;
      expect(r.i).toBe(BigInt(k));
      expect(r.s).toBe(`unique attrs ${k} ${'y'.repeat(k % 20)}`);
      expect(r.low).toBe(names[Math.floor(k / 3) % names.length]);
    });
  });

  it('writes long, multi-byte and repeated strings of pooled chunks filled long before they are appended', async () => {
    // Long strings of a column go to DuckDB as one buffer per chunk and each slot points into
    // DuckDB's copy: chunks filled first and appended after later fills reused that buffer must
    // still read back exactly (byte lengths ≤ 12 inline, > 12 through the copy, 2 MB per column).
    const long = (k: number): string => `{"user":"user-${k}","url":"https://shop.example.com/api/orders/${k}?q=${'z'.repeat(k % 1500)}"}`;
    const odd = ['😀😀😀', '😀😀😀😀', 'ünïcödé', 'ünïcödé and more', 'lone \ud800 surrogate here', 'nul\u0000inside a long string', '', 'a'];
    const low = ['GET /api/orders/{id}', 'POST /api/checkout/{cart}', 'short', 'SELECT order_items'];
    const mk = (from: number, n: number): RowSource => source(Array.from({ length: n }, (_, j) => {
      const k = from + j;
      return row({ i: k, s: k % 10 === 0 ? odd[(k / 10) % odd.length] : long(k), low: low[k % 2 === 0 ? (k >> 1) % 2 : 2 + (k % 4 === 1 ? 0 : 1)] });
    }));
    const pool = new ChunkPool(SPECS);
    const first = pool.fill([mk(0, 3000)]);
    const second = pool.fill([mk(3000, 1500), mk(4500, 1500)]);
    await con.run(`CREATE OR REPLACE TABLE p (${columnDdl(SPECS)})`);
    const appender = await con.createAppender('p');
    for (const c of [...second, ...first]) appender.appendDataChunk(c);
    appender.closeSync();
    pool.release([...first, ...second]);
    const got = (await con.runAndReadAll('SELECT i, s, low FROM p ORDER BY i')).getRowObjectsJS();
    expect(got).toHaveLength(6000);
    const want = mk(0, 6000);
    got.forEach((r, k) => {
      const s = (want.cols.s as string[])[k];
      expect(r.s).toBe(s.replace('\ud800', '\ufffd'));
      expect(r.low).toBe((want.cols.low as string[])[k]);
    });
  });

  it('writes a constant column given as a number', async () => {
    await con.run('CREATE OR REPLACE TABLE c (x BIGINT, s VARCHAR)');
    const appender = await con.createAppender('c');
    appendSources(appender, [{ name: 'x', kind: 'i64', field: 'x' }, { name: 's', kind: 'str', field: 's' }],
      [{ length: 3000, cols: { x: 1_714_557_600_123_456, s: Array(3000).fill('same long value repeated') } }]);
    appender.closeSync();
    const r = (await con.runAndReadAll('SELECT count(*) AS n, min(x) AS lo, max(x) AS hi, count(DISTINCT s) AS d FROM c')).getRowObjectsJS();
    expect(r[0]).toEqual({ n: 3000n, lo: 1_714_557_600_123_456n, hi: 1_714_557_600_123_456n, d: 1n });
  });

  it('appends inside a transaction and leaves nothing behind on ROLLBACK', async () => {
    await con.run('CREATE OR REPLACE TABLE r (x BIGINT)');
    await con.run('BEGIN TRANSACTION');
    const appender = await con.createAppender('r');
    appendSources(appender, [{ name: 'x', kind: 'i64', field: 'x' }], [{ length: 5000, cols: { x: 7 } }]);
    appender.closeSync();
    expect((await con.runAndReadAll('SELECT count(*) AS n FROM r')).getRowObjectsJS()[0].n).toBe(5000n);
    await con.run('ROLLBACK');
    expect((await con.runAndReadAll('SELECT count(*) AS n FROM r')).getRowObjectsJS()[0].n).toBe(0n);
  });

  it('keeps an appender across transactions and drops the rows of a failed one', async () => {
    const w = new WriteConnection(await instance.connect());
    await w.con.run('CREATE OR REPLACE TABLE k (x BIGINT)');
    const spec: ColumnSpec[] = [{ name: 'x', kind: 'i64', field: 'x' }];
    const rows = (x: number, n: number): RowSource[] => [{ length: n, cols: { x } }];
    await w.transaction(() => w.append('k', spec, rows(1, 10)));
    await expect(w.transaction(async () => {
      await w.append('k', spec, rows(2, 3000));
      throw new Error('boom');
    })).rejects.toThrow('boom');
    await w.transaction(() => w.append('k', spec, rows(3, 5)));
    const got = (await w.con.runAndReadAll('SELECT x, count(*) AS n FROM k GROUP BY x ORDER BY x')).getRowObjectsJS();
    expect(got).toEqual([{ x: 1n, n: 10n }, { x: 3n, n: 5n }]);
    w.close();
  });
});
