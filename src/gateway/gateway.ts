import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import type { Database } from '../state/index.js';
import { AccessService } from './access.js';
import { StatementApprovals, statementHash } from './approvals.js';
import { AuditChain } from './audit.js';
import { AuditAnchor } from './audit-anchor.js';
import { ClientAuthenticator } from './client-auth.js';
import { chunkScheduler, type ChunkScheduler } from './chunk-scheduler.js';
import type { GatewayContext } from './context.js';
import { Guardrails, loadParser } from './guardrails/index.js';
import { Masker } from './masking/index.js';
import { SessionRegistry } from './registry.js';
import { SessionWatch } from './session-watch.js';
import { ResourceStore, type Resource } from './resources.js';
import { gatewayDb } from './schema.js';
import { ClientSession } from './session.js';
import { clientMessageLimits } from './wire/framer.js';
import { loadSecureContext } from './tls.js';
import { WebhookNotifier } from './webhook.js';

/**
 * Assembles and runs the gateway: the PostgreSQL listener, the stores and services it shares
 * with the API (resources, access, audit), and the sweeper that expires requests and grants.
 */

export interface GatewayOptions {
  db: Kysely<Database>;
  dataDir: string;
  log: Logger;
  host?: string;
  /** Listener port; 0 picks a free one; null runs the services without a listener. */
  port?: number | null;
  /**
   * When the port is taken, log a warning and run without a listener instead of failing (for a
   * default port the user did not ask for; an explicit one should fail loudly).
   */
  portOptional?: boolean;
  tls?: { certFile?: string; keyFile?: string };
  webhookUrl?: string;
  /** Largest protocol message accepted from the upstream (PostgreSQL's own cap is 1 GiB). */
  maxMessageBytes?: number;
  /** The largest result row relayed (default 16 MiB, `gateway.maxRowBytes`). */
  maxRowBytes?: number;
  /** Largest messages a logged-in client may send, by kind (defaults: CLIENT_LIMITS in wire/framer.ts). */
  clientMessageLimits?: { statement?: number; bind?: number; copyData?: number; other?: number };
  sweepIntervalMs?: number;
  /** See statement-log.ts; default 100 ms, 0 = one audit record per execution. */
  auditWindowMs?: number;
  /** Where the audit chain's MAC key and anchor live (default: the data dir; see audit-anchor.ts). */
  auditKeyFile?: string;
  auditAnchorFile?: string;
  /** Where audit commits run on a SQLite state database (audit-writer.ts); default `thread`. */
  auditWriter?: 'thread' | 'inline';
  /**
   * Where `file:` credentials may be (default <data dir>/credentials) and which environment
   * variables besides TIGHTLOOP_CRED_* may be named (resources.ts).
   */
  credentialDir?: string;
  credentialEnv?: readonly string[];
  /** Sessions one user may hold open on one resource at once (default 10; 0: no limit). */
  maxSessionsPerUser?: number;
  /** Work units judging one statement string may spend (guardrails/work.ts; default 4,000,000). */
  maxStatementWork?: number;
  /** How often live sessions are checked against their token, user, role and grant (ms). */
  sessionCheckMs?: number;
  onAlert?: (summary: string, detail: Record<string, unknown>) => void;
  /** Who gives users their turns at the work on server data (default: the process's one; tests and benches pass their own). */
  chunkScheduler?: ChunkScheduler;
}

export interface Gateway {
  /** Bound port (undefined without a listener). */
  readonly port: number | undefined;
  readonly host: string;
  readonly resources: ResourceStore;
  readonly access: AccessService;
  readonly audit: AuditChain;
  readonly auth: ClientAuthenticator;
  readonly guardrails: Guardrails;
  readonly registry: SessionRegistry;
  /** The resource's classified columns (masking/classify.ts) as the last session's catalog load found them. */
  classification(resource: Resource): ReturnType<Masker['classification']>;
  /**
   * Another node changed access or users (the cluster's event bus): checks every live session
   * now rather than at the next tick, and re-reads the statement approvals. Returns the
   * sessions ended.
   */
  recheck(): Promise<number>;
  /** Runs the expiry sweep now (tests, and after a decision that must take effect at once). */
  sweep(): Promise<void>;
  close(): Promise<void>;
}

/** Key of deterministic-hash masking: per installation, so hashes join within it but not across. */
function maskKey(dataDir: string): Buffer {
  const file = join(dataDir, 'gateway-mask.key');
  if (existsSync(file)) return Buffer.from(readFileSync(file, 'utf8').trim(), 'hex');
  const key = randomBytes(32);
  writeFileSync(file, key.toString('hex') + '\n', { mode: 0o600, flag: 'wx' });
  return key;
}

