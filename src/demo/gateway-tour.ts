import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { track, type CliRunner } from './cli.js';
import type { OrdersDb } from './orders-db.js';
import type { DemoReporter } from './reporter.js';

/**
 * The "act safely" part of the demo: orders-prod behind the gateway with guardrails and masking,
 * a person asking for just-in-time access, an admin approving it, and that person's `psql`
 * session (SCRAM-SHA-256 with their own token) seeing masked personal data and having a
 * `DELETE` without `WHERE` refused. Everything runs through the real CLI and the real `psql`.
 */

export const RESOURCE = 'orders-prod';

/**
 * The policy the README shows: block unsafe writes, hold DDL for approval, and an explicit column
 * rule for every personal-data column of customers (their names hashed; e-mails, phones and card
 * numbers partially masked), so every value derived from them is masked as well. The detectors
 * and classification (docs/gateway.md) remain the net for columns no rule names.
 */
export const DEMO_POLICY = {
  guardrails: { rules: { 'unsafe-write': 'block', ddl: 'approve' } },
  masking: {
    mode: 'partial',
    columns: [
      // `name` is a column of products too (and of catalogs such as pg_settings, which no rule
      // names): the rule names the customers' one.
      { name: 'name', table: 'customers', mode: 'hash' },
      { name: 'email', mode: 'partial' },
      { name: 'phone', mode: 'partial' },
      { name: 'card_number', mode: 'partial' },
    ],
  },
  maxGrantS: 8 * 3600,
};

export interface TourContext {
  cli: CliRunner;
  reporter: DemoReporter;
  db: OrdersDb;
  dataDir: string;
  apiUrl: string;
  gatewayPort: number | undefined;
}

export interface PsqlResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** The real `psql`, password from PGPASSWORD so the token never shows on a command line. */
export function psql(url: string, password: string, sql: string): Promise<PsqlResult> {
  return new Promise((resolve) => {
    const child = track(spawn('psql', [url, '-X', '-v', 'ON_ERROR_STOP=1', '-c', sql], {
      env: { ...process.env, PGPASSWORD: password, PGCONNECT_TIMEOUT: '10' }, stdio: ['ignore', 'pipe', 'pipe'],
    }));
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString('utf8')));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
    child.once('error', (err) => resolve({ code: 127, stdout, stderr: err.message }));
    child.once('close', (code) => resolve({ code: code ?? 2, stdout, stderr }));
  });
}

/** Registers orders-prod with its policy (admin). */
export async function addResource(ctx: TourContext): Promise<boolean> {
  const policyFile = join(ctx.dataDir, 'orders-prod.policy.json');
  writeFileSync(policyFile, JSON.stringify(DEMO_POLICY, null, 2) + '\n');
  const cred = ctx.db.gatewayCredential;
  const r = await ctx.cli(['resource', 'add', RESOURCE, '--host', '127.0.0.1', '--port', String(ctx.db.port), '--database', ctx.db.database,
    '--user', ctx.db.gatewayUser, '--credential', cred, '--tls', 'disable', '--policy', policyFile]);
  if (r.code !== 0) {
    ctx.reporter.step('gateway.resource', `could not register ${RESOURCE} (exit ${r.code})`, { status: 'fail' });
    return false;
  }
  ctx.reporter.step('gateway.resource', `${RESOURCE} registered behind the gateway: unsafe writes blocked; names, e-mails, phones and card numbers masked (also in anything computed from them)`, { link: '/access' });
  return true;
}

/** JIT request by alice, approval by admin, then alice's psql session. */
export async function accessTour(ctx: TourContext): Promise<void> {
  const { cli, reporter } = ctx;
  // The admin creates alice with the CLI a team would use; her first token is printed once.
  const added = await cli(['user', 'add', 'alice', '--role', 'member']);
  const token = /only its hash is stored\): (\S+)/.exec(added.stdout)?.[1];
  const alice = { name: 'alice', token: token ?? '' };
  if (added.code !== 0 || token === undefined) {
    reporter.step('gateway.user', `could not create alice (exit ${added.code})`, { status: 'fail' });
    return;
  }
  reporter.step('gateway.user', 'alice (member) has her own API token; she has no access to orders-prod yet', { data: { user: alice.name } });

  const req = await cli(['access', 'request', RESOURCE, '--mode', 'write', '--for', '30m', '--reason', 'check the failed checkouts of the bad deploy'], { token: alice.token });
  const id = /request (\S+) is pending/.exec(req.stdout)?.[1];
  if (req.code !== 0 || id === undefined) {
    reporter.step('access.requested', `access request failed (exit ${req.code})`, { status: 'fail' });
    return;
  }
  reporter.step('access.requested', `alice asked for 30 min of write access to ${RESOURCE}`, { link: '/access', data: { requestId: id } });
  const ok = await cli(['access', 'approve', id, '--note', 'approved for the incident']);
  if (ok.code !== 0) {
    reporter.step('access.approved', `approval failed (exit ${ok.code})`, { status: 'fail' });
    return;
  }
  reporter.step('access.approved', 'admin approved the request: alice holds a grant that expires in 30 min', { link: '/access', data: { requestId: id } });

  if (ctx.gatewayPort === undefined) {
    reporter.unavailable('gateway.psql', 'psql through the gateway', 'the gateway is not listening');
    return;
  }
  // Enrol a SCRAM-SHA-256 verifier for alice's token, so psql logs in with SCRAM from the start.
  const enrol = await fetch(`${ctx.apiUrl}/api/gateway/credentials`, { method: 'POST', headers: { authorization: `Bearer ${alice.token}` } });
  await enrol.arrayBuffer();
  const url = `postgres://alice@127.0.0.1:${ctx.gatewayPort}/${RESOURCE}`;
  const select = 'SELECT id, name, email, phone, card_number FROM customers ORDER BY id LIMIT 3';
  reporter.command(['PGPASSWORD=<alice-token>', 'psql', url, '-c', select]);
  const rows = await psql(url, alice.token, select);
  if (rows.code === 127) {
    reporter.unavailable('gateway.masked', 'psql through the gateway', 'the psql binary is not installed');
    return;
  }
  reporter.detail(rows.stdout + rows.stderr);
  const masked = rows.code === 0 && !/@example\.com/.test(rows.stdout) && /\*{4}/.test(rows.stdout);
  reporter.step('gateway.masked', masked ? 'psql through the gateway (SCRAM, alice\'s token): names hashed, e-mails, phones and cards masked'
    : `psql through the gateway did not show masked rows (exit ${rows.code})`, { status: masked ? 'ok' : 'fail', link: '/audit' });

  const del = 'DELETE FROM orders';
  reporter.command(['PGPASSWORD=<alice-token>', 'psql', url, '-c', del]);
  const blocked = await psql(url, alice.token, del);
  reporter.detail(blocked.stdout + blocked.stderr);
  const refused = blocked.code !== 0 && /unsafe-write/.test(blocked.stderr);
  reporter.step('gateway.blocked', refused ? 'DELETE without WHERE refused by the unsafe-write guardrail; the session stays usable'
    : `DELETE without WHERE was not refused as expected (exit ${blocked.code})`, { status: refused ? 'ok' : 'fail', link: '/audit' });

  const audit = await cli(['audit', 'verify']);
  reporter.step('audit.verified', audit.code === 0 ? 'audit chain verified: every login, statement and approval is hash-chained'
    : `audit verification failed (exit ${audit.code})`, { status: audit.code === 0 ? 'ok' : 'fail', link: '/audit' });
}
