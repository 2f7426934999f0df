import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { INGEST_DEFAULTS } from './schema.js';
import { ConfigError, loadConfig, type ConfigIssue } from './load.js';
import { formatShown, redact, shownSettings } from './show.js';
import { SETTINGS } from './settings.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'tightloop-config-'));
  dirs.push(d);
  return d;
}

async function issuesOf(p: Promise<unknown>): Promise<ConfigIssue[]> {
  try {
    await p;
  } catch (err) {
    if (err instanceof ConfigError) return [...err.issues];
    throw err;
  }
  throw new Error('expected a ConfigError');
}

describe('loadConfig: flags > environment > tightloop.yaml > defaults', () => {
  it('takes each setting from the strongest source and says which', async () => {
    const dataDir = tempDir();
    writeFileSync(join(dataDir, 'tightloop.yaml'), [
      'port: 5001', 'host: 127.0.0.2', 'logLevel: debug', 'incidentWindowS: 600',
      'retentionDays:', '  logs: 3', 'gateway:', '  credentialDir: creds', '  credentialEnv: [A_PW, B_PW]', '',
    ].join('\n'));
    const { config, sources, file } = await loadConfig({
      cwd: '/',
      flags: { dataDir, port: 5003 },
      env: { TIGHTLOOP_PORT: '5002', TIGHTLOOP_HOST: '127.0.0.3', TIGHTLOOP_STATE_URL: '', TIGHTLOOP_INCIDENT_WINDOW: '900' },
    });
    expect(file).toBe(join(dataDir, 'tightloop.yaml'));
    expect(config.port).toBe(5003);
    expect(sources.port).toEqual({ kind: 'flag', where: '--port' });
    expect(config.host).toBe('127.0.0.3');
    expect(sources.host).toEqual({ kind: 'env', where: 'TIGHTLOOP_HOST' });
    expect(config.incidentWindowS).toBe(900);
    expect(config.logLevel).toBe('debug');
    expect(sources.logLevel).toEqual({ kind: 'file', where: `${join(dataDir, 'tightloop.yaml')}:3` });
    expect(config.retentionDays).toEqual({ spans: 7, logs: 3, metrics: 30 });
    expect(sources['retentionDays.logs']?.kind).toBe('file');
    expect(sources['retentionDays.spans']).toEqual({ kind: 'default', where: 'default' });
    // A path in the file is relative to the file; an empty variable is unset.
    expect(config.gateway.credentialDir).toBe(join(dataDir, 'creds'));
    expect(config.gateway.credentialEnv).toEqual(['A_PW', 'B_PW']);
    expect(config.stateUrl).toBeUndefined();
    expect(sources.stateUrl?.kind).toBe('default');
    // What the server used to hard-code stays the default.
    expect(config.ingest).toEqual({ queueMaxBytes: 512 * 1024 * 1024, groupRows: 20_000, maxInFlight: 16, maxDelayMs: 0 });
    expect(config.gatewayPort).toBeUndefined();
    expect(config.demo.shopPort).toBe(8080);
  });

  it('reads --config FILE instead of the data directory file, and the data directory from it', async () => {
    const dir = tempDir();
    const dataDir = join(dir, 'data');
    mkdirSync(dataDir);
    writeFileSync(join(dataDir, 'tightloop.yaml'), 'port: 5001\n');
    writeFileSync(join(dir, 'other.yaml'), 'dataDir: data\nport: 5009\naudit:\n  keyFile: /keys/audit.key\n');
    const { config, sources, file } = await loadConfig({ cwd: '/', configFile: join(dir, 'other.yaml'), env: { TIGHTLOOP_AUDIT_ANCHOR_FILE: 'anchor' } });
    expect(file).toBe(join(dir, 'other.yaml'));
    expect(config.dataDir).toBe(dataDir);
    expect(config.port).toBe(5009);
    expect(config.audit).toEqual({ keyFile: '/keys/audit.key', anchorFile: '/anchor' });
    expect(sources['audit.anchorFile']).toEqual({ kind: 'env', where: 'TIGHTLOOP_AUDIT_ANCHOR_FILE' });
    expect(await issuesOf(loadConfig({ configFile: join(dir, 'missing.yaml') }))).toEqual([expect.objectContaining({ setting: 'config', message: expect.stringMatching(/no such file/) as unknown })]);
  });

  it('refuses unknown keys, a data directory set inside itself and bad values, each with its name and source', async () => {
    const dataDir = tempDir();
    writeFileSync(join(dataDir, 'tightloop.yaml'), 'prot: 4318\ndataDir: /elsewhere\ngateway:\n  tlsCert: x\n');
    const issues = await issuesOf(loadConfig({ flags: { dataDir }, env: { TIGHTLOOP_QUEUE_MAX_ROWS: 'many', TIGHTLOOP_LOG_LEVEL: 'loud' } }));
    const yaml = join(dataDir, 'tightloop.yaml');
    expect(issues).toEqual(expect.arrayContaining([
      { setting: 'prot', source: { kind: 'file', where: `${yaml}:1` }, message: expect.stringMatching(/unknown setting/) as unknown },
      { setting: 'dataDir', source: { kind: 'file', where: `${yaml}:2` }, message: expect.stringMatching(/--config FILE/) as unknown },
      { setting: 'gateway.tlsCert', source: { kind: 'file', where: `${yaml}:4` }, message: expect.stringMatching(/unknown setting/) as unknown },
      { setting: 'queueMaxRows', source: { kind: 'env', where: 'TIGHTLOOP_QUEUE_MAX_ROWS' }, message: 'expected a whole number, got "many"' },
      { setting: 'logLevel', source: { kind: 'env', where: 'TIGHTLOOP_LOG_LEVEL' }, message: expect.any(String) as unknown },
    ]));
    expect(issues).toHaveLength(5);
  });

  it('cross-checks what one field cannot say alone', async () => {
    const dataDir = tempDir();
    const issues = await issuesOf(loadConfig({
      flags: { dataDir, port: 6000, gatewayPort: 6000 },
      env: {
        TIGHTLOOP_STATE_URL: 'mysql://h/db', TIGHTLOOP_TELEMETRY_URL: 'ftp://x', TIGHTLOOP_ROLE: 'gateway', TIGHTLOOP_CORS_ORIGINS: 'example.com',
        TIGHTLOOP_GATEWAY_TLS_CERT: '/c.pem', TIGHTLOOP_INGEST_GROUP_ROWS: '2000', TIGHTLOOP_QUEUE_MAX_ROWS: '1000',
      },
    }));
    const by = Object.fromEntries(issues.map((i) => [i.setting, i]));
    expect(Object.keys(by).sort()).toEqual(['corsOrigins', 'gateway.tlsCertFile', 'gatewayPort', 'ingest.groupRows', 'roles', 'stateUrl', 'telemetryUrl']);
    expect(by.stateUrl).toEqual({ setting: 'stateUrl', source: { kind: 'env', where: 'TIGHTLOOP_STATE_URL' }, message: expect.stringMatching(/unsupported scheme "mysql"/) as unknown });
    expect(by.gatewayPort?.source).toEqual({ kind: 'flag', where: '--gateway-port' });
    expect(by.gatewayPort?.message).toMatch(/HTTP port 6000 \(port, from flag --port\)/);
    expect(by['gateway.tlsCertFile']?.message).toMatch(/gateway.tlsKeyFile is not set/);
    expect(by['ingest.groupRows']?.message).toMatch(/queueMaxRows 1000, from env TIGHTLOOP_QUEUE_MAX_ROWS/);
    expect(by.roles?.message).toMatch(/gateway alone/);
    // The printed line names the flag and variable, the setting and the source.
    expect(new ConfigError([by.stateUrl]).message).toMatch(/^--state \/ TIGHTLOOP_STATE_URL: invalid state URL: .*\(stateUrl, from env TIGHTLOOP_STATE_URL\)$/);
  });
});

