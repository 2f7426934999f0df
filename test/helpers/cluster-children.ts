import { spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { AuditAnchor } from '../../src/gateway/audit-anchor.js';
import { BIN, freePort } from './child-server.js';
import { eventually } from './server.js';

/**
 * `bin/tightloop up` processes (the built dist/) on one PostgreSQL state database, as the
 * cluster loop tests start them: each with its own data directory, the cluster's shared audit
 * key and a copy of its anchor (docs/cluster.md), free HTTP and gateway ports, warn-level logs
 * kept in `out`/`err`. start() returns once the node answers `GET /api/health`.
 */
export interface ClusterChild { name: string; port: number; gatewayPort: number; dataDir: string; child: ChildProcess; out: string; err: string }

export interface ClusterChildrenOptions {
  /** Prefix of the temporary directories (`<prefix>-<name>-…`, `<prefix>-key-…`). */
  prefix: string;
  /** The state database every node uses (`--state`). */
  stateUrl: () => string;
  /** Writes a node's configuration (rules.yaml, services, actions) into its data directory. */
  configure: (dataDir: string) => void;
  /** Extra environment of the children. */
  env?: () => Record<string, string>;
  /** Extra arguments of `tightloop up` (e.g. `--telemetry clickhouse://…`). */
  args?: () => string[];
}

export class ClusterChildren {
  /** Every node started, in order (also those that died or were killed). */
  readonly nodes: ClusterChild[] = [];
  private auditKeyDir: string | undefined;

  constructor(private readonly o: ClusterChildrenOptions) {}

  private keyMade: Promise<string> | undefined;

  /** The cluster's audit key and anchor, made once (also when nodes start at the same time). */
  private async copyAuditKey(dataDir: string): Promise<void> {
    this.keyMade ??= (async () => {
      const dir = mkdtempSync(join(tmpdir(), `${this.o.prefix}-key-`));
      this.auditKeyDir = dir;
      const anchor = new AuditAnchor(join(dir, 'gateway-audit.anchor'), join(dir, 'gateway-audit.key'), pino({ level: 'silent' }));
      await anchor.open(() => Promise.resolve(undefined), { seq: 0, hash: '0'.repeat(64) });
      await anchor.close();
      return dir;
    })();
    const dir = await this.keyMade;
    for (const f of ['gateway-audit.key', 'gateway-audit.anchor']) copyFileSync(join(dir, f), join(dataDir, f));
  }

  async start(name: string): Promise<ClusterChild> {
    const dataDir = mkdtempSync(join(tmpdir(), `${this.o.prefix}-${name}-`));
    await this.copyAuditKey(dataDir);
    this.o.configure(dataDir);
    const [port, gatewayPort] = [await freePort(), await freePort()];
    const child = spawn(process.execPath, [BIN, 'up', '--data-dir', dataDir, '--port', String(port), '--gateway-port', String(gatewayPort),
      '--state', this.o.stateUrl(), '--log-level', 'warn', ...(this.o.args?.() ?? [])], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...this.o.env?.() } });
    const node: ClusterChild = { name, port, gatewayPort, dataDir, child, out: '', err: '' };
    child.stdout?.on('data', (d: Buffer) => { node.out += d.toString(); });
    child.stderr?.on('data', (d: Buffer) => { node.err += d.toString(); });
    this.nodes.push(node);
    await eventually(async () => {
      if (child.exitCode !== null) throw new Error(`${name} exited ${child.exitCode}: ${node.err}`);
      try {
        return (await fetch(nodeUrl(node, '/api/health'))).ok ? true : undefined;
      } catch { return undefined; }
    }, 60_000);
    return node;
  }

  /** SIGTERM to the nodes still running (waiting for each to exit); removes their data directories and the key's. */
  async stopAll(): Promise<void> {
    for (const n of this.nodes) {
      if (n.child.exitCode === null && n.child.signalCode === null) {
        n.child.kill('SIGTERM');
        await new Promise((r) => n.child.once('exit', r));
      }
      rmSync(n.dataDir, { recursive: true, force: true });
    }
    if (this.auditKeyDir !== undefined) rmSync(this.auditKeyDir, { recursive: true, force: true });
  }
}

export const nodeUrl = (n: ClusterChild, path = ''): string => `http://127.0.0.1:${n.port}${path}`;

/** The node holds the lease (`GET /api/health/active` answers 200). */
export async function isActive(n: ClusterChild): Promise<boolean> {
  try {
    return (await fetch(nodeUrl(n, '/api/health/active'))).status === 200;
  } catch { return false; }
}
