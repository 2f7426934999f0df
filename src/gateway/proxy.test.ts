import { execFile, spawn } from 'node:child_process';
import { promisify } from 'node:util';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect as tcp } from 'node:net';
import { rawClient, type GatewayHarness, type Upstream } from './harness.conformance.js';
import { queryMessage } from './wire/encode.js';
import { MessageFramer } from './wire/framer.js';
import { grantAccess, startGatewayTest, stopGatewayTest, upstreamSql } from '../../test/helpers/gateway.js';
import { containing } from '../../test/helpers/match.js';

const run = promisify(execFile);
let upstream: Upstream;
let h: GatewayHarness;

beforeAll(async () => {
  ({ upstream, h } = await startGatewayTest());
  await upstreamSql(upstream, `CREATE TABLE copy_t (a int, b text);
    CREATE FUNCTION say_hello() RETURNS int LANGUAGE plpgsql AS $$ BEGIN RAISE NOTICE 'hello notice'; RETURN 1; END $$`);
});
afterAll(() => stopGatewayTest(h, upstream));

async function client(resource = 'shop', user = h.users.alice, extra = ''): Promise<pg.Client> {
  const c = new pg.Client({ connectionString: h.url(user, resource, extra) });
  await c.connect();
  return c;
}

async function psql(args: string[], user = h.users.alice, resource = 'shop', env: Record<string, string> = {}): Promise<{ stdout: string; stderr: string; code: number }> {
  try {
    const r = await run('psql', [`host=127.0.0.1 port=${h.gateway.port} user=${user.name} dbname=${resource}`, '-X', '-A', '-t', ...args], {
      env: { ...process.env, PGPASSWORD: user.token, ...env },
      timeout: 20_000,
    });
    return { ...r, code: 0 };
  } catch (err) {
    const e = err as { stdout: string; stderr: string; code: number };
    return { stdout: e.stdout, stderr: e.stderr, code: e.code };
  }
}

