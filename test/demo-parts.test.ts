import { createServer, type Server } from 'node:http';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEMO_MARKER, freshDemoDir } from '../src/demo/index.js';
import { LoadGenerator } from '../src/demo/load.js';
import { startOrdersDb, type OrdersDb } from '../src/demo/orders-db.js';
import { DemoReporter } from '../src/demo/reporter.js';
import { startShop, type RunningShop } from '../src/demo/shop/app.js';
import { demoUpDefaults, movedText } from '../src/demo/up.js';

/**
 * The demo's parts on their own: the fresh-directory and free-port rules that let `npm start`
 * run twice, the reporter's step log, the load generator, and the shop's two versions against a
 * real PostgreSQL (the bug in 2.0.0 hits exactly the customers without a loyalty record).
 */

const tmp = mkdtempSync(join(tmpdir(), 'tightloop-demo-parts-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('demo data directory and ports', () => {
  it('accepts a missing or empty directory, wipes an earlier demo directory, refuses anything else', () => {
    freshDemoDir(join(tmp, 'missing'));
    const empty = join(tmp, 'empty');
    mkdirSync(empty);
    freshDemoDir(empty);
    expect(existsSync(empty)).toBe(true);

    const earlier = join(tmp, 'earlier');
    mkdirSync(earlier);
    writeFileSync(join(earlier, DEMO_MARKER), '');
    writeFileSync(join(earlier, 'state.db'), 'x');
    freshDemoDir(earlier);
    expect(existsSync(earlier)).toBe(false);

    const foreign = join(tmp, 'foreign');
    mkdirSync(foreign);
    writeFileSync(join(foreign, 'state.db'), 'x');
    expect(() => freshDemoDir(foreign)).toThrow(/not a demo directory/);
    expect(existsSync(join(foreign, 'state.db'))).toBe(true);
  });

  it('moves to free ports when the defaults are taken, and keeps what the user chose', async () => {
    const busy = createServer();
    await new Promise<void>((r) => busy.listen(0, '127.0.0.1', () => r()));
    const busyPort = (busy.address() as { port: number }).port;
    try {
      const dataDir = join(tmp, 'ports');
      const moved: string[] = [];
      const chosen = await demoUpDefaults({ dataDir, port: busyPort, logLevel: 'info' }, (k) => k !== 'dataDir', (m) => moved.push(movedText(m)));
      expect(chosen.port).not.toBe(busyPort);
      // Said, so the printed URLs are not a surprise (the gateway's 15432 may be busy here too).
      expect(moved[0]).toBe(`port ${busyPort} (HTTP: API, OTLP, console) is in use; the demo took ${chosen.port} instead`);
      expect(chosen.port).toBeGreaterThan(0);
      expect(chosen.gatewayPort).toBeGreaterThan(0);
      expect(chosen.logLevel).toBe('warn');
      expect(chosen.dataDir).toBe(dataDir);
      const kept = await demoUpDefaults({ dataDir, port: busyPort, gatewayPort: 1234, logLevel: 'debug' }, () => false, (m) => moved.push(movedText(m)));
      expect(moved.filter((x) => x.startsWith(`port ${busyPort} `))).toHaveLength(1); // what the user chose is kept, and not reported
      expect(kept).toEqual({ dataDir, port: busyPort, gatewayPort: 1234, logLevel: 'debug' });
    } finally {
      busy.close();
    }
  });
});

describe('demo reporter', () => {
  it('prints each step with time and link and logs it as a JSON line; unavailable steps say so', () => {
    const file = join(tmp, 'steps.jsonl');
    let out = '';
    const r = new DemoReporter({ consoleUrl: 'http://127.0.0.1:4318', write: (t) => (out += t), stepsFile: file });
    r.step('a', 'first', { link: '/deploys' });
    r.unavailable('b', 'incident story', 'incidents are not in this build');
    const lines = readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { id: string; status: string; link: string | null });
    expect(lines.map((l) => [l.id, l.status])).toEqual([['a', 'ok'], ['b', 'unavailable']]);
    expect(lines[0].link).toBe('http://127.0.0.1:4318/deploys');
    expect(out).toMatch(/^\d\d:\d\d:\d\d\.\d{3} +\+0\.\ds {2}✔ first\n +→ http:\/\/127\.0\.0\.1:4318\/deploys\n/);
    expect(out).toContain('⚠ incident story: not available (incidents are not in this build)');
  });
});

