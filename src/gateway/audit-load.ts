import { createInterface } from 'node:readline';
import pino from 'pino';
import { openStateStore, type StateStore } from '../state/index.js';
import { AuditAnchor } from './audit-anchor.js';
import { AuditChain } from './audit.js';
import { gatewayDb } from './schema.js';

/**
 * One audit writer process, as a gateway node appends: `sessions` concurrent loops, each
 * appending a `statement.start` record and waiting for its commit before the next (audit before
 * effect). Run as a child (audit-load-child.ts, `node audit-load-child.js '<json options>'`) by test/audit-chain-writers.test.ts
 * and `npm run bench -- state`: it prints `ready`, starts on a `go` line on stdin (so several
 * writers start together), and prints `done <json>` with what it appended.
 */

export interface AuditLoadOptions {
  /** The state database (postgres://… or a SQLite file path). */
  state: string;
  keyFile: string;
  anchorFile: string;
  /** A label in every record's data. */
  writer: string;
  sessions: number;
  /** Stop after this many records per session, or at `durationMs`, whichever comes first. */
  perSession: number;
  durationMs: number;
}

export interface AuditLoadResult {
  writer: string;
  appended: number;
  failed: number;
  firstError?: string;
  ms: number;
  commits: number;
}

export async function openWriter(o: Pick<AuditLoadOptions, 'state' | 'keyFile' | 'anchorFile'>): Promise<{ chain: AuditChain; store: StateStore }> {
  const store = o.state.startsWith('postgres')
    ? await openStateStore({ dialect: 'postgres', connectionString: o.state, migrate: false, maxConnections: 2 })
    : await openStateStore({ dialect: 'sqlite', path: o.state, migrate: false });
  const log = pino({ level: 'error' }, pino.destination(2));
  const chain = new AuditChain(gatewayDb(store.db), log, 100, new AuditAnchor(o.anchorFile, o.keyFile, log), 'thread');
  await chain.open();
  return { chain, store };
}

export async function runAuditLoad(chain: AuditChain, o: AuditLoadOptions): Promise<AuditLoadResult> {
  const r: AuditLoadResult = { writer: o.writer, appended: 0, failed: 0, ms: 0, commits: 0 };
  const commits0 = chain.stats.commits;
  const t0 = performance.now();
  const deadline = t0 + o.durationMs;
  await Promise.all(Array.from({ length: o.sessions }, async (_, s) => {
    for (let i = 0; i < o.perSession && performance.now() < deadline; i++) {
      const { ticket } = chain.append({ kind: 'statement.start', actor: o.writer, resource: 'bench', session: `${o.writer}-${s}`, data: { writer: o.writer, session: s, i, sql: 'UPDATE t SET n = n + 1 WHERE id = $1' } });
      try {
        await chain.durable(ticket);
        r.appended++;
      } catch (err) {
        r.failed++;
        r.firstError ??= (err as Error).message;
      }
    }
  }));
  r.ms = performance.now() - t0;
  r.commits = chain.stats.commits - commits0;
  return r;
}

/** The child's life: open, `ready`, wait for `go`, append, close, `done <json>`. */
export async function auditLoadMain(options: string): Promise<void> {
  const o = JSON.parse(options) as AuditLoadOptions;
  const { chain, store } = await openWriter(o);
  process.stdout.write('ready\n');
  const lines = createInterface({ input: process.stdin });
  await new Promise<void>((resolve) => lines.once('line', () => resolve()));
  lines.close();
  const r = await runAuditLoad(chain, o);
  // Records that failed stay queued and are retried here: the chain must end whole.
  await chain.close().catch((err: unknown) => { r.firstError ??= `close: ${(err as Error).message}`; });
  await store.close();
  process.stdout.write(`done ${JSON.stringify(r)}\n`);
}

