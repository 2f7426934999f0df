/**
 * Every server setting once: its name (the path in ServerConfig and the key in tightloop.yaml),
 * its `tightloop up` flag, its environment variable, how a string becomes its value, and whether
 * it is a secret. config/load.ts resolves each one (flag > environment > file > default);
 * docs/configuration.md is the same table for people.
 */

export type SettingKind =
  /** Text as given. */
  | 'string'
  /** An integer; a string must be all digits. */
  | 'int'
  /** A comma list (YAML: a list or a comma string). */
  | 'list'
  /** A file or folder: relative to the working directory (flag, variable) or to the YAML file. */
  | 'path';

/**
 * How `config show` hides a secret: `password` replaces a URL's password (the host stays
 * readable); `url` keeps only the scheme and host (webhook URLs carry their token in the path).
 */
export type SecretKind = 'password' | 'url';

export interface Setting {
  /** Path in ServerConfig, dotted: `retentionDays.spans`; the same nesting in tightloop.yaml. */
  readonly name: string;
  /** The `tightloop up` flag, when there is one. */
  readonly flag?: string;
  readonly env: string;
  readonly kind: SettingKind;
  readonly secret?: SecretKind;
  /** Not read from `<dataDir>/tightloop.yaml` (the file is found through it). */
  readonly notInDataDirFile?: true;
  readonly doc: string;
}

export const DEFAULT_DATA_DIR = './.tightloop';
/** The configuration file looked for in the data directory when `--config` is not given. */
export const CONFIG_FILE_NAME = 'tightloop.yaml';

