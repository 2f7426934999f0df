import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { isMap, isScalar, isSeq, LineCounter, parseDocument, type Document } from 'yaml';
import { parseCorsOrigins } from '../http/cors.js';
import { parseStateLocation } from '../state/location.js';
import { INGEST_DEFAULTS, serverConfigSchema, type ServerConfig } from './schema.js';
import { CONFIG_FILE_NAME, DEFAULT_DATA_DIR, SETTINGS, type Setting } from './settings.js';

/**
 * Resolves every setting of config/settings.ts: a flag wins over the environment, the environment
 * over the configuration file (`--config FILE`, else `<dataDir>/tightloop.yaml` when it exists),
 * the file over the schema's default. Then validates the whole (config/schema.ts) and checks what
 * one field cannot say alone (URLs, role combinations, ports, TLS pairs). Every problem names the
 * setting and where its value came from; all of them are reported at once.
 */

export type SourceKind = 'flag' | 'env' | 'file' | 'default';

export interface SettingSource {
  kind: SourceKind;
  /** `--port`, `TIGHTLOOP_PORT`, `/etc/tightloop.yaml:3` or `default`. */
  where: string;
}

export interface LoadedConfig {
  config: ServerConfig;
  /** Where each setting's value came from, by setting name. */
  sources: Record<string, SettingSource>;
  /** The configuration file read, if any. */
  file: string | undefined;
}

export interface ConfigInput {
  /** Flag values by setting name (strings as typed, or numbers commander already parsed). */
  flags?: Record<string, string | number | undefined>;
  /** The environment (default process.env). An empty variable counts as unset. */
  env?: Readonly<Record<string, string | undefined>>;
  /** `--config FILE`: read instead of `<dataDir>/tightloop.yaml`, and it must exist. */
  configFile?: string;
  /** Base of relative paths from flags and variables (default the working directory). */
  cwd?: string;
}

export interface ConfigIssue {
  setting: string;
  source: SettingSource;
  message: string;
}

/** What `tightloop up` prints and exits 2 for. */
export class ConfigError extends Error {
  readonly code = 'config_invalid';
  constructor(readonly issues: readonly ConfigIssue[]) {
    super(issues.map(formatIssue).join('\n'));
    this.name = 'ConfigError';
  }
}

/** `--state / TIGHTLOOP_STATE_URL: invalid state URL: … (stateUrl, from flag --state)`. */
export function formatIssue(i: ConfigIssue): string {
  const s = SETTINGS.find((x) => x.name === i.setting);
  const label = s === undefined ? i.setting : [s.flag, s.env].filter((x) => x !== undefined).join(' / ');
  return `${label}: ${i.message} (${i.setting}, from ${i.source.kind === 'default' ? 'the default' : `${i.source.kind} ${i.source.where}`})`;
}

interface Candidate { value: unknown; source: SettingSource; base: string }

const DEFAULT_SOURCE: SettingSource = { kind: 'default', where: 'default' };

export async function loadConfig(input: ConfigInput = {}): Promise<LoadedConfig> {
  const env = input.env ?? process.env;
  const cwd = input.cwd ?? process.cwd();
  const flags = input.flags ?? {};
  const issues: ConfigIssue[] = [];

  const fromFlagOrEnv = (s: Setting): Candidate | undefined => {
    const f = flags[s.name];
    if (f !== undefined && s.flag !== undefined) return { value: f, source: { kind: 'flag', where: s.flag }, base: cwd };
    const e = env[s.env];
    if (e !== undefined && e !== '') return { value: e, source: { kind: 'env', where: s.env }, base: cwd };
    return undefined;
  };

  // The file is found through the data directory, which is resolved first (flag, env, --config file).
  let file: YamlFile | undefined;
  if (input.configFile !== undefined) {
    const path = resolve(cwd, input.configFile);
    if (!existsSync(path)) throw new ConfigError([{ setting: 'config', source: { kind: 'flag', where: '--config' }, message: `${path}: no such file` }]);
    file = readYaml(path, issues, false);
  }
  const dataDirSetting = SETTINGS.find((s) => s.name === 'dataDir') as Setting;
  const dataDirCandidate = fromFlagOrEnv(dataDirSetting) ?? file?.get(dataDirSetting) ?? { value: DEFAULT_DATA_DIR, source: DEFAULT_SOURCE, base: cwd };
  const dataDir = resolve(dataDirCandidate.base, String(dataDirCandidate.value));
  if (file === undefined && existsSync(join(dataDir, CONFIG_FILE_NAME))) file = readYaml(join(dataDir, CONFIG_FILE_NAME), issues, true);

  const raw: Record<string, unknown> = {};
  const sources: Record<string, SettingSource> = {};
  for (const s of SETTINGS) {
    const c = s.name === 'dataDir' ? dataDirCandidate : fromFlagOrEnv(s) ?? file?.get(s);
    sources[s.name] = c?.source ?? DEFAULT_SOURCE;
    if (c === undefined) continue;
    try {
      setPath(raw, s.name, convert(s, c));
    } catch (err) {
      issues.push({ setting: s.name, source: c.source, message: (err as Error).message });
    }
  }
  const parsed = serverConfigSchema.safeParse(raw);
  if (!parsed.success) {
    for (const i of parsed.error.issues) {
      const path = i.path.map(String);
      let name = path.join('.');
      while (name !== '' && sources[name] === undefined) name = name.slice(0, Math.max(0, name.lastIndexOf('.')));
      issues.push({ setting: name || path.join('.'), source: sources[name] ?? DEFAULT_SOURCE, message: i.message });
    }
    throw new ConfigError(issues);
  }
  if (issues.length > 0) throw new ConfigError(issues);
  const config = parsed.data;
  await crossCheck(config, sources, issues);
  if (issues.length > 0) throw new ConfigError(issues);
  return { config, sources, file: file?.path };
}

