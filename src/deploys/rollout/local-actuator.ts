/**
 * The `local` actuator: runs each version of a configured service as a child process on its own
 * port (passed as PORT) behind one WeightedProxy per service. It is what `local` actions drive.
 *
 * A child's crash is logged and takes that version out of the proxy; it never reaches
 * tightloop's own process. On shutdown every child gets SIGTERM, then SIGKILL after the grace.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import type { Logger } from 'pino';
import { apiError } from '../../core/app-error.js';
import type { LocalDriver } from '../actions/index.js';
import { findService, isLocal, runSpecFor, type ServiceConfig } from './config.js';
import { WeightedProxy } from './proxy.js';

export interface InstanceStatus {
  version: string;
  port: number;
  pid: number | undefined;
  state: 'starting' | 'running' | 'stopping' | 'exited' | 'crashed';
  weight: number;
  requests: number;
  startedAt: string;
  exitCode: number | null;
}

interface Instance {
  version: string;
  port: number;
  child: ChildProcess;
  state: InstanceStatus['state'];
  startedAt: string;
  exitCode: number | null;
  /** Last lines of its output, for the error when it dies before it is healthy. */
  tail: string[];
  exited: Promise<void>;
}

interface LocalService {
  config: ServiceConfig;
  proxy: WeightedProxy;
  instances: Map<string, Instance>;
  /** Serialises operations on one service. */
  queue: Promise<unknown>;
}

export interface LocalActuatorOptions {
  services: () => ServiceConfig[];
  log: Logger;
  /** tightloop's own URL, given to children as OTEL_EXPORTER_OTLP_ENDPOINT. */
  otlpEndpoint?: () => string;
}

async function freePort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, host, () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

const fill = (t: string, vars: Record<string, string>): string => t.replace(/\$\{(PORT|VERSION|SERVICE)\}/g, (_m, k: string) => vars[k]);

export class LocalActuator implements LocalDriver {
  private readonly services = new Map<string, LocalService>();
  private closed = false;
  /** If this process exits without close() (a crash, process.exit), its children go with it. */
  private readonly onExit = (): void => {
    for (const svc of this.services.values()) {
      for (const i of svc.instances.values()) {
        try {
          i.child.kill('SIGKILL');
        } catch {
          // already gone
        }
      }
    }
  };

  constructor(private readonly opts: LocalActuatorOptions) {
    process.on('exit', this.onExit);
  }

  /** Starts a proxy per local service, and each service's `current` version. Errors are logged per service. */
  async start(): Promise<void> {
    for (const cfg of this.opts.services().filter(isLocal)) {
      try {
        const svc = await this.service(cfg.name);
        if (cfg.current !== undefined) await this.deploy(svc.config.name, cfg.current, 100, null);
      } catch (err) {
        this.opts.log.error({ err, service: cfg.name }, 'local actuator: cannot start service');
      }
    }
  }

  private async service(name: string): Promise<LocalService> {
    const existing = this.services.get(name);
    const cfg = findService(this.opts.services(), name);
    if (!isLocal(cfg)) throw apiError('not_local', `service ${name} is not run by the local actuator (it needs port and command or versions)`);
    if (existing !== undefined) {
      existing.config = cfg;
      return existing;
    }
    if (this.closed) throw apiError('unavailable', 'tightloop is shutting down');
    const proxy = new WeightedProxy(name);
    const svc: LocalService = { config: cfg, proxy, instances: new Map(), queue: Promise.resolve() };
    this.services.set(name, svc);
    try {
      const port = await proxy.listen(cfg.port ?? 0, cfg.host);
      this.opts.log.info({ service: name, port }, 'local actuator: proxy listening');
    } catch (err) {
      this.services.delete(name);
      throw apiError('proxy_listen_failed', `service ${name}: cannot listen on ${cfg.host}:${cfg.port ?? 0}: ${(err as Error).message}`);
    }
    return svc;
  }

  private serial<T>(svc: LocalService, fn: () => Promise<T>): Promise<T> {
    const p = svc.queue.then(fn, fn);
    // The failure reaches this call's caller through `p`; the queue only orders the next call.
    svc.queue = p.catch(() => undefined);
    return p;
  }

  /** The proxy port of a service (after start). */
  proxyPort(service: string): number | undefined {
    return this.services.get(service)?.proxy.port;
  }