describe('load generator', () => {
  let server: Server;
  let url = '';
  let hits = 0;
  let hang = false;
  beforeAll(async () => {
    server = createServer((req, res) => {
      hits++;
      if (hang) return; // never answers: the generator must cap what waits
      const v = req.url?.startsWith('/checkout') === true ? '2.0.0' : '1.0.0';
      res.writeHead(req.url?.includes('customer=5&') === true ? 500 : 200, { 'x-shop-version': v });
      res.end('{}');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  });
  afterAll(() => {
    server.closeAllConnections();
    server.close();
  });

  it('counts answers per version and errors, and caps requests in flight', async () => {
    const load = new LoadGenerator({ url, rps: 200, customers: 50, products: 8, maxInFlight: 5 });
    load.start();
    await new Promise((r) => setTimeout(r, 800));
    const counts = load.takeCounts();
    expect(counts.get('2.0.0')?.requests).toBeGreaterThan(0);
    expect(counts.get('1.0.0')?.requests).toBeGreaterThan(0);
    expect(counts.get('1.0.0')?.errors).toBe(0);
    hang = true;
    const before = hits;
    await new Promise((r) => setTimeout(r, 500));
    load.stop();
    expect(hits - before).toBeLessThanOrEqual(5);
    expect(load.dropped).toBeGreaterThan(0);
  });
});

describe('shop against a real PostgreSQL', () => {
  let db: OrdersDb;
  const shops: RunningShop[] = [];
  beforeAll(async () => {
    db = await startOrdersDb();
  });
  afterAll(async () => {
    for (const s of shops) await s.close();
    await db?.stop();
  });

  const post = async (port: number, customer: number): Promise<{ status: number; version: string | null; body: Record<string, unknown> }> => {
    const res = await fetch(`http://127.0.0.1:${port}/checkout?customer=${customer}&product=1&qty=2`, { method: 'POST' });
    return { status: res.status, version: res.headers.get('x-shop-version'), body: (await res.json()) as Record<string, unknown> };
  };

  it('1.0.0 sells to everyone; 2.0.0 discounts loyal customers and crashes for the others', async () => {
    const v1 = await startShop({ version: '1.0.0', databaseUrl: db.shopUrl, port: 0 });
    const v2 = await startShop({ version: '2.0.0', databaseUrl: db.shopUrl, port: 0 });
    shops.push(v1, v2);
    const products = await (await fetch(`http://127.0.0.1:${v1.port}/products`)).json() as { products: { id: number; price_cents: number }[] };
    const price = products.products[0].price_cents;

    expect(await post(v1.port, 5)).toMatchObject({ status: 200, version: '1.0.0', body: { totalCents: 2 * price } });
    // Customer 3 is gold (10 % off); 5 has no loyalty record: the 2.0.0 bug.
    expect(await post(v2.port, 3)).toMatchObject({ status: 200, version: '2.0.0', body: { totalCents: Math.round(2 * price * 0.9) } });
    const crash = await post(v2.port, 5);
    expect(crash.status).toBe(500);
    expect(String(crash.body.error)).toMatch(/reading 'discount_pct'/);

    // Over all customers, 2.0.0 fails exactly the fifth without loyalty: 20 %.
    const results = await Promise.all(Array.from({ length: 50 }, (_, i) => post(v2.port, i + 1)));
    expect(results.filter((r) => r.status === 500).length).toBe(10);
    expect((await post(v1.port, 1)).status).toBe(200);
  });

  it('answers bad input with 400 and unknown paths with 404', async () => {
    const v1 = shops[0];
    const bad = await fetch(`http://127.0.0.1:${v1.port}/checkout?customer=x`, { method: 'POST' });
    expect(bad.status).toBe(400);
    expect((await fetch(`http://127.0.0.1:${v1.port}/nope`)).status).toBe(404);
  });
});
