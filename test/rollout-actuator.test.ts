import { fileURLToPath } from 'node:url';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalActuator, parseServicesYaml, type ServiceConfig } from '../src/deploys/rollout/index.js';

/**
 * The local actuator with real child processes (the instrumented fixture service) behind its
 * weighted proxy: traffic really shifts, and each version's own process counts what it served.
 */

const fixture = fileURLToPath(new URL('./fixtures/otel-service.mjs', import.meta.url));
let services: ServiceConfig[];
let actuator: LocalActuator;
let proxy: string;

beforeAll(async () => {
  services = parseServicesYaml(`
services:
  - name: shop
    port: 0
    health: /health
    command: [node, ${JSON.stringify(fixture)}]
    env: { VERSION: "\${VERSION}", LATENCY_MS: "0" }
    versions:
      "1.0.0": {}
      "2.0.0": { env: { VERSION: "\${VERSION}", LATENCY_MS: "0", ERROR_RATE: "0.5" } }
      "3.0.0": { command: [node, -e, "process.exit(4)"] }
`);
  // Spans go nowhere in this test (nothing listens on port 9): the SDK drops them quietly.
  actuator = new LocalActuator({ services: () => services, log: pino({ level: 'silent' }), otlpEndpoint: () => 'http://127.0.0.1:9' });
  await actuator.start();
  proxy = `http://127.0.0.1:${actuator.proxyPort('shop')}`;
});

afterAll(async () => {
  await actuator.close();
});

async function send(n: number): Promise<Record<string, number>> {
  const seen: Record<string, number> = {};
  for (let i = 0; i < n; i++) {
    const res = await fetch(`${proxy}/api/cart`);
    await res.arrayBuffer();
    const v = res.headers.get('x-version') ?? `status ${res.status}`;
    seen[v] = (seen[v] ?? 0) + 1;
  }
  return seen;
}

/** Asks each version's process itself how many requests it served. */
async function served(): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const v of actuator.status('shop')[0].versions) {
    const s = await (await fetch(`http://127.0.0.1:${v.port}/__stats`)).json() as { version: string; requests: number };
    out[s.version] = s.requests;
  }
  return out;
}

const alive = (pid: number | undefined): boolean => {
  try {
    process.kill(pid!, 0);
    return true;
  } catch {
    return false;
  }
};

describe('local actuator', () => {
  it('runs a version behind the proxy with X-Forwarded headers', async () => {
    expect(await actuator.deploy('shop', '1.0.0', 100, null)).toContain('started shop 1.0.0');
    expect(await send(20)).toEqual({ '1.0.0': 20 });
    const stats = await (await fetch(`${proxy}/__stats`)).json() as { forwardedFor: string };
    expect(stats.forwardedFor).toBe('127.0.0.1');
    expect(actuator.liveVersion('shop')).toBe('1.0.0');
  });

  it('splits traffic by weight, as each process observes', async () => {
    const before = await served();
    expect(await actuator.deploy('shop', '2.0.0', 10, '1.0.0')).toContain('shop: 2.0.0=10%, 1.0.0=90%');
    expect(await send(200)).toEqual({ '1.0.0': 180, '2.0.0': 20 });
    await actuator.deploy('shop', '2.0.0', 50, '1.0.0');
    expect(await send(100)).toEqual({ '1.0.0': 50, '2.0.0': 50 });
    const after = await served();
    expect(after['1.0.0'] - before['1.0.0']).toBe(230);
    expect(after['2.0.0']).toBe(70);
  });

  it('switches back at once and stops the bad version', async () => {
    const bad = actuator.status('shop')[0].versions.find((v) => v.version === '2.0.0')!;
    const out = await actuator.rollback('shop', '2.0.0', '1.0.0');
    expect(out).toContain('shop: 1.0.0=100%');
    expect(out).toContain('stopped shop 2.0.0');
    expect(await send(30)).toEqual({ '1.0.0': 30 });
    expect(alive(bad.pid)).toBe(false);
    expect(actuator.status('shop')[0].versions.map((v) => v.version)).toEqual(['1.0.0']);
  });

  it('reports a version that dies at start, and keeps serving the live one', async () => {
    await expect(actuator.deploy('shop', '3.0.0', 10, '1.0.0')).rejects.toThrow(/shop 3\.0\.0 exited before it was healthy \(code 4\)/);
    await expect(actuator.deploy('shop', '9.9.9', 10, '1.0.0')).rejects.toThrow('service shop has no command for version 9.9.9');
    expect(await send(10)).toEqual({ '1.0.0': 10 });
  });

  it('survives a crashed child: no traffic to it, 503 when none is left, restart on the next deploy', async () => {
    const v1 = actuator.status('shop')[0].versions[0];
    process.kill(v1.pid!, 'SIGKILL');
    for (let i = 0; i < 50 && actuator.status('shop')[0].versions[0].state !== 'crashed'; i++) await new Promise((r) => setTimeout(r, 20));
    expect(actuator.status('shop')[0].versions[0].state).toBe('crashed');
    const res = await fetch(`${proxy}/api/cart`);
    expect(res.status).toBe(503);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('no_backend');
    expect(await actuator.deploy('shop', '1.0.0', 100, null)).toContain('started shop 1.0.0');
    expect(await send(5)).toEqual({ '1.0.0': 5 });
  });

  it('streams request bodies through', async () => {
    const body = Buffer.alloc(2 * 1024 * 1024, 97);
    const res = await fetch(`${proxy}/upload`, { method: 'POST', body });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ version: '1.0.0', ok: true });
  });

  it('stops every child on close', async () => {
    const pids = actuator.status('shop')[0].versions.map((v) => v.pid);
    await actuator.close();
    expect(pids.every((p) => !alive(p))).toBe(true);
    await expect(fetch(`${proxy}/api/cart`)).rejects.toThrow();
  });

  it('gives up a version still starting when it is closed, instead of waiting out its start timeout', async () => {
    // Ctrl-C while a slow version starts: it used to be polled until startTimeoutS (the demo sets
    // 120 s), which kept `tightloop up` from exiting. The child ignores SIGTERM, so it also needs
    // the SIGKILL after the stop grace.
    const slow = parseServicesYaml(`
services:
  - name: slow
    port: 0
    health: /health
    startTimeoutS: 600
    stopGraceS: 1
    command: [node, -e, "process.on('SIGTERM', () => {}); setInterval(() => {}, 1000)"]
    versions:
      "1.0.0": {}
`);
    const a = new LocalActuator({ services: () => slow, log: pino({ level: 'silent' }) });
    const deploying = a.deploy('slow', '1.0.0', 100, null);
    const outcome = deploying.then(() => 'healthy', (err: Error) => err.message);
    for (let i = 0; i < 200 && a.status('slow')[0]?.versions[0]?.state !== 'starting'; i++) await new Promise((r) => setTimeout(r, 25));
    const pid = a.status('slow')[0].versions[0].pid;
    expect(alive(pid)).toBe(true);
    await a.close();
    const settled = await Promise.race([outcome, new Promise<string>((r) => setTimeout(() => r('still starting'), 30_000))]);
    expect(settled).toBe('slow 1.0.0 was stopped before it was healthy: tightloop is shutting down');
    expect(alive(pid)).toBe(false);
  }, 60_000);
});