describe('ingest defaults', () => {
  it('ingest.maxInFlight defaults to 2 on ClickHouse and 16 on DuckDB; a set value wins on either', async () => {
    const dataDir = tempDir();
    const ch = 'clickhouse://tl:secret@127.0.0.1:8123/tl';
    expect((await loadConfig({ cwd: '/', flags: { dataDir }, env: {} })).config.ingest.maxInFlight).toBe(INGEST_DEFAULTS.maxInFlight);
    expect((await loadConfig({ cwd: '/', flags: { dataDir }, env: { TIGHTLOOP_TELEMETRY_URL: ch } })).config.ingest.maxInFlight).toBe(2);
    const set = await loadConfig({ cwd: '/', flags: { dataDir }, env: { TIGHTLOOP_TELEMETRY_URL: ch, TIGHTLOOP_INGEST_MAX_IN_FLIGHT: '16' } });
    expect([set.config.ingest.maxInFlight, set.sources['ingest.maxInFlight']?.kind]).toEqual([16, 'env']);
  });
});

describe('cluster lease timing', () => {
  it('defaults to a 2 s heartbeat and a 6 s lease, takes both from the environment, and refuses a lease shorter than 3 heartbeats', async () => {
    const dataDir = tempDir();
    expect((await loadConfig({ cwd: '/', flags: { dataDir }, env: {} })).config.cluster).toEqual({ heartbeatMs: 2_000, leaseMs: 6_000 });
    const short = await loadConfig({ cwd: '/', flags: { dataDir }, env: { TIGHTLOOP_CLUSTER_LEASE_MS: '2000', TIGHTLOOP_CLUSTER_HEARTBEAT_MS: '500' } });
    expect(short.config.cluster).toEqual({ heartbeatMs: 500, leaseMs: 2_000 });
    expect(short.sources['cluster.leaseMs']).toEqual({ kind: 'env', where: 'TIGHTLOOP_CLUSTER_LEASE_MS' });
    const issues = await issuesOf(loadConfig({ cwd: '/', flags: { dataDir }, env: { TIGHTLOOP_CLUSTER_LEASE_MS: '2000' } }));
    expect(issues.map((i) => [i.setting, i.message])).toEqual([['cluster.leaseMs', expect.stringMatching(/at least 3 heartbeats \(cluster.heartbeatMs 2000, from the default\)/)]]);
  });
});