export async function startGateway(opts: GatewayOptions): Promise<Gateway> {
  await loadParser();
  const log = opts.log;
  const gdb = gatewayDb(opts.db);
  const anchor = new AuditAnchor(opts.auditAnchorFile ?? join(opts.dataDir, 'gateway-audit.anchor'), opts.auditKeyFile ?? join(opts.dataDir, 'gateway-audit.key'), log);
  const audit = new AuditChain(gdb, log, 100, anchor, opts.auditWriter ?? 'thread');
  await audit.open();
  const credentialDir = opts.credentialDir ?? join(opts.dataDir, 'credentials');
  mkdirSync(credentialDir, { recursive: true, mode: 0o700 });
  const resources = new ResourceStore(gdb, { dir: credentialDir, envNames: opts.credentialEnv ?? [] });
  const webhook = new WebhookNotifier(opts.webhookUrl, log);
  const approvals = new StatementApprovals(gdb, audit, webhook, log);
  await approvals.load();
  const registry = new SessionRegistry();
  const access = new AccessService(gdb, resources, audit, webhook, {
    grantEnded: (grantId, reason) => registry.endGrant(grantId, reason),
    alert: (summary, detail) => {
      log.warn({ alert: detail }, summary);
      opts.onAlert?.(summary, detail);
    },
    statementDecided: (req) => approvals.decided(req, req.sql === null ? null : statementHash(req.sql)),
  }, log);
  const hashKey = maskKey(opts.dataDir);
  const maskers = new Map<string, { updatedAt: string; masker: Masker }>();
  const ctx: GatewayContext = {
    db: opts.db,
    resources,
    access,
    auth: new ClientAuthenticator(opts.db, hashKey),
    audit,
    approvals,
    guardrails: new Guardrails({ workBudget: opts.maxStatementWork }),
    registry,
    secureContext: opts.port === null ? undefined : await loadSecureContext(opts.dataDir, opts.tls ?? {}, (m) => log.warn(m)),
    log,
    maxMessageBytes: opts.maxMessageBytes ?? 256 * 1024 * 1024,
    maxRowBytes: opts.maxRowBytes ?? 16 * 1024 * 1024,
    clientLimits: clientMessageLimits(opts.clientMessageLimits),
    auditWindowMs: opts.auditWindowMs ?? 100,
    maxSessionsPerUser: opts.maxSessionsPerUser ?? 10,
    chunks: opts.chunkScheduler ?? chunkScheduler,
    maskerFor(resource: Resource): Masker {
      const cached = maskers.get(resource.id);
      if (cached !== undefined && cached.updatedAt === resource.updatedAt) return cached.masker;
      const masker = new Masker(resource.policy.masking, hashKey);
      maskers.set(resource.id, { updatedAt: resource.updatedAt, masker });
      return masker;
    },
  };

  const host = opts.host ?? '127.0.0.1';
  let server: Server | undefined;
  let port: number | undefined;
  if (opts.port !== null) {
    const srv = createServer({ noDelay: true }, (socket) => {
      void new ClientSession(socket, ctx).run();
    });
    // A listener error after start (e.g. EMFILE) must not kill the process.
    const listening = await new Promise<boolean>((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException): void => {
        if (err.code === 'EADDRINUSE' && opts.portOptional === true) {
          log.warn(`PostgreSQL gateway not listening: port ${opts.port ?? 15432} on ${host} is in use (set another with --gateway-port)`);
          resolve(false);
        } else reject(err);
      };
      srv.once('error', onError);
      srv.listen(opts.port ?? 15432, host, () => {
        srv.off('error', onError);
        srv.on('error', (err) => log.error({ err }, 'gateway listener error'));
        resolve(true);
      });
    });
    if (listening) {
      server = srv;
      const addr = srv.address();
      port = typeof addr === 'object' && addr !== null ? addr.port : undefined;
    }
  }

  const watch = new SessionWatch(opts.db, registry, log, opts.sessionCheckMs ?? 500);
  watch.start();
  const sweep = (): Promise<void> => access.sweep();
  const sweeper = setInterval(() => {
    sweep().catch((err: unknown) => log.error({ err }, 'gateway expiry sweep failed'));
  }, opts.sweepIntervalMs ?? 2_000);
  sweeper.unref();

  let closing: Promise<void> | undefined;
  return {
    port,
    host,
    resources,
    access,
    audit,
    auth: ctx.auth,
    guardrails: ctx.guardrails,
    registry,
    classification: (resource) => ctx.maskerFor(resource).classification(),
    async recheck() {
      const [ended] = await Promise.all([watch.check(), approvals.reload()]);
      return ended;
    },
    sweep,
    close: () =>
      (closing ??= (async () => {
        clearInterval(sweeper);
        await watch.stop();
        const stopped = server === undefined ? Promise.resolve() : new Promise<void>((r) => server.close(() => r()));
        for (const s of registry.sessions()) s.terminate('the gateway is shutting down');
        await stopped;
        await webhook.settle();
        await audit.close();
      })()),
  };
}