export const SETTINGS: readonly Setting[] = [
  { name: 'dataDir', flag: '--data-dir', env: 'TIGHTLOOP_DATA_DIR', kind: 'path', notInDataDirFile: true, doc: `data directory (default ${DEFAULT_DATA_DIR})` },
  { name: 'roles', flag: '--role', env: 'TIGHTLOOP_ROLE', kind: 'list', doc: 'what this node runs: api, ingest, gateway, worker (api, ingest and worker go together; docs/cluster.md)' },
  { name: 'stateUrl', flag: '--state', env: 'TIGHTLOOP_STATE_URL', kind: 'string', secret: 'password', doc: 'state database: postgres://user:pass@host:5432/db (unset: SQLite in the data directory)' },
  { name: 'telemetryUrl', flag: '--telemetry', env: 'TIGHTLOOP_TELEMETRY_URL', kind: 'string', secret: 'password', doc: 'telemetry store: duckdb or clickhouse://user:pass@host:8123/db (unset: DuckDB in the data directory)' },
  { name: 'clickhouseCluster', flag: '--clickhouse-cluster', env: 'TIGHTLOOP_CLICKHOUSE_CLUSTER', kind: 'string', doc: 'with a clickhouse:// telemetry store: create the tables ON CLUSTER this name, Replicated under Distributed' },
  { name: 'host', flag: '--host', env: 'TIGHTLOOP_HOST', kind: 'string', doc: 'address to bind; off loopback, ingest needs a token' },
  { name: 'port', flag: '--port', env: 'TIGHTLOOP_PORT', kind: 'int', doc: 'HTTP port: OTLP, API, console (0: any free port)' },
  { name: 'gatewayPort', flag: '--gateway-port', env: 'TIGHTLOOP_GATEWAY_PORT', kind: 'int', doc: 'PostgreSQL gateway port (unset: 15432 if free)' },
  { name: 'maxBodyBytes', env: 'TIGHTLOOP_MAX_BODY_BYTES', kind: 'int', doc: 'largest OTLP or Sentry body accepted, compressed or not' },
  { name: 'queueMaxRows', flag: '--queue-max-rows', env: 'TIGHTLOOP_QUEUE_MAX_ROWS', kind: 'int', doc: 'rows waiting for a commit before ingest answers 429' },
  { name: 'ingest.queueMaxBytes', env: 'TIGHTLOOP_INGEST_QUEUE_MAX_BYTES', kind: 'int', doc: 'estimated bytes waiting for a commit before ingest answers 429' },
  { name: 'ingest.groupRows', env: 'TIGHTLOOP_INGEST_GROUP_ROWS', kind: 'int', doc: 'a commit group closes at this many rows (at most queueMaxRows)' },
  { name: 'ingest.maxInFlight', env: 'TIGHTLOOP_INGEST_MAX_IN_FLIGHT', kind: 'int', doc: 'commit groups in flight at once (default 16; 2 with a clickhouse:// telemetry store)' },
  { name: 'ingest.maxDelayMs', env: 'TIGHTLOOP_INGEST_MAX_DELAY_MS', kind: 'int', doc: 'longest a request waits for companions before its group commits' },
  { name: 'cluster.heartbeatMs', env: 'TIGHTLOOP_CLUSTER_HEARTBEAT_MS', kind: 'int', doc: 'several nodes on PostgreSQL: heartbeat and lease renewal period' },
  { name: 'cluster.advertiseUrl', flag: '--advertise-url', env: 'TIGHTLOOP_ADVERTISE_URL', kind: 'string', doc: 'several nodes on PostgreSQL: the http:// URL the other nodes reach this one at (required when --host is 0.0.0.0 or ::; unset: the bind address)' },
  { name: 'cluster.leaseMs', env: 'TIGHTLOOP_CLUSTER_LEASE_MS', kind: 'int', doc: 'several nodes on PostgreSQL: how long the active lease outlives its last renewal (at least 3 heartbeats)' },
  { name: 'retentionDays.spans', env: 'TIGHTLOOP_RETENTION_SPANS_DAYS', kind: 'int', doc: 'days spans are kept' },
  { name: 'retentionDays.logs', env: 'TIGHTLOOP_RETENTION_LOGS_DAYS', kind: 'int', doc: 'days logs are kept' },
  { name: 'retentionDays.metrics', env: 'TIGHTLOOP_RETENTION_METRICS_DAYS', kind: 'int', doc: 'days metric points are kept' },
  { name: 'actionsDir', flag: '--actions-dir', env: 'TIGHTLOOP_ACTIONS_DIR', kind: 'path', doc: 'folder of action YAML files (unset: <dataDir>/actions)' },
  { name: 'servicesPath', flag: '--services', env: 'TIGHTLOOP_SERVICES', kind: 'path', doc: 'services.yaml or a folder of service files (unset: <dataDir>/services.yaml and <dataDir>/services/)' },
  { name: 'incidentWindowS', flag: '--incident-window', env: 'TIGHTLOOP_INCIDENT_WINDOW', kind: 'int', doc: 'seconds within which alerts join an open incident of their service' },
  { name: 'corsOrigins', flag: '--cors-origins', env: 'TIGHTLOOP_CORS_ORIGINS', kind: 'list', doc: 'browser origins allowed to send OTLP: origins, loopback, * or none' },
  { name: 'logLevel', flag: '--log-level', env: 'TIGHTLOOP_LOG_LEVEL', kind: 'string', doc: 'fatal, error, warn, info, debug, trace or silent' },
  { name: 'gateway.webhookUrl', env: 'TIGHTLOOP_GATEWAY_WEBHOOK_URL', kind: 'string', secret: 'url', doc: 'pending access requests are posted here' },
  { name: 'gateway.tlsCertFile', env: 'TIGHTLOOP_GATEWAY_TLS_CERT', kind: 'path', doc: 'gateway TLS certificate (PEM; with tlsKeyFile)' },
  { name: 'gateway.tlsKeyFile', env: 'TIGHTLOOP_GATEWAY_TLS_KEY', kind: 'path', doc: 'gateway TLS private key (PEM; with tlsCertFile)' },
  { name: 'gateway.credentialDir', env: 'TIGHTLOOP_GATEWAY_CREDENTIAL_DIR', kind: 'path', doc: 'where file: credentials may be (unset: <dataDir>/credentials)' },
  { name: 'gateway.maxRowBytes', env: 'TIGHTLOOP_GATEWAY_MAX_ROW_BYTES', kind: 'int', doc: 'largest result row the gateway relays; a larger one ends the session with SQLSTATE 54000' },
  { name: 'gateway.maxSessionsPerUser', env: 'TIGHTLOOP_GATEWAY_MAX_SESSIONS_PER_USER', kind: 'int', doc: 'gateway sessions one user may hold open on one resource at once (0: no limit)' },
  { name: 'gateway.maxStatementWork', env: 'TIGHTLOOP_GATEWAY_MAX_STATEMENT_WORK', kind: 'int', doc: 'work units the gateway may spend judging one statement string; more is refused with SQLSTATE 54001' },
  { name: 'gateway.credentialEnv', env: 'TIGHTLOOP_GATEWAY_CREDENTIAL_ENV', kind: 'list', doc: 'variables env: credentials may name besides TIGHTLOOP_CRED_*' },
  { name: 'audit.keyFile', env: 'TIGHTLOOP_AUDIT_KEY_FILE', kind: 'path', doc: 'audit chain key (unset: <dataDir>/gateway-audit.key)' },
  { name: 'audit.anchorFile', env: 'TIGHTLOOP_AUDIT_ANCHOR_FILE', kind: 'path', doc: 'audit chain anchor (unset: <dataDir>/gateway-audit.anchor)' },
  { name: 'demo.shopPort', env: 'TIGHTLOOP_DEMO_SHOP_PORT', kind: 'int', doc: "`up --demo`: the shop proxy's port (taken: a free one; 0 any)" },
];

/**
 * Client settings of the CLI's REST commands (`tightloop errors`, `gateway`, `deploy`, …): the
 * `--url`/`--token` flags win over these variables (config/client.ts).
 */
export const CLIENT_SETTINGS = [
  { name: 'url', flag: '--url', env: 'TIGHTLOOP_URL', doc: 'the tightloop the CLI talks to (default http://127.0.0.1:4318)' },
  { name: 'token', flag: '--token', env: 'TIGHTLOOP_TOKEN', doc: 'the API token the CLI sends (secret)' },
] as const;

export function settingByName(name: string): Setting | undefined {
  return SETTINGS.find((s) => s.name === name);
}
