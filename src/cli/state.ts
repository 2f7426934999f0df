import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import pino from 'pino';
import { apiError, AppError } from '../core/app-error.js';
import { ConfigError, loadConfig } from '../config/load.js';
import type { ServerConfig } from '../config/schema.js';
import { AuditAnchor } from '../gateway/audit-anchor.js';
import { AuditChain } from '../gateway/audit.js';
import { gatewayDb } from '../gateway/schema.js';
import { SERVER_STATE_MIGRATIONS } from '../http/state-migrations.js';
import { compareCounts, copyTables, openSqliteSource, tablesWithRows, type CopyResult } from '../state/copy.js';
import { describeStateLocation, MIGRATION_NAMES, migrateToLatest, openStateStore, parseStateLocation, type Database } from '../state/index.js';
import { sql, type Kysely } from 'kysely';

/**
 * `tightloop state migrate --to postgres://…`: moves an embedded install's state (the SQLite
 * file `<data dir>/state.db`) into an empty PostgreSQL database, for `tightloop up --state`.
 *
 * Order: lock the SQLite file (refused while a tightloop process has it open), refuse a target
 * that already holds tightloop rows, run the target's migrations, then in ONE transaction on the
 * target copy every table, compare row counts and verify the gateway audit chain with the audit
 * key and anchor of the data directory; any failure rolls the whole copy back. The SQLite file
 * is only read. Exit codes: 0 copied, 1 verification failed (nothing kept), 2 refused.
 */

/** Errors that are a refusal (exit 2): the state of things, not a failed copy. */
const REFUSALS = new Set([
  'state_in_use', 'state_not_found', 'state_target_not_empty', 'state_url_invalid', 'state_unavailable',
  'state_copy_unknown_table', 'state_copy_unknown_column', 'state_copy_unknown_type', 'state_version_mismatch', 'usage',
]);

class VerifyFailed extends Error {}

async function verifyAudit(trx: Kysely<Database>, dataDir: string, audit: { keyFile?: string; anchorFile?: string }): Promise<string> {
  const keyFile = audit.keyFile ?? join(dataDir, 'gateway-audit.key');
  const anchorFile = audit.anchorFile ?? join(dataDir, 'gateway-audit.anchor');
  const log = pino({ level: 'error' }, pino.destination(2));
  const anchor = existsSync(keyFile) || existsSync(anchorFile) ? new AuditAnchor(anchorFile, keyFile, log) : undefined;
  const r = await new AuditChain(gatewayDb(trx), log, 100, anchor, 'inline').verify();
  if (!r.ok) throw new VerifyFailed(`audit chain BROKEN on the target at record ${r.firstBad.seq} (id ${r.firstBad.id || '-'}): ${r.firstBad.reason}`);
  return `audit chain OK on the target: ${r.records} records, head ${r.head.seq} ${r.head.hash}${r.anchor === undefined ? '' : `, anchored at ${r.anchor.seq}`}`;
}