/** What no single field can check. Mutates `config` only to normalise (CORS origins) and for defaults that depend on another setting. */
async function crossCheck(config: ServerConfig, sources: Record<string, SettingSource>, issues: ConfigIssue[]): Promise<void> {
  const fail = (setting: string, message: string): void => void issues.push({ setting, source: sources[setting] ?? DEFAULT_SOURCE, message });
  try {
    parseStateLocation(config.stateUrl, config.dataDir);
  } catch (err) {
    fail('stateUrl', (err as Error).message);
  }
  if (config.telemetryUrl !== undefined && config.telemetryUrl !== 'duckdb') {
    try {
      const { isClickHouseUrl, parseClickHouseUrl } = await import('../telemetry/clickhouse-sql.js');
      if (!isClickHouseUrl(config.telemetryUrl)) throw new Error('expected duckdb or clickhouse://user:pass@host:8123/db');
      parseClickHouseUrl(config.telemetryUrl);
      // ClickHouse's own default, unless ingest.maxInFlight was set (schema.ts INGEST_DEFAULTS).
      if ((sources['ingest.maxInFlight'] ?? DEFAULT_SOURCE).kind === 'default') config.ingest.maxInFlight = INGEST_DEFAULTS.maxInFlightClickHouse;
    } catch (err) {
      fail('telemetryUrl', (err as Error).message);
    }
  }
  try {
    // Loaded here only: http/cluster.js brings the server with it, which `up` needs anyway.
    const { checkRoles } = await import('../http/cluster.js');
    checkRoles(config.roles);
  } catch (err) {
    fail('roles', (err as Error).message);
  }
  try {
    config.corsOrigins = parseCorsOrigins(config.corsOrigins.join(','));
  } catch (err) {
    fail('corsOrigins', (err as Error).message);
  }
  if (config.gatewayPort !== undefined && config.gatewayPort !== 0 && config.gatewayPort === config.port) {
    fail('gatewayPort', `the gateway cannot listen on the HTTP port ${config.port} (port, from ${describe(sources.port)})`);
  }
  if ((config.gateway.tlsCertFile === undefined) !== (config.gateway.tlsKeyFile === undefined)) {
    const missing = config.gateway.tlsCertFile === undefined ? 'gateway.tlsCertFile' : 'gateway.tlsKeyFile';
    const given = missing === 'gateway.tlsCertFile' ? 'gateway.tlsKeyFile' : 'gateway.tlsCertFile';
    fail(given, `TLS needs both a certificate and a key: ${missing} is not set`);
  }
  if (config.gateway.webhookUrl !== undefined && !/^https?:\/\//i.test(config.gateway.webhookUrl)) {
    fail('gateway.webhookUrl', 'expected an http:// or https:// URL');
  }
  // A bad stateUrl is reported above; the advertised URL is checked against a good one.
  const dialect = ((): 'sqlite' | 'postgres' | undefined => {
    try { return parseStateLocation(config.stateUrl, config.dataDir).dialect; } catch { return undefined; } // a bad stateUrl is reported by its own check above
  })();
  if (dialect !== undefined) try {
    const { checkAdvertiseUrl } = await import('../http/cluster-forward.js');
    checkAdvertiseUrl(dialect, config.host, config.cluster.advertiseUrl);
  } catch (err) {
    fail('cluster.advertiseUrl', (err as Error).message);
  }
  if (config.cluster.leaseMs < 3 * config.cluster.heartbeatMs) {
    // Shorter, one late renewal (a busy event loop, a slow commit) would hand the lease over.
    fail('cluster.leaseMs', `the lease (${config.cluster.leaseMs} ms) must last at least 3 heartbeats (cluster.heartbeatMs ${config.cluster.heartbeatMs}, from ${describe(sources['cluster.heartbeatMs'])})`);
  }
  if (config.ingest.groupRows > config.queueMaxRows) {
    fail('ingest.groupRows', `a commit group (${config.ingest.groupRows} rows) cannot be larger than the queue (queueMaxRows ${config.queueMaxRows}, from ${describe(sources.queueMaxRows)})`);
  }
}