  /** The version taking most traffic (null when none runs). */
  liveVersion(service: string): string | null {
    const svc = this.services.get(service);
    if (svc === undefined) return null;
    let best: { v: string; w: number } | null = null;
    for (const [v, w] of Object.entries(svc.proxy.weights())) {
      const inst = svc.instances.get(v);
      if (inst?.state !== 'running' || w <= 0) continue;
      if (best === null || w > best.w) best = { v, w };
    }
    return best?.v ?? null;
  }

  status(service?: string): { service: string; port: number | undefined; versions: InstanceStatus[] }[] {
    const out = [];
    for (const [name, svc] of this.services) {
      if (service !== undefined && name !== service) continue;
      const stats = new Map(svc.proxy.stats().map((s) => [s.key, s]));
      out.push({
        service: name, port: svc.proxy.port,
        versions: [...svc.instances.values()].map((i) => ({
          version: i.version, port: i.port, pid: i.child.pid, state: i.state, weight: stats.get(i.version)?.weight ?? 0,
          requests: stats.get(i.version)?.requests ?? 0, startedAt: i.startedAt, exitCode: i.exitCode,
        })),
      });
    }
    return out;
  }

  private async launch(svc: LocalService, version: string): Promise<Instance> {
    const cfg = svc.config;
    const spec = runSpecFor(cfg, version);
    const port = await freePort(cfg.host);
    if (this.closed) throw apiError('unavailable', 'tightloop is shutting down');
    const vars = { PORT: String(port), VERSION: version, SERVICE: cfg.name };
    const env: NodeJS.ProcessEnv = { ...process.env };
    delete env.TIGHTLOOP_TOKEN;
    Object.assign(env, {
      PORT: String(port),
      OTEL_SERVICE_NAME: cfg.name,
      OTEL_RESOURCE_ATTRIBUTES: `service.version=${version},deployment.environment.name=${cfg.environment}`,
      ...(this.opts.otlpEndpoint === undefined ? {} : { OTEL_EXPORTER_OTLP_ENDPOINT: this.opts.otlpEndpoint() }),
    });
    for (const [k, v] of Object.entries(spec.env)) env[k] = fill(v, vars);
    const argv = spec.command.map((a) => fill(a, vars));
    const child = spawn(argv[0], argv.slice(1), { cwd: spec.cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    const inst: Instance = { version, port, child, state: 'starting', startedAt: new Date().toISOString(), exitCode: null, tail: [], exited: Promise.resolve() };
    const log = this.opts.log.child({ service: cfg.name, version, pid: child.pid });
    const onOutput = (chunk: Buffer): void => {
      for (const line of chunk.toString('utf8').split('\n')) {
        if (line === '') continue;
        inst.tail.push(line);
        if (inst.tail.length > 20) inst.tail.shift();
        log.debug(line);
      }
    };
    child.stdout?.on('data', onOutput);
    child.stderr?.on('data', onOutput);
    inst.exited = new Promise<void>((resolve) => {
      child.once('error', (err) => {
        inst.tail.push(`cannot start ${argv[0]}: ${err.message}`);
        inst.state = 'crashed';
        resolve();
      });
      child.once('exit', (code, signal) => {
        inst.exitCode = code;
        svc.proxy.setUp(version, false);
        if (inst.state !== 'stopping') {
          inst.state = 'crashed';
          log.error({ code, signal }, 'local actuator: version exited unexpectedly; it gets no traffic now');
        } else inst.state = 'exited';
        resolve();
      });
    });
    svc.instances.set(version, inst);
    await this.waitHealthy(svc, inst);
    inst.state = 'running';
    svc.proxy.addBackend(version, port);
    svc.proxy.setUp(version, true);
    return inst;
  }

  private async waitHealthy(svc: LocalService, inst: Instance): Promise<void> {
    const deadline = Date.now() + svc.config.startTimeoutS * 1000;
    const url = `http://${svc.config.host.includes(':') ? `[${svc.config.host}]` : svc.config.host}:${inst.port}${svc.config.health}`;
    for (;;) {
      // Stopped while starting (tightloop shutting down): give up now, not at the start deadline.
      if (inst.state === 'stopping' || inst.state === 'exited') {
        svc.instances.delete(inst.version);
        throw apiError('unavailable', `${svc.config.name} ${inst.version} was stopped before it was healthy: tightloop is shutting down`);
      }
      if (inst.state === 'crashed' || inst.exitCode !== null) {
        svc.instances.delete(inst.version);
        throw apiError('version_start_failed', `${svc.config.name} ${inst.version} exited before it was healthy (code ${inst.exitCode ?? 'none'}): ${inst.tail.slice(-5).join(' | ')}`);
      }
      try {
        const res = await fetch(url, { signal: AbortSignal.timeout(1_000) });
        await res.arrayBuffer();
        if (res.status >= 200 && res.status < 300 && inst.state === 'starting') return;
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline) {
        await this.kill(svc, inst);
        svc.instances.delete(inst.version);
        throw apiError('version_start_failed', `${svc.config.name} ${inst.version} was not healthy at ${svc.config.health} within ${svc.config.startTimeoutS} s`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  private async kill(svc: LocalService, inst: Instance): Promise<void> {
    if (inst.exitCode !== null || inst.state === 'crashed' || inst.state === 'exited') return;
    inst.state = 'stopping';
    inst.child.kill('SIGTERM');
    const t = setTimeout(() => inst.child.kill('SIGKILL'), svc.config.stopGraceS * 1000);
    await inst.exited;
    clearTimeout(t);
  }

  private async ensureRunning(svc: LocalService, version: string): Promise<{ inst: Instance; started: boolean }> {
    if (this.closed) throw apiError('unavailable', 'tightloop is shutting down');
    const inst = svc.instances.get(version);
    if (inst !== undefined && inst.state === 'running') return { inst, started: false };
    if (inst !== undefined) svc.instances.delete(version);
    return { inst: await this.launch(svc, version), started: true };
  }

  async deploy(service: string, version: string, weight: number, previousVersion: string | null): Promise<string> {
    const svc = await this.service(service);
    return this.serial(svc, async () => {
      const lines: string[] = [];
      const { inst, started } = await this.ensureRunning(svc, version);
      if (started) lines.push(`started ${service} ${version} (pid ${inst.child.pid ?? '?'}, port ${inst.port})`);
      const weights: Record<string, number> = { [version]: weight };
      const other = previousVersion ?? (weight < 100 ? this.liveVersionExcept(svc, version) : null);
      if (weight < 100) {
        if (other === null) throw apiError('no_previous_version', `${service}: no previous version running to take the other ${100 - weight} %`);
        const prev = svc.instances.get(other);
        if (prev?.state !== 'running') throw apiError('no_previous_version', `${service}: previous version ${other} is not running`);
        weights[other] = 100 - weight;
      }
      svc.proxy.setWeights(weights);
      lines.push(`${service}: ${Object.entries(weights).map(([v, w]) => `${v}=${w}%`).join(', ')}`);
      return lines.join('\n');
    });
  }

  private liveVersionExcept(svc: LocalService, version: string): string | null {
    let best: { v: string; w: number } | null = null;
    for (const [v, w] of Object.entries(svc.proxy.weights())) {
      if (v === version || svc.instances.get(v)?.state !== 'running' || w <= 0) continue;
      if (best === null || w > best.w) best = { v, w };
    }
    return best?.v ?? null;
  }

  async rollback(service: string, version: string, previousVersion: string): Promise<string> {
    const svc = await this.service(service);
    return this.serial(svc, async () => {
      const lines: string[] = [];
      const { inst, started } = await this.ensureRunning(svc, previousVersion);
      if (started) lines.push(`started ${service} ${previousVersion} (pid ${inst.child.pid ?? '?'}, port ${inst.port})`);
      // The switch first (instant for the next request), then the bad version goes.
      svc.proxy.setWeights({ [previousVersion]: 100 });
      lines.push(`${service}: ${previousVersion}=100%`);
      if (version !== previousVersion) lines.push(await this.stopUnlocked(svc, version));
      return lines.join('\n');
    });
  }

  async stop(service: string, version: string): Promise<string> {
    const svc = await this.service(service);
    return this.serial(svc, () => this.stopUnlocked(svc, version));
  }

  private async stopUnlocked(svc: LocalService, version: string): Promise<string> {
    const inst = svc.instances.get(version);
    if (inst === undefined) return `${svc.config.name} ${version} was not running`;
    const w = svc.proxy.weights();
    if ((w[version] ?? 0) > 0) {
      delete w[version];
      svc.proxy.setWeights(w);
    }
    svc.proxy.removeBackend(version);
    await this.kill(svc, inst);
    svc.instances.delete(version);
    return `stopped ${svc.config.name} ${version}`;
  }

  async close(): Promise<void> {
    this.closed = true;
    const all: Promise<void>[] = [];
    for (const svc of this.services.values()) {
      all.push((async () => {
        await svc.proxy.close();
        await Promise.all([...svc.instances.values()].map((i) => this.kill(svc, i)));
      })());
    }
    await Promise.allSettled(all);
    this.services.clear();
    process.off('exit', this.onExit);
  }
}