export async function migrateState(opts: { to?: string; dataDir: string }, out: (line: string) => void, fail: (line: string) => void = out): Promise<number> {
  const dataDir = resolve(opts.dataDir);
  // The audit key and anchor as `tightloop up` on this data directory finds them (config/).
  let audit: ServerConfig['audit'];
  try {
    audit = (await loadConfig({ flags: { dataDir } })).config.audit;
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    fail(err.message.split('\n').map((l) => `tightloop state migrate: ${l}`).join('\n'));
    return 2;
  }
  let src: ReturnType<typeof openSqliteSource> | undefined;
  let target: Awaited<ReturnType<typeof openStateStore>> | undefined;
  try {
    const loc = parseStateLocation(opts.to, dataDir);
    if (loc.dialect !== 'postgres') throw apiError('usage', 'give the target with --to postgres://user:password@host:5432/database');
    src = openSqliteSource(join(dataDir, 'state.db'));
    const known = new Set([...MIGRATION_NAMES, ...Object.keys(SERVER_STATE_MIGRATIONS)]);
    const newer = src.migrations.filter((m) => !known.has(m));
    if (newer.length > 0) throw apiError('state_version_mismatch', `the SQLite state has migrations this version does not know (${newer.join(', ')}): migrate with the tightloop version that wrote it`);
    const done = new Set(src.migrations);
    const behind = [...known].filter((m) => !done.has(m));
    if (behind.length > 0) throw apiError('state_version_mismatch', `the SQLite state lacks ${behind.length} migration(s) of this version (${behind.slice(0, 3).join(', ')}${behind.length > 3 ? ', …' : ''}): run \`tightloop up\` on this data directory once with this version, stop it, then migrate`);

    target = await openStateStore({ dialect: 'postgres', connectionString: loc.connectionString, migrate: false, maxConnections: 2 });
    const busy = await tablesWithRows(target.db as unknown as Kysely<unknown>, src.tables);
    if (busy.length > 0) {
      throw apiError('state_target_not_empty', `the target database already holds tightloop data (${busy.map((b) => `${b.table}: ${b.rows} rows`).join(', ')}): migrate into an empty database`);
    }
    await migrateToLatest(target.db, SERVER_STATE_MIGRATIONS);
    const source = src;
    let copied: CopyResult[] = [];
    let auditLine = '';
    await target.db.transaction().execute(async (trx) => {
      // Two runs into one target: the second waits here, then finds the first one's rows (refused).
      await sql`select pg_advisory_xact_lock(hashtext('tightloop state migrate'))`.execute(trx);
      copied = await copyTables(source, trx as unknown as Kysely<unknown>);
      const diff = (await compareCounts(source, trx as unknown as Kysely<unknown>)).filter((c) => c.source !== c.target);
      if (diff.length > 0) throw new VerifyFailed(`row counts differ after the copy: ${diff.map((d) => `${d.table} ${d.source} → ${d.target}`).join(', ')}`);
      auditLine = await verifyAudit(trx, dataDir, audit);
    });
    const total = copied.reduce((n, c) => n + c.rows, 0);
    out(`state copied from ${join(dataDir, 'state.db')} to ${describeStateLocation(loc)}`);
    for (const c of copied) out(`  ${c.table.padEnd(32)} ${String(c.rows).padStart(9)} rows`);
    out(`  ${copied.length} tables, ${total} rows; row counts match`);
    out(`  ${auditLine}`);
    out(`next: tightloop up --data-dir ${opts.dataDir} --state <the same URL> (keep the data directory: the audit key and anchor stay there)`);
    return 0;
  } catch (err) {
    if (err instanceof VerifyFailed) {
      fail(`tightloop state migrate: ${err.message}; the copy was rolled back, the target holds no tightloop rows`);
      return 1;
    }
    const code = err instanceof AppError ? err.code : undefined;
    fail(`tightloop state migrate: ${(err as Error).message}${code === undefined || REFUSALS.has(code) ? '' : ' (the copy was rolled back)'}`);
    return code !== undefined && REFUSALS.has(code) ? 2 : 1;
  } finally {
    src?.close();
    await target?.close();
  }
}

/** Adds `state migrate`; `setCode` receives the exit code. */
export function registerStateCommands(program: Command, setCode: (code: number) => void): void {
  const state = program.command('state').description('the state database (users, tokens, rules, alerts, deploys, incidents, grants, audit)');
  state.command('migrate')
    .description('copy the embedded SQLite state into an empty PostgreSQL database, for tightloop up --state (docs/cluster.md)')
    .requiredOption('--to <url>', 'target: postgres://user:password@host:5432/database (empty, or never used by tightloop)')
    .option('--data-dir <dir>', 'data directory of the embedded install (stopped)', './.tightloop')
    .action(async (o: { to: string; dataDir: string }) => {
      setCode(await migrateState(o, (line) => process.stdout.write(line + '\n'), (line) => process.stderr.write(line + '\n')));
    });
}