function describe(s: SettingSource | undefined): string {
  return s === undefined || s.kind === 'default' ? 'the default' : `${s.kind} ${s.where}`;
}

/** A string (flag, variable, YAML scalar) or a YAML value to the setting's type. */
function convert(s: Setting, c: Candidate): unknown {
  const v = c.value;
  switch (s.kind) {
    case 'int': {
      if (typeof v === 'number') return v;
      if (typeof v === 'string' && /^\d+$/.test(v.trim())) return Number(v.trim());
      throw new Error(`expected a whole number, got ${JSON.stringify(v)}`);
    }
    case 'list': {
      if (Array.isArray(v)) return v.map((x) => String(x).trim()).filter((x) => x !== '');
      if (typeof v === 'string') return v.split(',').map((x) => x.trim()).filter((x) => x !== '');
      throw new Error(`expected a comma list or a YAML list, got ${JSON.stringify(v)}`);
    }
    case 'path': {
      if (typeof v !== 'string' || v === '') throw new Error(`expected a path, got ${JSON.stringify(v)}`);
      return resolve(c.base, v);
    }
    case 'string': {
      if (typeof v === 'string') return v;
      if (typeof v === 'number' || typeof v === 'boolean') return String(v);
      throw new Error(`expected text, got ${JSON.stringify(v)}`);
    }
  }
}

function setPath(target: Record<string, unknown>, name: string, value: unknown): void {
  const parts = name.split('.');
  let o = target;
  for (const p of parts.slice(0, -1)) o = (o[p] ??= {}) as Record<string, unknown>;
  o[parts[parts.length - 1]] = value;
}

interface YamlFile {
  path: string;
  get(s: Setting): Candidate | undefined;
}

/** Reads the file; syntax errors and unknown keys become issues (a typo must not pass unseen). */
function readYaml(path: string, issues: ConfigIssue[], inDataDir: boolean): YamlFile {
  const lines = new LineCounter();
  let doc: Document;
  try {
    doc = parseDocument(readFileSync(path, 'utf8'), { lineCounter: lines, prettyErrors: false });
  } catch (err) {
    throw new ConfigError([{ setting: 'config', source: { kind: 'file', where: path }, message: (err as Error).message }]);
  }
  const lineOf = (range: readonly number[] | null | undefined): number => (range ? lines.linePos(range[0] ?? 0).line : 1);
  const yamlError = doc.errors[0];
  if (yamlError !== undefined) {
    throw new ConfigError([{ setting: 'config', source: { kind: 'file', where: `${path}:${lineOf(yamlError.pos)}` }, message: yamlError.message.split('\n')[0] ?? 'invalid YAML' }]);
  }
  const known = new Set(SETTINGS.map((s) => s.name));
  const groups = new Set(SETTINGS.flatMap((s) => s.name.split('.').slice(0, -1).map((_, i, a) => a.slice(0, i + 1).join('.'))));
  const walk = (node: unknown, prefix: string): void => {
    if (node === null || node === undefined) return;
    if (!isMap(node)) {
      issues.push({ setting: prefix || 'config', source: { kind: 'file', where: path }, message: prefix === '' ? 'expected a mapping of settings' : 'expected a mapping' });
      return;
    }
    for (const item of node.items) {
      const key = isScalar(item.key) ? String(item.key.value) : String(item.key);
      const name = prefix === '' ? key : `${prefix}.${key}`;
      const where = `${path}:${lineOf(isScalar(item.key) ? item.key.range : undefined)}`;
      if (groups.has(name)) walk(item.value, name);
      else if (!known.has(name)) issues.push({ setting: name, source: { kind: 'file', where }, message: `unknown setting (the settings: docs/configuration.md)` });
      else if (inDataDir && SETTINGS.find((s) => s.name === name)?.notInDataDirFile === true) {
        issues.push({ setting: name, source: { kind: 'file', where }, message: `cannot be set in the data directory's ${CONFIG_FILE_NAME} (use --config FILE)` });
      }
    }
  };
  walk(doc.contents, '');
  return {
    path,
    get(s) {
      if (inDataDir && s.notInDataDirFile === true) return undefined;
      const node: unknown = doc.getIn(s.name.split('.'), true);
      if (node === undefined || node === null) return undefined;
      const value: unknown = isScalar(node) ? node.value : isSeq(node) ? node.toJSON() : (node as { toJSON?: () => unknown }).toJSON?.();
      if (value === null || value === undefined) return undefined;
      const range = isScalar(node) || isSeq(node) ? node.range : undefined;
      return { value, source: { kind: 'file', where: `${path}:${lineOf(range)}` }, base: dirname(path) };
    },
  };
}
