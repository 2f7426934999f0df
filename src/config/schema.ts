import { z } from 'zod';

/**
 * The ingest group commit's defaults (telemetry/writer.ts): the schema below and a writer built
 * without some option take them from here, so there is one value of each.
 */
export const INGEST_DEFAULTS = {
  queueMaxRows: 500_000,
  queueMaxBytes: 512 * 1024 * 1024,
  groupRows: 20_000,
  /** Groups in flight on DuckDB: its ingest log takes many small groups at once. */
  maxInFlight: 16,
  /**
   * On ClickHouse: two INSERTs in flight, so under load what arrives meanwhile waits and goes
   * into the next one. Fewer, larger INSERTs are what ClickHouse wants: each makes a part per
   * table and view, and costs an HTTP request.
   */
  maxInFlightClickHouse: 2,
  maxDelayMs: 0,
} as const;

/**
 * The server's configuration, validated once. It is assembled by `loadConfig` (config/load.ts)
 * from flags, the environment, `tightloop.yaml` and these defaults; tests build it with
 * `serverConfigSchema.parse({...})`. Every field is listed, with its flag, variable and YAML key,
 * in config/settings.ts and docs/configuration.md.
 */
export const serverConfigSchema = z.object({
  dataDir: z.string().min(1),
  /**
   * The state database (`--state`, TIGHTLOOP_STATE_URL): unset is the SQLite file
   * `<dataDir>/state.db`; `postgres://…` a PostgreSQL database (state/location.ts).
   */
  stateUrl: z.string().min(1).optional(),
  /**
   * The telemetry store (`--telemetry`, TIGHTLOOP_TELEMETRY_URL): unset (or `duckdb`) is DuckDB in
   * `<dataDir>/telemetry.duckdb`; `clickhouse://user:pass@host:8123/db` a ClickHouse database.
   */
  telemetryUrl: z.string().min(1).optional(),
  /** ClickHouse only (`--clickhouse-cluster`): tables ON CLUSTER, Replicated under Distributed (telemetry/README.md). */
  clickhouseCluster: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'a plain identifier').optional(),
  /**
   * What this node runs (`--role`, comma list; default all): api, ingest, gateway, worker. Which
   * combinations are coherent: `checkRoles` in http/cluster.ts (docs/cluster.md).
   */
  roles: z.array(z.string().min(1)).min(1).default(['api', 'ingest', 'gateway', 'worker']),
  host: z.string().min(1).default('127.0.0.1'),
  port: z.number().int().min(0).max(65535).default(4318),
  /**
   * PostgreSQL gateway port. Unset: 15432 if free (else the gateway runs without a listener and
   * says so), or an ephemeral one when `port` is 0 (tests). Given: it must be free.
   */
  gatewayPort: z.number().int().min(0).max(65535).optional(),
  /** Largest OTLP body accepted, compressed or not (the Collector's default is 20 MiB). */
  maxBodyBytes: z.number().int().min(1024).default(16 * 1024 * 1024),
  /** Rows waiting for a commit before ingest answers 429. Bounds memory under overload. */
  queueMaxRows: z.number().int().min(1).default(INGEST_DEFAULTS.queueMaxRows),
  /** The ingest group commit (telemetry/writer.ts) in front of the telemetry store. */
  ingest: z.object({
    /** Estimated bytes waiting for a commit before ingest answers 429. */
    queueMaxBytes: z.number().int().min(1024 * 1024).default(INGEST_DEFAULTS.queueMaxBytes),
    /** A group commits as soon as this many rows wait (never more than queueMaxRows). */
    groupRows: z.number().int().min(1).default(INGEST_DEFAULTS.groupRows),
    /** Groups committing at once; with ClickHouse left at its default, 2 (config/load.ts). */
    maxInFlight: z.number().int().min(1).max(1024).default(INGEST_DEFAULTS.maxInFlight),
    /**
     * Longest a request waits for companions. 0: the DuckDB ingest log already groups what
     * arrives while it writes, so waiting would only add latency.
     */
    maxDelayMs: z.number().int().min(0).max(10_000).default(INGEST_DEFAULTS.maxDelayMs),
  }).prefault({}),
  /**
   * Several nodes on a PostgreSQL state database (state/cluster.ts): the `active` lease is renewed
   * every `heartbeatMs` and expires `leaseMs` after its last renewal; a standby takes over at the
   * expiry, so a dead holder is replaced after about `leaseMs` plus the server's start.
   */
  cluster: z.object({
    heartbeatMs: z.number().int().min(100).max(60_000).default(2_000),
    leaseMs: z.number().int().min(300).max(600_000).default(6_000),
    /**
     * The URL the other nodes forward to (registered in `cluster_nodes`); unset: the bind
     * address, which a node bound to 0.0.0.0 or :: cannot use (checkAdvertiseUrl).
     */
    advertiseUrl: z.string().min(1).optional(),
  }).prefault({}),
  retentionDays: z
    .object({
      spans: z.number().int().min(1).default(7),
      logs: z.number().int().min(1).default(7),
      metrics: z.number().int().min(1).default(30),
    })
    .default({ spans: 7, logs: 7, metrics: 30 }),
  /** Folder of action YAML files (default <dataDir>/actions). */
  actionsDir: z.string().min(1).optional(),
  /** services.yaml or a folder of service files (default <dataDir>/services.yaml and <dataDir>/services/). */
  servicesPath: z.string().min(1).optional(),
  /** An alert or failed verdict joins the open incident of its service/environment active within this many seconds. */
  incidentWindowS: z.number().int().min(1).max(7 * 86_400).default(1800),
  /**
   * Browser origins allowed to send OTLP (`--cors-origins`, TIGHTLOOP_CORS_ORIGINS): origins,
   * `loopback` (pages on this machine, the default), `*` or `none`. See cors.ts.
   */
  corsOrigins: z.array(z.string().min(1)).default(['loopback']),
  logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  /** The PostgreSQL gateway's files and hooks (docs/gateway.md). */
  gateway: z.object({
    /** Pending access requests are posted here. */
    webhookUrl: z.string().url().optional(),
    /** TLS for SSLRequest: certificate and key files, both or neither. */
    tlsCertFile: z.string().min(1).optional(),
    tlsKeyFile: z.string().min(1).optional(),
    /** Where `file:` credentials may be (default <dataDir>/credentials). */
    credentialDir: z.string().min(1).optional(),
    /** Variables `env:` credentials may name besides TIGHTLOOP_CRED_*. */
    credentialEnv: z.array(z.string().min(1)).default([]),
    /** Gateway sessions one user may hold open on one resource at once (0: no limit). */
    maxSessionsPerUser: z.number().int().min(0).default(10),
    /** Work units judging one statement string may spend; more is refused (SQLSTATE 54001, guardrails/work.ts). */
    maxStatementWork: z.number().int().min(100_000).default(4_000_000),
    /** The largest result row the gateway relays (bytes); a larger one ends the session with 54000. */
    maxRowBytes: z.number().int().min(1024).default(16 * 1024 * 1024),
  }).prefault({}),
  /** The audit chain's key and anchor (default <dataDir>/gateway-audit.key, .anchor). */
  audit: z.object({
    keyFile: z.string().min(1).optional(),
    anchorFile: z.string().min(1).optional(),
  }).prefault({}),
  /** `tightloop up --demo` only. */
  demo: z.object({
    /** The shop's proxy port (a free one when it is taken; 0 any). */
    shopPort: z.number().int().min(0).max(65535).default(8080),
  }).prefault({}),
});

export type ServerConfig = z.infer<typeof serverConfigSchema>;
