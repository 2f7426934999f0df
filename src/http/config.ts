import { z } from 'zod';

/** Server configuration: from CLI flags, validated once; a bad value exits with code 2. */
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
  /** Largest OTLP body accepted, compressed or not (the Collector's default is 20 MiB). */
  maxBodyBytes: z.number().int().min(1024).default(16 * 1024 * 1024),
  /** Rows waiting for a commit before ingest answers 429. Bounds memory under overload. */
  queueMaxRows: z.number().int().min(1).default(500_000),
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
});

export type ServerConfig = z.infer<typeof serverConfigSchema>;

export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || host === '[::1]' || /^127\.\d+\.\d+\.\d+$/.test(host);
}