describe('wire protocol through the gateway', () => {
  it('pg: simple, extended, named prepared statements and pipelining', async () => {
    const c = await client();
    try {
      expect((await c.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
      expect((await c.query('SELECT $1::int + $2::int AS sum', [2, 3])).rows).toEqual([{ sum: 5 }]);
      const named = { name: 'by_id', text: 'SELECT id, name FROM customers WHERE id = $1' };
      expect((await c.query({ ...named, values: [1] })).rows).toEqual([{ id: 1, name: 'Alice' }]);
      expect((await c.query({ ...named, values: [2] })).rows).toEqual([{ id: 2, name: 'Bob' }]);
      // pg pipelines queries issued without awaiting: all go out before the first answer.
      const many = await Promise.all(Array.from({ length: 50 }, (_, i) => c.query<{ i: number }>('SELECT $1::int AS i', [i])));
      expect(many.map((r) => r.rows[0].i)).toEqual(Array.from({ length: 50 }, (_, i) => i));
      const tx = await Promise.all([c.query('BEGIN'), c.query('INSERT INTO orders (customer, total) VALUES (1, 5) RETURNING id'), c.query('ROLLBACK')]);
      expect(tx[1].rowCount).toBe(1);
    } finally {
      await c.end();
    }
  });

  it('relays ParameterStatus and notices, and delivers NOTIFY', async () => {
    const listener = await client();
    const sender = await client();
    try {
      const notices: string[] = [];
      listener.on('notice', (n) => notices.push(n.message ?? ''));
      await listener.query('SELECT say_hello()');
      // Relayed, but a RAISE text is withheld while masking is on and the database has sensitive
      // columns: a routine can put any value into it (masking/errors.ts).
      expect(notices).toEqual(['[withheld by tightloop: masking is on] (SQLSTATE 00000)']);
      await listener.query("SET application_name = 'x'");
      expect((listener as unknown as { connection: { parameters?: unknown } }).connection).toBeDefined();
      const got = new Promise<string>((resolve) => listener.on('notification', (n) => resolve(`${n.channel}:${n.payload ?? ''}`)));
      await listener.query('LISTEN jobs');
      await sender.query("NOTIFY jobs, 'payload-1'");
      expect(await got).toBe('jobs:payload-1');
      // pg_stat_activity.application_name is other sessions' text (masking-bypass while masked).
      const r = await listener.query('SHOW application_name');
      expect(r.rows[0]).toEqual({ application_name: 'x' });
    } finally {
      await listener.end();
      await sender.end();
    }
  });

  it('psql works over TLS (self-signed certificate) with SCRAM after the first login', async () => {
    const first = await psql(['-c', 'SELECT 40 + 2'], h.users.alice, 'shop', { PGSSLMODE: 'require' });
    expect(first.stderr).toBe('');
    expect(first.stdout.trim()).toBe('42');
    const ssl = await psql(['-c', 'SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()'], h.users.alice, 'shop', { PGSSLMODE: 'require' });
    expect(ssl.code).toBe(0);
    const audit = await h.gateway.audit.query({ kind: 'connection.open', limit: 100 });
    const methods = audit.filter((r) => r.actor === 'alice').map((r) => [r.data.tls, r.data.auth]);
    expect(methods).toContainEqual([true, 'scram-sha-256']);
  });

  it('logs in upstream with md5 and cleartext password credentials too', async () => {
    for (const resource of ['shop-md5', 'shop-plain']) {
      const c = await client(resource);
      expect((await c.query<{ u: string }>('SELECT current_user AS u')).rows[0].u).toMatch(/^app_/);
      await c.end();
    }
  });

  it('connects upstream over TLS: require, verify-full with the server CA, and refuses a wrong CA', async () => {
    const tls = [
      ['shop-tls', { mode: 'require' }],
      ['shop-verified', { mode: 'verify-full', caFile: upstream.certFile, serverName: 'localhost' }],
      ['shop-wrong-ca', { mode: 'verify-full', caFile: `${h.dataDir}/gateway-cert.pem`, serverName: 'localhost' }],
    ] as const;
    for (const [name, t] of tls) {
      await h.gateway.resources.create({ name, host: '127.0.0.1', port: upstream.port, database: 'shop', user: 'app_scram', credential: 'env:TIGHTLOOP_TEST_PG_SCRAM', tls: t });
      await grantAccess(h, h.users.alice, name, 'read');
    }
    for (const name of ['shop-tls', 'shop-verified']) {
      const c = await client(name);
      expect((await c.query<{ ssl: boolean }>('SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()')).rows[0].ssl).toBe(true);
      await c.end();
    }
    await expect(client('shop-wrong-ca')).rejects.toMatchObject({ code: '08001', message: containing('TLS') });
  });

  it('COPY in and out', async () => {
    const c = await client();
    try {
      const rows = Array.from({ length: 1000 }, (_, i) => `${i}\tvalue ${i}\n`).join('');
      const child = spawn('psql', [`host=127.0.0.1 port=${h.gateway.port} user=alice dbname=shop`, '-X', '-c', '\\copy copy_t FROM STDIN'], { env: { ...process.env, PGPASSWORD: h.users.alice.token } });
      child.stdin.end(rows);
      const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
      expect(code).toBe(0);
      const out = await psql(['-c', 'COPY (SELECT a, b FROM copy_t ORDER BY a) TO STDOUT']);
      expect(out.stdout.split('\n').filter((l) => l !== '')).toHaveLength(1000);
      expect(out.stdout.startsWith('0\tvalue 0\n')).toBe(true);
    } finally {
      await c.end();
    }
  });

  it('cancel: psql-style CancelRequest stops a running query', async () => {
    const c = await client();
    try {
      const started = Date.now();
      const slow = c.query('SELECT pg_sleep(30)');
      await new Promise((r) => setTimeout(r, 300));
      // A new connection carrying CancelRequest with the key the gateway handed out (pg's own path).
      const key = c as unknown as { processID: number; secretKey: number };
      const con = new (pg as unknown as { Connection: new () => { connect(port: number, host: string): void; on(e: string, f: () => void): void; cancel(pid: number, secret: number): void; end(): void } }).Connection();
      con.on('connect', () => con.cancel(key.processID, key.secretKey));
      con.connect(h.gateway.port ?? 0, '127.0.0.1');
      await expect(slow).rejects.toThrow(/cancel/i);
      expect(Date.now() - started).toBeLessThan(10_000);
      expect((await c.query<{ ok: number }>('SELECT 1 AS ok')).rows[0].ok).toBe(1);
    } finally {
      await c.end();
    }
  });

  it('a 1 M-row SELECT streams through with bounded gateway memory (backpressure pauses the server)', async () => {
    const raw = await rawClient(h.gateway.port ?? 0, h.users.alice, 'shop');
    const session = h.gateway.registry.sessions().find((x) => x.relay !== undefined && x.relay.stats.maxClientBuffered === 0);
    const relay = session?.relay;
    expect(relay).toBeDefined();
    raw.socket.removeAllListeners('data');
    raw.socket.pause();
    const heapBefore = process.memoryUsage().heapUsed;
    raw.send(queryMessage("SELECT i, repeat('x', 100) AS pad FROM generate_series(1, 1000000) i"));
    // A client that does not read: the gateway must stop reading the server, not buffer 100+ MB.
    // (Polled, not slept: on a loaded machine the server takes a while to fill the buffers.)
    for (let waited = 0; (relay?.stats.upstreamPauses ?? 0) === 0 && waited < 30_000; waited += 100) await new Promise((r) => setTimeout(r, 100));
    expect(relay?.stats.upstreamPauses).toBeGreaterThan(0);
    const framer = new MessageFramer(1 << 20);
    let rows = 0;
    let bytes = 0;
    const done = new Promise<void>((resolve) => {
      raw.socket.on('data', (chunk: Buffer) => {
        bytes += chunk.length;
        const buf = framer.push(chunk);
        for (let off = 0; off < buf.length; off += 1 + buf.readInt32BE(off + 1)) {
          if (buf[off] === 0x44) rows++;
          if (buf[off] === 0x5a) resolve();
        }
      });
    });
    raw.socket.resume();
    await done;
    expect(rows).toBe(1_000_000);
    expect(bytes).toBeGreaterThan(100_000_000);
    expect(relay?.stats.maxClientBuffered).toBeLessThan(4 * 1024 * 1024);
    expect(process.memoryUsage().heapUsed - heapBefore).toBeLessThan(64 * 1024 * 1024);
    raw.close();
  });

  it('limits what a logged-in client sends by message type: a 2 MiB Query is refused (54000), a 2 MiB Bind value passes', async () => {
    const c = await client();
    try {
      const big = 'x'.repeat(2 * 1024 * 1024);
      expect((await c.query('SELECT length($1::text) AS n', [big])).rows).toEqual([{ n: big.length }]);
      const err = await c.query(`SELECT length('${big}') AS n`).then(() => undefined, (e: unknown) => e as { code?: string; message: string });
      expect(err?.code).toBe('54000');
      expect(err?.message).toMatch(/Query message of \d+ bytes is over the gateway's limit of 1048576 bytes/);
    } finally {
      await c.end().catch(() => undefined);
    }
    // The gateway goes on serving.
    const d = await client();
    expect((await d.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
    await d.end();
  });

  it('refuses GSS encryption properly and rejects data smuggled after an SSLRequest', async () => {
    const exchange = (bytes: Buffer): Promise<Buffer> =>
      new Promise((resolve) => {
        const s = tcp({ port: h.gateway.port ?? 0, host: '127.0.0.1' });
        const chunks: Buffer[] = [];
        s.on('data', (c: Buffer) => {
          chunks.push(c);
          if (bytes.length === 8) s.end();
        });
        s.on('close', () => resolve(Buffer.concat(chunks)));
        s.on('error', () => undefined);
        s.write(bytes);
      });
    const gss = Buffer.alloc(8);
    gss.writeInt32BE(8, 0);
    gss.writeInt32BE(80877104, 4);
    expect((await exchange(gss)).toString('latin1')).toBe('N');
    const ssl = Buffer.alloc(8);
    ssl.writeInt32BE(8, 0);
    ssl.writeInt32BE(80877103, 4);
    const smuggled = await exchange(Buffer.concat([ssl, Buffer.from('Q\0\0\0\x0dSELECT 1\0', 'latin1')]));
    expect(smuggled.toString('latin1')).toContain('08P01');
  });
});