describe('config show', () => {
  it('redacts secrets and keeps what identifies the place', () => {
    expect(redact('postgres://tl:s3cret@db.example:5432/tightloop', 'password')).toBe('postgres://tl:***@db.example:5432/tightloop');
    expect(redact('clickhouse://u@ch:8123/db?password=s3cret&x=1', 'password')).toBe('clickhouse://u@ch:8123/db?password=***&x=1');
    expect(redact('https://hooks.example/services/T000/B000/XXXX?token=abc', 'url')).toBe('https://hooks.example/***');
    expect(redact('not a url s3cret', 'password')).toBe('***');
  });

  it('prints every setting with its value and source; a secret never appears (text and --json)', async () => {
    const dataDir = tempDir();
    writeFileSync(join(dataDir, 'tightloop.yaml'), 'gateway:\n  webhookUrl: https://hooks.example/T0/B0/hooksecret\n');
    const env = { TIGHTLOOP_STATE_URL: 'postgres://tl:pgsecret@db:5432/t', TIGHTLOOP_TELEMETRY_URL: 'clickhouse://u:chsecret@ch:8123/db' };
    const loaded = await loadConfig({ flags: { dataDir }, env });
    const text = formatShown(loaded);
    const shown = shownSettings(loaded);
    expect(shown.map((s) => s.name)).toEqual(SETTINGS.map((s) => s.name));
    expect(shown.find((s) => s.name === 'stateUrl')).toEqual({ name: 'stateUrl', value: 'postgres://tl:***@db:5432/t', source: { kind: 'env', where: 'TIGHTLOOP_STATE_URL' }, flag: '--state', env: 'TIGHTLOOP_STATE_URL' });
    expect(text).toMatch(/^gateway\.webhookUrl +https:\/\/hooks\.example\/\*\*\* +file .*tightloop\.yaml:2$/m);
    expect(text).toMatch(/^port +4318 +default$/m);

    // Through the CLI: `tightloop config show --json`.
    const { run } = await import('../cli/main.js');
    let out = '';
    const spy = vi.spyOn(process.stdout, 'write').mockImplementation((c: string | Uint8Array) => { out += String(c); return true; });
    const saved = { ...process.env };
    Object.assign(process.env, env);
    try {
      expect(await run(['node', 'tightloop', 'config', 'show', '--data-dir', dataDir, '--port', '4999', '--json'])).toBe(0);
    } finally {
      spy.mockRestore();
      for (const k of Object.keys(env)) if (saved[k] === undefined) delete process.env[k]; else process.env[k] = saved[k];
    }
    for (const secret of ['pgsecret', 'chsecret', 'hooksecret']) {
      expect(text).not.toContain(secret);
      expect(out).not.toContain(secret);
    }
    const json = JSON.parse(out) as { file: string; settings: { name: string; value: unknown; source: { kind: string } }[] };
    expect(json.file).toBe(join(dataDir, 'tightloop.yaml'));
    expect(json.settings.find((s) => s.name === 'port')).toMatchObject({ value: 4999, source: { kind: 'flag' } });
    expect(json.settings.find((s) => s.name === 'telemetryUrl')).toMatchObject({ value: 'clickhouse://u:***@ch:8123/db', source: { kind: 'env' } });
  });
});
